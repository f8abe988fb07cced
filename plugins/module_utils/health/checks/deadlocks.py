# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadlocks: deadlocks in this database per hour since its statistics were reset."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, Outcome, grade_above

SQL = """
SELECT deadlocks, coalesce(stats_reset, pg_postmaster_start_time()) AS since,
       extract(epoch FROM now() - coalesce(stats_reset, pg_postmaster_start_time()))::float AS seconds
FROM pg_stat_database WHERE datname = current_database()
"""


def evaluate(rows, thresholds, context):
    row = rows[0]
    # A window shorter than an hour counts as one hour, so that a single deadlock
    # just after a restart does not read as hundreds per hour.
    hours = max(row["seconds"] / 3600.0, 1.0)
    rate = row["deadlocks"] / hours
    status = grade_above(rate, thresholds["warning_per_hour"], thresholds["critical_per_hour"])
    rate = round(rate, 3)
    return Outcome(status, "%d deadlocks since %s (%.3f per hour)." % (row["deadlocks"], row["since"].isoformat(), rate),
                   rate, dict(deadlocks=row["deadlocks"], since=row["since"].isoformat()))


CHECK = HealthCheck(
    name="deadlocks",
    description="Deadlocks per hour in this database since its statistics were last reset (or the server started).",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_per_hour=1, critical_per_hour=10),
)
