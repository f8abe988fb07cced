# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""archiver: WAL archiving works (its last failure is older than its last success);
a failing archive_command makes WAL pile up and breaks point-in-time recovery."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, OK, WARNING, HealthCheck, Outcome

SQL = """
SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time,
       current_setting('archive_mode') AS archive_mode
FROM pg_stat_archiver
"""


def evaluate(rows, thresholds, context):
    row = dict(rows[0])
    for key in ("last_archived_time", "last_failed_time"):
        row[key] = row[key].isoformat() if row[key] else None
    if row["archive_mode"] == "off":
        status = WARNING if thresholds["require_archiving"] else OK
        return Outcome(status, "WAL archiving is off (no point-in-time recovery from archived WAL).", None, row)
    failing = rows[0]["last_failed_time"] is not None and (
        rows[0]["last_archived_time"] is None or rows[0]["last_failed_time"] > rows[0]["last_archived_time"])
    if failing:
        return Outcome(CRITICAL, "WAL archiving is failing: %s failed at %s; last success %s (%s)." % (
            row["last_failed_wal"], row["last_failed_time"], row["last_archived_time"] or "never",
            row["last_archived_wal"] or "none"), row["failed_count"], row)
    return Outcome(OK, "WAL archiving works: %d archived, last %s at %s." % (
        row["archived_count"], row["last_archived_wal"], row["last_archived_time"]), row["failed_count"], row)


CHECK = HealthCheck(
    name="archiver",
    description="WAL archiving: critical when the last failure is newer than the last success; require_archiving warns when it is off.",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(require_archiving=False),
)
