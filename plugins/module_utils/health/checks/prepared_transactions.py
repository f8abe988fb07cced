# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prepared_transactions: forgotten two-phase transactions (they hold locks and
the xmin horizon until someone commits or rolls them back)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, duration_outcome

SQL = """
SELECT gid, owner, database, prepared,
       round(extract(epoch FROM now() - prepared)::numeric, 1)::float AS seconds
FROM pg_prepared_xacts
WHERE now() - prepared >= make_interval(secs => %(seconds)s)
ORDER BY prepared
"""


def statement(context, thresholds):
    return SQL, dict(seconds=thresholds["warning_seconds"])


def evaluate(rows, thresholds, context):
    for row in rows:
        row["prepared"] = row["prepared"].isoformat()
    return duration_outcome(rows, thresholds, "prepared transactions open",
                            lambda r: "%r in %s for %ss" % (r["gid"], r["database"], r["seconds"]))


CHECK = HealthCheck(
    name="prepared_transactions",
    description="Prepared (two-phase) transactions left open for warning_seconds / critical_seconds or longer.",
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(warning_seconds=300, critical_seconds=3600),
)
