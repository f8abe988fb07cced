#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_info
short_description: List the backups made by pgops.runbook.backup in a local directory and/or S3
version_added: 0.1.0
description:
  - Reads the backups stored under O(dest) and/or in O(s3) with the layout
    M(pgops.runbook.backup) writes, C(<database>/<backup_id>/) holding the dump and its
    C(manifest.json), and returns what each manifest says, oldest first.
  - A backup directory without a readable manifest (a crash, an interrupted delete, a
    manifest that is not valid JSON, describes another backup or names a dump file that
    is not there) is incomplete - it is listed under RV(incomplete), never under RV(backups).
  - The module trusts the manifests for everything but the checksum - with
    O(verify_checksums) every listed dump is read back in one stream and its sha256 compared
    with the one its manifest records, and any difference fails the task.
  - Reads storage only; it does not connect to PostgreSQL and takes no connection options.
options:
  dest:
    description:
      - A local directory backups were stored under (O(pgops.runbook.backup#module:dest)). It must exist.
      - At least one of O(dest) and O(s3) is required.
    type: path
  database:
    description: List only the backups of this database (incomplete ones included).
    type: str
  label:
    description: List only the backups with this label (for example C(nightly) or C(pre-migration)).
    type: str
  verified:
    description:
      - C(true) lists only the backups whose verification passed, C(false) only those whose
        verification failed or was skipped. Unset lists both.
    type: bool
  latest:
    description:
      - List only the newest matching backup (by its finish time), across every given location.
        A backup stored both under O(dest) and in O(s3) is listed once per location.
    type: bool
    default: false
  verify_checksums:
    description:
      - Read every listed backup's dump back from its storage and compare its sha256 with the
        manifest's; each listed backup then reports RV(backups[].checksum_ok).
      - Any mismatch or unreadable dump fails the task, naming the backups. A backup whose dump file
        is missing altogether is not listed but reported in RV(incomplete), whatever this option says.
    type: bool
    default: false
extends_documentation_fragment:
  - pgops.runbook.s3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    details: Nothing is changed.
  platform:
    platforms: posix
requirements:
  - boto3 (for O(s3))
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Find the newest verified pre-migration backup in S3
  pgops.runbook.backup_info:
    s3:
      bucket: hospital-db-backups
      prefix: prod
    database: healthcare_db
    label: pre-migration
    verified: true
    latest: true
  register: pre_migration

- name: Refuse to go on without one
  ansible.builtin.assert:
    that: pre_migration.latest is not none
    fail_msg: No verified pre-migration backup of healthcare_db in s3://hospital-db-backups/prod.

- name: Re-read every local nightly backup and check it against its manifest
  pgops.runbook.backup_info:
    dest: /var/backups/postgresql
    label: nightly
    verify_checksums: true
'''

RETURN = r'''
backups:
  description: The matching backups, oldest first, one entry per location a backup is stored in.
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: The backup's id, C(<database>-<UTC timestamp>[-<label>]).
      type: str
    database:
      description: The database dumped.
      type: str
    label:
      description: The backup's label, or null.
      type: str
    tags:
      description: The tags recorded in the manifest.
      type: dict
    type:
      description: What was dumped (full, schema, data, globals).
      type: str
    format:
      description: pg_dump's archive format (custom, plain).
      type: str
    started_at:
      description: When the backup started (ISO 8601, UTC).
      type: str
    finished_at:
      description: When the dump was stored (ISO 8601, UTC).
      type: str
    size_bytes:
      description: Size of the stored dump.
      type: int
    sha256:
      description: sha256 of the stored bytes, as the manifest records it.
      type: str
    verified:
      description: Whether the backup's verification passed.
      type: bool
    verification:
      description: The verification's status (passed, failed, skipped), method and message.
      type: dict
    location:
      description: Where the dump is (a path or an C(s3://) URI).
      type: str
    manifest_location:
      description: Where its manifest is.
      type: str
    storage:
      description: Which option the location comes from, C(dest) or C(s3).
      type: str
    encryption:
      description: How the dump is encrypted, or null.
      type: dict
    compression:
      description: The compression method, level and where it ran.
      type: dict
    server_version:
      description: The version of the server dumped.
      type: str
    checksum_ok:
      description: Whether the stored dump's sha256 matches the manifest's.
      type: bool
      returned: when O(verify_checksums=true)
    checksum_error:
      description: Why RV(backups[].checksum_ok) is false (the sha256 differs, or the dump could not be read).
      type: str
      returned: when RV(backups[].checksum_ok) is false
  sample:
    - backup_id: healthcare_db-20261125T020000Z-nightly
      database: healthcare_db
      label: nightly
      finished_at: "2026-11-25T02:03:12.402788+00:00"
      verified: true
      location: /var/backups/postgresql/healthcare_db/healthcare_db-20261125T020000Z-nightly/healthcare_db.dump
      storage: dest
incomplete:
  description:
    - Backup directories without a usable manifest, with the reason and the files found.
      O(label), O(verified) and O(latest) do not apply to them (without a manifest the label is unknown).
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: The directory's name.
      type: str
    database:
      description: The database directory it is in.
      type: str
    reason:
      description: Why it is incomplete (no manifest, or why the manifest is unusable).
      type: str
    locations:
      description: The files found in it.
      type: list
      elements: str
    storage:
      description: C(dest) or C(s3).
      type: str
  sample:
    - backup_id: healthcare_db-20261125T010000Z-nightly
      database: healthcare_db
      reason: no manifest
      locations: [/var/backups/postgresql/healthcare_db/healthcare_db-20261125T010000Z-nightly/healthcare_db.dump.zst]
      storage: dest
latest:
  description: The newest matching backup (its first location - local before S3), as in RV(backups), or null when none matches.
  returned: always
  type: dict
  sample:
    backup_id: healthcare_db-20261125T020000Z-nightly
    database: healthcare_db
    verified: true
    location: /var/backups/postgresql/healthcare_db/healthcare_db-20261125T020000Z-nightly/healthcare_db.dump
    storage: dest
count:
  description: The number of entries in RV(backups).
  returned: always
  type: int
  sample: 14
path:
  description: When reading O(dest) failed, the file or directory it failed on.
  returned: when a local file operation failed
  type: str
  sample: /var/backups/postgresql
errno:
  description: When reading O(dest) failed, the operating system's error number (absent when O(dest) is missing or not a directory).
  returned: when a local file operation failed
  type: int
  sample: 13
operation:
  description: When an S3 request failed, what it was doing (for example C(list), C(download)).
  returned: when an S3 request failed
  type: str
  sample: list
bucket:
  description: When an S3 request failed, the bucket.
  returned: when an S3 request failed
  type: str
  sample: hospital-db-backups
code:
  description: When an S3 request failed with an error response, its code (for example C(AccessDenied), C(NoSuchBucket)).
  returned: when an S3 request failed with an error response
  type: str
  sample: AccessDenied
'''

from ansible_collections.pgops.runbook.plugins.module_utils.backup.catalog import read_catalog
from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import s3_argument_spec, storages_from_params
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine
from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import StorageError


def checksum_error(entry):
    """None when the stored dump matches its manifest's sha256; otherwise why not."""
    recorded = entry.manifest.get("sha256")
    try:
        stored = entry.stored_sha256()
    except StorageError as exc:
        return exc.message
    if stored != recorded:
        return "the stored bytes' sha256 is %s, the manifest records %s" % (stored, recorded)
    return None


def main():
    module = pgops_module(
        dict(
            dest=dict(type="path"),
            s3=dict(type="dict", options=s3_argument_spec()),
            database=dict(type="str"),
            label=dict(type="str"),
            verified=dict(type="bool"),
            latest=dict(type="bool", default=False),
            verify_checksums=dict(type="bool", default=False),
        ),
        needs_connection=False,
        required_one_of=[["dest", "s3"]],
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        database = p["database"]
        if database is not None and (database in ("", ".", "..") or "/" in database):
            raise PgopsError("Option database must be a database name (not empty, without '/'), got %r." % database)
        found, incomplete = [], []
        for storage in storages_from_params(p["dest"], p["s3"]):
            complete, broken = read_catalog(storage, database)
            found.extend((storage, entry) for entry in complete
                         if (p["label"] is None or entry.label == p["label"])
                         and (p["verified"] is None or entry.verified == p["verified"]))
            incomplete.extend(dict(item.summary(), storage=storage.option) for item in broken)
        # Oldest first across the locations; copies of one backup keep the locations' order (local first).
        found.sort(key=lambda pair: (pair[1].finished_at, pair[1].backup_id))
        if p["latest"] and found:
            newest = found[-1][1].backup_id
            found = [pair for pair in found if pair[1].backup_id == newest]
        backups, mismatches = [], []
        for storage, entry in found:
            summary = dict(entry.summary(), storage=storage.option)
            if p["verify_checksums"]:
                error = checksum_error(entry)
                summary["checksum_ok"] = error is None
                if error is not None:
                    summary["checksum_error"] = error
                    mismatches.append("%s (%s: %s)" % (entry.backup_id, summary["location"], error.rstrip(".")))
            backups.append(summary)
        newest = [b for b in backups if b["backup_id"] == backups[-1]["backup_id"]] if backups else [None]
        result = dict(changed=False, backups=backups, incomplete=incomplete, count=len(backups), latest=newest[0])
        if mismatches:
            result["failed"] = True
            result["msg"] = "%d of %d backups do not match the sha256 in their manifest: %s." % (
                len(mismatches), len(backups), "; ".join(mismatches))
        return result

    run_engine(module, engine)


if __name__ == "__main__":
    main()
