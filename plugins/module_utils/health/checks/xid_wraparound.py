# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xid_wraparound: transaction-ID and multixact age of the oldest database and of
this database's oldest table, against autovacuum_freeze_max_age. At 2^31 the
server stops accepting writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, HealthCheck, Outcome, grade_above, worst

SQL = """
SELECT (SELECT datname FROM pg_database ORDER BY age(datfrozenxid) DESC LIMIT 1) AS oldest_database,
       (SELECT max(age(datfrozenxid)) FROM pg_database) AS database_age,
       (SELECT max(mxid_age(datminmxid)) FROM pg_database) AS database_multixact_age,
       t.relation AS oldest_table, t.age AS table_age,
       current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::bigint AS multixact_freeze_max_age
FROM (SELECT NULL) AS one
LEFT JOIN LATERAL (
    SELECT c.oid::regclass::text AS relation, age(c.relfrozenxid) AS age
    FROM pg_class c
    WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
    ORDER BY age(c.relfrozenxid) DESC LIMIT 1) AS t ON true
"""


def evaluate(rows, thresholds, context):
    row = rows[0]
    age = max(row["database_age"] or 0, row["table_age"] or 0)
    # Graded unrounded: with a large autovacuum_freeze_max_age small thresholds matter.
    pct = 100.0 * age / row["freeze_max_age"]
    mxid_pct = 100.0 * (row["database_multixact_age"] or 0) / row["multixact_freeze_max_age"]
    status = worst([grade_above(pct, thresholds["warning_pct"], thresholds["critical_pct"]),
                    grade_above(mxid_pct, thresholds["warning_pct"], thresholds["critical_pct"]),
                    CRITICAL if age >= thresholds["critical_age"] else "ok"])
    text = ("Oldest transaction ID age %d (%.4f %% of autovacuum_freeze_max_age %d): database %s, table %s; "
            "multixact age %.4f %% of its limit.")
    text = text % (age, pct, row["freeze_max_age"], row["oldest_database"], row["oldest_table"], mxid_pct)
    return Outcome(status, text, age, row)


CHECK = HealthCheck(
    name="xid_wraparound",
    description=("Transaction-ID (and multixact) age of the oldest database and table as a percentage of "
                 "autovacuum_freeze_max_age; critical also at critical_age whatever the setting."),
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_pct=100, critical_pct=200, critical_age=1500000000),
)
