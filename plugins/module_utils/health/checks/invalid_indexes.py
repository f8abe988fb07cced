# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""invalid_indexes: indexes left invalid, e.g. by a failed CREATE INDEX CONCURRENTLY
(they slow writes and serve no reads). Indexes being built right now are not counted."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, count_outcome

SQL = """
SELECT i.indexrelid::regclass::text AS index, i.indrelid::regclass::text AS "table",
       i.indisready AS ready, c.relpages::bigint * current_setting('block_size')::int AS bytes,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND """ + user_namespace("n") + """
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
ORDER BY 1
"""


def evaluate(rows, thresholds, context):
    return count_outcome(rows, thresholds, "invalid indexes (drop and recreate them, concurrently)",
                         lambda r: "%s on %s" % (r["index"], r["table"]))


CHECK = HealthCheck(
    name="invalid_indexes",
    description="Indexes marked invalid (not being built right now); warning at warning_count, critical at critical_count.",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_count=1, critical_count=None),
)
