# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_destination (opt-in): the backup location(s) given by health_check's
backup_dest / backup_s3 accept a write now, before a migration counts on a backup
there. Proven the only sure way, by writing a small probe file (S3: object) and
deleting it again, through the storage backends the backup module writes with."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import storages_from_params
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, OK, HealthCheck, Outcome
from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import StorageError


def unavailable(context):
    if not context.options.get("backup_dest") and not context.options.get("backup_s3"):
        return "no backup location given (backup_dest or backup_s3)"
    return None


def evaluate(rows, thresholds, context):
    try:
        storages = storages_from_params(context.options.get("backup_dest"), context.options.get("backup_s3"),
                                        dest_option="backup_dest", s3_option="backup_s3")
    except StorageError as exc:
        return Outcome(CRITICAL, exc.message)
    details, problems = [], []
    for storage in storages:
        try:
            storage.check_writable()
        except StorageError as exc:
            problems.append(exc.message.rstrip("."))
            details.append(dict(location=storage.location, writable=False, error=exc.message))
        else:
            details.append(dict(location=storage.location, writable=True))
    if problems:
        return Outcome(CRITICAL, "Backups cannot be written: %s." % "; ".join(problems), len(problems), details)
    return Outcome(OK, "A probe was written to and deleted from %s." % ", ".join(d["location"] for d in details), 0, details)


CHECK = HealthCheck(
    name="backup_destination",
    description="The backup locations backup_dest / backup_s3 accept a write (a probe written and deleted); opt-in.",
    evaluate=evaluate,
    unavailable=unavailable,
    opt_in=True,
)
