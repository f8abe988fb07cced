# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""client_tools: pg_dump, pg_restore, psql and pg_dumpall on the module's host are
there and not older than the server (a backup taken with an older pg_dump fails)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.client_tools import CLIENT_TOOLS, find_tool
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import OK, WARNING, HealthCheck, Outcome


def evaluate(rows, thresholds, context):
    server_major = context.server_version_num // 10000
    found, problems = {}, []
    for tool in CLIENT_TOOLS:
        try:
            path, major = find_tool(tool, server_major, context.options.get("client_bindir"))
            found[tool] = dict(path=path, version=major)
        except PgopsError as exc:
            problems.append(str(exc))
    if problems:
        return Outcome(WARNING, " ".join(problems), len(problems), found)
    return Outcome(OK, "Client tools %s found for PostgreSQL %s." % (
        ", ".join("%s %s" % (t, found[t]["version"]) for t in CLIENT_TOOLS), server_major), 0, found)


CHECK = HealthCheck(
    name="client_tools",
    description="pg_dump, pg_restore, psql and pg_dumpall exist on the host running the module and are not older than the server.",
    evaluate=evaluate,
)
