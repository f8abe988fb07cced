# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unused_indexes: sizeable indexes never scanned since the statistics were reset
(unique and constraint indexes excluded: they enforce rules even unscanned)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, count_outcome

# Size first (pg_class, cheap), statistics only for the indexes big enough to matter.
SQL = """
SELECT n.nspname || '.' || c.relname AS index, i.indrelid::regclass::text AS "table",
       c.relpages::bigint * %(block_size)s AS bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind = 'i' AND c.relpages >= %(min_pages)s
  AND NOT i.indisunique AND i.indisvalid AND """ + user_namespace("n") + """
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
  AND pg_stat_get_numscans(c.oid) = 0
ORDER BY bytes DESC
LIMIT 100
"""


def statement(context, thresholds):
    block_size = int(context.setting("block_size") or 8192)
    min_pages = -(-int(thresholds["min_size_bytes"]) // block_size)  # rounded up
    return SQL, dict(block_size=block_size, min_pages=min_pages)


def evaluate(rows, thresholds, context):
    return count_outcome(rows, thresholds, "unused indexes of %s bytes or more" % thresholds["min_size_bytes"],
                         lambda r: "%s (%.1f MB)" % (r["index"], r["bytes"] / 1048576.0))


CHECK = HealthCheck(
    name="unused_indexes",
    description="Non-unique indexes of min_size_bytes or more with no scan since the statistics were reset (sizes from relpages).",
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(min_size_bytes=10485760, warning_count=1, critical_count=None),
)
