# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_freshness: the newest verified backup of the checked database, in the
location(s) given by health_check's backup_dest / backup_s3, is recent enough.
A backup that was never verified does not count: nobody knows it restores."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.pgops.runbook.plugins.module_utils.backup.catalog import read_catalog
from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import storages_from_params
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, HealthCheck, Outcome, grade_above, worst
from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import StorageError


def unavailable(context):
    if not context.options.get("backup_dest") and not context.options.get("backup_s3"):
        return "no backup location given (backup_dest or backup_s3)"
    return None


def _finished(entry):
    try:
        return datetime.datetime.fromisoformat(entry.finished_at)
    except (TypeError, ValueError):
        return None


def newest_verified(storage, database):
    """(entry, its finish time) of the newest verified backup of `database` in `storage`, or (None, None)."""
    complete, dummy = read_catalog(storage, database)
    dated = [(entry, _finished(entry)) for entry in complete if entry.verified]
    dated = [pair for pair in dated if pair[1] is not None and pair[1].tzinfo is not None]
    return max(dated, key=lambda pair: pair[1]) if dated else (None, None)


def freshness(storage, database, thresholds, now):
    """(status, age in hours or None, sentence, summary of the backup or None) for one location."""
    try:
        entry, finished = newest_verified(storage, database)
    except StorageError as exc:
        return CRITICAL, None, "cannot read %s: %s" % (storage.location, exc.message.rstrip(".")), None
    if entry is None:
        return CRITICAL, None, "no verified backup of %s in %s" % (database, storage.location), None
    age = round(max((now - finished).total_seconds(), 0) / 3600.0, 2)
    status = grade_above(age, thresholds["warning_hours"], thresholds["critical_hours"])
    return status, age, "the newest verified backup of %s in %s is %s, %.2f h old" % (
        database, storage.location, entry.backup_id, age), entry.summary()


def evaluate(rows, thresholds, context):
    database = context.row["database"]
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        storages = storages_from_params(context.options.get("backup_dest"), context.options.get("backup_s3"),
                                        dest_option="backup_dest", s3_option="backup_s3")
    except StorageError as exc:
        return Outcome(CRITICAL, exc.message)
    # Every location must hold a fresh backup: the status is the worst, and the location
    # that decides it (one without a backup, else the stalest) gives the value and details.
    found = [freshness(storage, database, thresholds, now) for storage in storages]
    deciding = max(found, key=lambda item: (item[1] is None, item[1] or 0))
    message = "; ".join(item[2] for item in found)
    return Outcome(worst(item[0] for item in found), message[0].upper() + message[1:] + ".", deciding[1], deciding[3])


CHECK = HealthCheck(
    name="backup_freshness",
    description="Age in hours of the newest verified backup of the database in backup_dest / backup_s3; "
                "critical when there is none; skipped when no location is given.",
    evaluate=evaluate,
    thresholds=dict(warning_hours=26, critical_hours=50),
    unavailable=unavailable,
)
