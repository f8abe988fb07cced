# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration tools the migrate module drives: one module per tool under tools/,
one line here. Detection (tool: auto) tries them in this order."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.tools import alembic, django, prisma, sql

# name -> the tool's module, whose class Tool(request, session) is the adapter.
TOOLS = {
    "alembic": alembic,
    "django": django,
    "prisma": prisma,
    "sql": sql,
}

# What tool: auto recognises, in order: (name, marker files relative to project_dir).
MARKERS = (
    ("prisma", ("prisma/schema.prisma", "prisma/migrations")),
    ("alembic", ("alembic.ini",)),
    ("django", ("manage.py",)),
)


def detect(project_dir):
    """The tool a project uses, from its files; PgopsError naming project_dir when none is recognised."""
    if not os.path.isdir(project_dir):
        raise PgopsError("Option project_dir: %s is not a directory." % project_dir)
    for name, markers in MARKERS:
        if any(os.path.exists(os.path.join(project_dir, marker)) for marker in markers):
            return name
    if sql.detect(project_dir):
        return "sql"
    raise PgopsError("Option project_dir: %s holds no migrations this module recognises (prisma/schema.prisma or "
                     "prisma/migrations, alembic.ini, manage.py, or V<version>__<description>.sql files)." % project_dir)


def tool_class(name):
    return TOOLS[name].Tool
