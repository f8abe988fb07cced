# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""slow_queries: the statements with the highest mean time, from pg_stat_statements."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, grade_above, worst, count_outcome

SQL = """
SELECT queryid::text AS queryid, calls, round({mean}::numeric, 2)::float AS mean_ms,
       round({total}::numeric, 1)::float AS total_ms, rows, left(query, %(text)s) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND calls >= %(min_calls)s AND {mean} >= %(warning)s
ORDER BY {mean} DESC
LIMIT %(top)s
"""


def unavailable(context):
    if "pg_stat_statements" not in context.extensions:
        return "the pg_stat_statements extension is not installed in database %s" % context.row["database"]
    return None


def statement(context, thresholds):
    # Column names changed in PostgreSQL 13.
    old = context.server_version_num < 130000
    sql = SQL.replace("{mean}", "mean_time" if old else "mean_exec_time").replace("{total}", "total_time" if old else "total_exec_time")
    return sql, dict(text=context.query_text(), min_calls=thresholds["min_calls"], warning=thresholds["warning_ms"],
                     top=thresholds["top"])


def evaluate(rows, thresholds, context):
    outcome = count_outcome(rows, dict(warning_count=1), "statements averaging %s ms or more" % thresholds["warning_ms"],
                            lambda r: "query %s %.1f ms x %d" % (r["queryid"], r["mean_ms"], r["calls"]))
    if rows:
        outcome.status = worst(grade_above(r["mean_ms"], thresholds["warning_ms"], thresholds["critical_ms"]) for r in rows)
    return outcome


CHECK = HealthCheck(
    name="slow_queries",
    description=("The top statements of this database by mean time (pg_stat_statements) averaging warning_ms / "
                 "critical_ms or more over min_calls calls; skipped when the extension is absent."),
    sql=statement,
    evaluate=evaluate,
    unavailable=unavailable,
    thresholds=dict(warning_ms=1000, critical_ms=5000, min_calls=1, top=10),
)
