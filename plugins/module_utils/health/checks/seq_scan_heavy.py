# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""seq_scan_heavy: large tables read mostly by sequential scans (a missing index)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, count_outcome

# pg_class with just the statistics needed, the cheap size filter first.
SQL = """
SELECT "table", live_tuples, seq_scan, idx_scan, seq_tup_read, (seq_tup_read / greatest(seq_scan, 1))::bigint AS rows_per_scan
FROM (
    SELECT n.nspname || '.' || c.relname AS "table", pg_stat_get_live_tuples(c.oid) AS live_tuples,
           s.seq_scan, coalesce(pg_stat_get_numscans_idx_total, 0) AS idx_scan, pg_stat_get_tuples_returned(c.oid) AS seq_tup_read
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL (SELECT pg_stat_get_numscans(c.oid) AS seq_scan) AS s
    CROSS JOIN LATERAL (SELECT sum(pg_stat_get_numscans(i.indexrelid))::bigint AS pg_stat_get_numscans_idx_total
                        FROM pg_index i WHERE i.indrelid = c.oid) AS ix
    WHERE c.relkind IN ('r', 'm') AND s.seq_scan >= %(min_scans)s AND """ + user_namespace("n") + """
) AS t
WHERE live_tuples >= %(min_rows)s AND seq_scan > idx_scan
ORDER BY seq_tup_read DESC
LIMIT 50
"""


def statement(context, thresholds):
    return SQL, dict(min_rows=thresholds["min_rows"], min_scans=thresholds["min_seq_scans"])


def evaluate(rows, thresholds, context):
    return count_outcome(rows, thresholds, "large tables read mostly by sequential scans (an index may be missing)",
                         lambda r: "%s (%d seq / %d index scans)" % (r["table"], r["seq_scan"], r["idx_scan"]))


CHECK = HealthCheck(
    name="seq_scan_heavy",
    description="Tables of min_rows rows or more with min_seq_scans sequential scans or more, outnumbering index scans.",
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(min_rows=10000, min_seq_scans=50, warning_count=1, critical_count=None),
)
