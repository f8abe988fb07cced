# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ban-drop-not-null: ALTER COLUMN ... DROP NOT NULL lets NULLs in that the running application
version may not expect. The change itself is instant, so the severity does not follow the
table's size."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast.enums import AlterTableType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    AlterTableType = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, alter_table_commands


def check(statement, state):
    for table, cmd in alter_table_commands(statement.node, AlterTableType.AT_DropNotNull):
        yield Hit(table, ACCESS_EXCLUSIVE, detail="Column %s." % cmd.name)


RULE = Rule(
    name="ban-drop-not-null",
    severity=WARNING,
    why="Dropping NOT NULL lets NULLs into a column that the running application version (and the queries, reports "
        "and constraints built on it) may assume is always set.",
    fix="Make sure every running application version handles NULL in the column before dropping NOT NULL, and say so "
        "with a suppression comment.",
    check=check,
    size_sensitive=False,
)
