# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""seq_scan_heavy: large tables read mostly by sequential scans (a missing index)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, count_outcome

SQL = """
SELECT schemaname || '.' || relname AS "table", n_live_tup AS live_tuples, seq_scan,
       coalesce(idx_scan, 0) AS idx_scan, seq_tup_read,
       (seq_tup_read / greatest(seq_scan, 1))::bigint AS rows_per_scan
FROM pg_stat_user_tables
WHERE n_live_tup >= %(min_rows)s AND seq_scan >= %(min_scans)s
  AND seq_scan > coalesce(idx_scan, 0)
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
