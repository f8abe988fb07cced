# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""table_bloat: tables whose dead tuples are a large share of their rows (VACUUM is
not keeping up, or something holds back the xmin horizon)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, grade_above, worst, count_outcome

SQL = """
SELECT schemaname || '.' || relname AS "table", n_live_tup AS live_tuples, n_dead_tup AS dead_tuples,
       round(100.0 * n_dead_tup / greatest(n_live_tup + n_dead_tup, 1), 1)::float AS dead_pct,
       greatest(last_vacuum, last_autovacuum) AS last_vacuum
FROM pg_stat_user_tables
WHERE n_dead_tup >= %(min_dead)s
  AND 100.0 * n_dead_tup / greatest(n_live_tup + n_dead_tup, 1) >= %(warning)s
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
