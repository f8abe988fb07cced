# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""long_running_queries: statements active for longer than the thresholds."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, duration_outcome

SQL = """
SELECT pid, usename AS user, datname AS database, application_name,
       round(extract(epoch FROM now() - query_start)::numeric, 1)::float AS seconds,
       left(query, %(text)s) AS query
FROM pg_stat_activity
WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND now() - query_start >= make_interval(secs => %(seconds)s)
ORDER BY query_start
LIMIT 50
"""


def statement(context, thresholds):
    return SQL, dict(text=context.query_text(), seconds=thresholds["warning_seconds"])


def evaluate(rows, thresholds, context):
    return duration_outcome(rows, thresholds, "queries running", lambda r: "pid %s for %ss" % (r["pid"], r["seconds"]))


CHECK = HealthCheck(
    name="long_running_queries",
    description="Statements running for warning_seconds / critical_seconds or longer (this session excluded).",
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(warning_seconds=300, critical_seconds=1800),
)
