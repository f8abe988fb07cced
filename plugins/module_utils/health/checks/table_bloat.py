# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""table_bloat: tables whose dead tuples are a large share of their rows (VACUUM is
not keeping up, or something holds back the xmin horizon)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, grade_above, worst, count_outcome

# pg_class with just the statistics needed (the pg_stat_user_tables view computes
# some twenty per table), dead tuples first: most tables stop there.
SQL = """
SELECT "table", live_tuples, dead_tuples,
       round(100.0 * dead_tuples / greatest(live_tuples + dead_tuples, 1), 1)::float AS dead_pct, last_vacuum
FROM (
    SELECT n.nspname || '.' || c.relname AS "table", pg_stat_get_live_tuples(c.oid) AS live_tuples,
           d.dead_tuples,
           greatest(pg_stat_get_last_vacuum_time(c.oid), pg_stat_get_last_autovacuum_time(c.oid)) AS last_vacuum
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL (SELECT pg_stat_get_dead_tuples(c.oid) AS dead_tuples) AS d
    WHERE c.relkind IN ('r', 'm') AND d.dead_tuples >= %(min_dead)s AND """ + user_namespace("n") + """
) AS t
WHERE 100.0 * dead_tuples / greatest(live_tuples + dead_tuples, 1) >= %(warning)s
ORDER BY dead_pct DESC
LIMIT 50
"""


def statement(context, thresholds):
    return SQL, dict(min_dead=thresholds["min_dead_tuples"], warning=thresholds["warning_pct"])


def evaluate(rows, thresholds, context):
    for row in rows:
        row["last_vacuum"] = row["last_vacuum"].isoformat() if row["last_vacuum"] else None
    outcome = count_outcome(rows, dict(warning_count=1), "tables with %s %% dead tuples or more" % thresholds["warning_pct"],
                            lambda r: "%s %.1f %% dead" % (r["table"], r["dead_pct"]))
    if rows:
        outcome.status = worst(grade_above(r["dead_pct"], thresholds["warning_pct"], thresholds["critical_pct"]) for r in rows)
    return outcome


CHECK = HealthCheck(
    name="table_bloat",
    description="Tables with min_dead_tuples dead tuples or more making up warning_pct / critical_pct of their rows.",
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(warning_pct=20, critical_pct=50, min_dead_tuples=1000),
)
