# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention: which backups of one database and label to delete from one storage.

A backup is kept when it is among the newest keep_last, or younger than keep_days
(either rule keeps it). Whatever the rules say, the newest verified backup and the
backup just made survive, and at least min_keep backups remain. Run only after a
successful backup, under the backup lock.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.pgops.runbook.plugins.module_utils.backup.catalog import read_catalog
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError


class RetentionPolicy:
    """keep_last / keep_days / min_keep, checked."""

    def __init__(self, keep_last=None, keep_days=None, min_keep=1):
        if keep_last is not None and keep_last < 1:
            raise PgopsError("Option retention.keep_last must be 1 or more, got %s." % keep_last)
        if keep_days is not None and keep_days < 0:
            raise PgopsError("Option retention.keep_days must be 0 or more, got %s." % keep_days)
        if min_keep is None or min_keep < 1:
            raise PgopsError("Option retention.min_keep must be 1 or more, got %s." % min_keep)
        self.keep_last = keep_last
        self.keep_days = keep_days
        self.min_keep = min_keep

    @property
    def active(self):
        return self.keep_last is not None or self.keep_days is not None


def _parse(stamp):
    try:
        return datetime.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None


def plan(entries, policy, now, keep_ids=(), pending=0):
    """The entries (one database and label, any order) to delete under `policy`.
    `pending` backups not yet in `entries` (check mode's would-be backup) count as the newest."""
    if not policy.active:
        return []
    newest_first = sorted(entries, key=lambda e: (e.finished_at, e.backup_id), reverse=True)
    keep = set(keep_ids)
    verified = [e for e in newest_first if e.verified]
    if verified:
        keep.add(verified[0].backup_id)
    for index, entry in enumerate(newest_first):
        if policy.keep_last is not None and index + pending < policy.keep_last:
            keep.add(entry.backup_id)
        finished = _parse(entry.finished_at)
        if policy.keep_days is not None and (finished is None or now - finished < datetime.timedelta(days=policy.keep_days)):
            keep.add(entry.backup_id)
    for entry in newest_first:
        if len([e for e in newest_first if e.backup_id in keep]) + pending >= policy.min_keep:
            break
        keep.add(entry.backup_id)
    return [e for e in newest_first if e.backup_id not in keep]


def apply_retention(storages, database, label, policy, now, keep_ids=(), check_mode=False, pending=0):
    """Delete what `plan` selects in every storage; returns [{backup_id, location}]."""
    deleted = []
    if not policy.active:
        return deleted
    for storage in storages:
        complete, dummy = read_catalog(storage, database)
        same_label = [e for e in complete if e.database == database and e.label == label]
        for entry in plan(same_label, policy, now, keep_ids, pending):
            if not check_mode:
                # The manifest first: an interrupted delete leaves an incomplete backup,
                # never a manifest that points at nothing.
                storage.delete([entry.manifest_key])
                storage.delete([k for k in entry.keys if k != entry.manifest_key])
            deleted.append(dict(backup_id=entry.backup_id, location=storage.uri(entry.dump_key),
                                verified=entry.verified, finished_at=entry.finished_at))
    return deleted
