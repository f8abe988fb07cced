# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""connections: client connections in use against max_connections."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, Outcome, grade_above

SQL = """
SELECT count(*) AS used,
       count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE state = 'idle') AS idle,
       count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved
FROM pg_stat_activity
WHERE backend_type = 'client backend'
"""


def evaluate(rows, thresholds, context):
    row = rows[0]
    pct = 100.0 * row["used"] / row["max_connections"]
    status = grade_above(pct, thresholds["warning_pct"], thresholds["critical_pct"])
    pct = round(pct, 1)
    return Outcome(status, "%d of %d connections in use (%.1f %%; %d active, %d idle, %d idle in transaction)." % (
        row["used"], row["max_connections"], pct, row["active"], row["idle"], row["idle_in_transaction"]), pct, row)


CHECK = HealthCheck(
    name="connections",
    description="Client connections in use as a percentage of max_connections.",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_pct=80, critical_pct=95),
)
