# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""idle_in_transaction: sessions holding a transaction open while doing nothing
(they keep locks and stop VACUUM from removing dead rows)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, duration_outcome

SQL = """
SELECT pid, usename AS user, datname AS database, application_name, state,
       round(extract(epoch FROM now() - state_change)::numeric, 1)::float AS seconds,
       round(extract(epoch FROM now() - xact_start)::numeric, 1)::float AS transaction_seconds,
       age(backend_xmin) AS xmin_age,
       left(query, %(text)s) AS last_query
FROM pg_stat_activity
WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
  AND pid <> pg_backend_pid()
  AND now() - state_change >= make_interval(secs => %(seconds)s)
ORDER BY state_change
LIMIT 50
"""


def statement(context, thresholds):
    return SQL, dict(text=context.query_text(), seconds=thresholds["warning_seconds"])


def evaluate(rows, thresholds, context):
    return duration_outcome(rows, thresholds, "sessions idle in transaction",
                            lambda r: "pid %s (%s) for %ss" % (r["pid"], r["user"], r["seconds"]))


CHECK = HealthCheck(
    name="idle_in_transaction",
    description="Sessions idle inside an open transaction for warning_seconds / critical_seconds or longer.",
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(warning_seconds=60, critical_seconds=600),
)
