# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""replication_slots: slots nobody consumes, which make the server keep WAL
until its disk fills."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, OK, WARNING, HealthCheck, Outcome, worst

SQL = """
SELECT slot_name, slot_type, database, active, wal_status,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                       restart_lsn)::bigint AS retained_bytes
FROM pg_replication_slots
ORDER BY slot_name
"""


def evaluate(rows, thresholds, context):
    statuses, parts = [], []
    for row in rows:
        if row["wal_status"] in ("lost", "unreserved") or (row["retained_bytes"] or 0) >= thresholds["critical_retained_bytes"]:
            statuses.append(CRITICAL)
        elif not row["active"]:
            statuses.append(WARNING)
        else:
            statuses.append(OK)
        if statuses[-1] != OK:
            parts.append("%s %s, retaining %s bytes of WAL (wal_status %s)" % (
                row["slot_name"], "active" if row["active"] else "inactive", row["retained_bytes"], row["wal_status"]))
    inactive = sum(1 for r in rows if not r["active"])
    if not parts:
        return Outcome(OK, "%d replication slots, all in use." % len(rows), inactive, rows)
    return Outcome(worst(statuses), "; ".join(parts) + ".", inactive, rows)


CHECK = HealthCheck(
    name="replication_slots",
    description=("Replication slots: inactive ones are a warning; critical when one retains critical_retained_bytes "
                 "of WAL or more, or its WAL is already lost or unreserved."),
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(critical_retained_bytes=10 * 1024 ** 3),
)
