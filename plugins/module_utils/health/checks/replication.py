# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""replication: on a primary, each standby's state and replay lag; on a standby,
whether WAL still arrives and how far replay is behind."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, OK, SKIPPED, WARNING, HealthCheck, Outcome, grade_above, worst

PRIMARY_SQL = """
SELECT application_name, client_addr::text AS client_addr, state, sync_state,
       extract(epoch FROM replay_lag)::float AS replay_lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes
FROM pg_stat_replication
ORDER BY application_name
"""

STANDBY_SQL = """
SELECT (SELECT status FROM pg_stat_wal_receiver) AS receiver_status,
       pg_last_wal_receive_lsn()::text AS receive_lsn, pg_last_wal_replay_lsn()::text AS replay_lsn,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float AS replay_delay_seconds,
       pg_is_wal_replay_paused() AS replay_paused
"""


def statement(context, thresholds):
    return (STANDBY_SQL if context.in_recovery else PRIMARY_SQL), None


def _standby_outcome(row, thresholds):
    if row["receiver_status"] != "streaming":
        return Outcome(CRITICAL, "This standby receives no WAL from its primary (WAL receiver: %s)."
                       % (row["receiver_status"] or "not running"), None, row)
    delay = row["replay_delay_seconds"]
    status = grade_above(delay, thresholds["warning_lag_seconds"], thresholds["critical_lag_seconds"])
    paused = " (replay paused)" if row["replay_paused"] else ""
    if row["replay_paused"]:
        status = worst([status, WARNING])
    if delay is None:  # nothing replayed since the standby started, and WAL still arriving
        return Outcome(status, "Standby receives WAL; no transaction replayed since it started%s." % paused, None, row)
    return Outcome(status, "Standby replay is %.1f s behind%s." % (delay, paused), delay, row)


def evaluate(rows, thresholds, context):
    if context.in_recovery:
        return _standby_outcome(rows[0], thresholds)
    if rows and all(r["state"] is None for r in rows):
        return Outcome(SKIPPED, "Skipped: the login role may not see replication details (grant pg_monitor).", len(rows))
    statuses, parts = [], []
    for row in rows:
        if row["state"] != "streaming":
            statuses.append(WARNING if row["state"] in ("startup", "catchup", "backup") else CRITICAL)
        else:
            statuses.append(grade_above(row["replay_lag_seconds"], thresholds["warning_lag_seconds"],
                                        thresholds["critical_lag_seconds"]))
        lag = "no replay lag reported" if row["replay_lag_seconds"] is None else "%.1f s" % row["replay_lag_seconds"]
        name = row["application_name"] or row["client_addr"]
        parts.append("%s %s, %s / %s bytes behind" % (name, row["state"], lag, row["replay_lag_bytes"]))
    streaming = sum(1 for r in rows if r["state"] == "streaming")
    expected = thresholds["min_standbys"]
    if expected is not None and streaming < expected:
        statuses.append(CRITICAL)
        parts.insert(0, "%d standby streaming, %d expected" % (streaming, expected))
    if not rows and expected is None:
        return Outcome(OK, "No standby is connected (set min_standbys to require some).", 0, [])
    return Outcome(worst(statuses), "; ".join(parts) + ".", streaming, rows)


CHECK = HealthCheck(
    name="replication",
    description=("On a primary: each standby's state and replay lag, and at least min_standbys streaming when set. "
                 "On a standby: WAL still arriving, and replay delay against the lag thresholds."),
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(warning_lag_seconds=30, critical_lag_seconds=300, min_standbys=None),
)
