#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore
short_description: Restore a backup made by pgops.runbook.backup, checked first and put in place only when proven
version_added: 0.1.0
description:
  - Before anything is touched the backup's manifest is read and the stored backup is read once in a
    stream - its sha256 compared with the manifest's, decrypted, decompressed and its table of contents
    listed by pg_restore (plain SQL - read to pg_dump's completion line). A damaged byte, a wrong
    passphrase or a truncated file stops the restore before any database is created.
  - The backup is restored into a new database C(<target_db>__restoring_<hash>), validated (exact row
    counts and schema fingerprint against the manifest's snapshot) and analyzed. Only then is it put
    in place, in one short step - renamed to O(target_db) (O(mode=new)), or (O(mode=replace)) the target
    is closed to new sessions, its sessions are ended, and in one transaction the target is renamed to
    C(<target_db>__pre_restore_<time>) and the new database to O(target_db). If anything fails before that
    step, the target is as it was and the half-restored database is dropped (or, when the server cannot
    be reached, named in the error for cleanup; the next restore of the same target drops it).
  - With O(mode=replace) the new database gets the target's owner, grants, per-database settings,
    connection limit and comment, which a dump does not carry. The previous database is kept (its name
    is returned) until O(drop_previous) or a later cleanup.
  - How the stored bytes reach pg_restore - C(direct) - a local custom or directory archive not
    encrypted and not compressed in the stream is read by pg_restore itself (in parallel with O(jobs));
    C(streamed) - anything else with O(jobs=1) is read again from its storage, decrypted and decompressed
    in a stream into pg_restore or psql, and its sha256 checked again; C(spooled) - with O(jobs) above 1
    (a custom archive from a pipe cannot be restored in parallel) or a directory archive in S3, the
    check's read writes a local copy into O(work_dir), which pg_restore then reads; it is removed afterwards.
  - Restores into one target are serialised by an advisory lock on the server.
  - Plain-format backups are replayed by psql with C(ON_ERROR_STOP), so an error fails the task.
  - A data-only backup (C(type=data)) is refused - it restores into an existing schema, which this module does not do.
options:
  src:
    description:
      - A backup made by M(pgops.runbook.backup) - the path or C(s3://bucket/key) of its dump file, of its
        directory, or of its C(manifest.json). For C(s3://), the endpoint, region and credentials come from
        O(s3) when given (its bucket, if set, must be the same) or from boto3's defaults.
      - Exactly one of O(src), O(backup_id) and O(latest) is required.
    type: str
  backup_id:
    description: The id of a backup in the catalog of O(dest) and/or O(s3) (the local copy is read when both hold it).
    type: str
  latest:
    description:
      - Restore the newest backup of O(database) (default O(target_db)) with O(label) found in O(dest) and/or
        O(s3) whose verification did not fail.
    type: bool
    default: false
  dest:
    description:
      - A local backup directory (as given to M(pgops.runbook.backup)) to look O(backup_id) or O(latest) up in.
      - Also where O(pre_restore_backup) writes, when given.
    type: path
  database:
    description: With O(latest) or O(backup_id), the database whose backups are looked at (default O(target_db) for O(latest)).
    type: str
  label:
    description: With O(latest), only backups with this label (for example C(pre-migration)).
    type: str
  target_db:
    description: The database to restore into. Not used for a globals backup.
    type: str
  mode:
    description:
      - C(new) - O(target_db) must not exist; it is created (encoding and locale from the manifest).
      - C(replace) - O(target_db) must exist and O(confirm) must equal its name; it is replaced as described above.
    type: str
    choices: [ new, replace ]
    default: new
  confirm:
    description: For O(mode=replace), the target database's name typed again (for example an AWX survey field).
    type: str
  drop_previous:
    description: With O(mode=replace), drop the previous database once the new one is in place.
    type: bool
    default: false
  pre_restore_backup:
    description:
      - With O(mode=replace), first back up the target with the backup engine (label C(pre-restore), verified
        by listing) to O(dest) and/or O(s3); if that backup fails nothing is restored.
    type: bool
    default: false
  jobs:
    description: Parallel pg_restore jobs (custom and directory formats).
    type: int
    default: 1
  single_transaction:
    description: Restore in one transaction (serial restores only; C(--single-transaction) / C(psql -1)).
    type: bool
    default: false
  no_owner:
    description: Do not restore object ownership (C(pg_restore --no-owner)); objects belong to the login role.
    type: bool
    default: false
  role:
    description: Role to restore as (C(pg_restore --role)).
    type: str
  schemas:
    description: Restore only these schemas (C(pg_restore --schema)); validation then compares their tables' rows only.
    type: list
    elements: str
    default: []
  tables:
    description: Restore only these tables (C(pg_restore --table)); validation then compares their rows only.
    type: list
    elements: str
    default: []
  globals:
    description:
      - Restore the roles of a globals backup, or of the globals stored beside a full backup made with
        C(include_globals), before the database. Missing roles are created with their attributes, passwords,
        settings and memberships, in one transaction; roles that exist are left alone. Tablespaces are not restored.
    type: bool
    default: false
  owner:
    description: Owner of the new database (default - the replaced database's owner, or the login role).
    type: str
  tablespace:
    description: Tablespace of the new database.
    type: str
  validate:
    description:
      - Compare the restored database's exact row counts and schema fingerprint with the manifest's snapshot;
        a difference fails the task before the new database is put in place.
    type: bool
    default: true
  analyze:
    description: Run ANALYZE in the restored database before it is put in place.
    type: bool
    default: true
  encryption:
    description: The key to decrypt a GPG-encrypted backup with.
    type: dict
    suboptions:
      passphrase:
        description: The passphrase of a passphrase-encrypted backup. Never logged, never on a command line.
        type: str
      private_key:
        description: File holding the private key of a public-key encrypted backup.
        type: path
  work_dir:
    description: Directory for the local copy of the C(spooled) path (default - the system's temporary directory).
    type: path
  maintenance_db:
    description: Database the module connects to for creating, renaming and dropping databases.
    type: str
    default: postgres
  lock_wait:
    description: Seconds to wait for another restore into the same target to finish.
    type: int
    default: 600
  disconnect_timeout:
    description: With O(mode=replace), seconds to wait for the target's sessions to end before giving up (the target then stays).
    type: int
    default: 30
  client_bindir:
    description:
      - Directory of the PostgreSQL client tools; by default the distribution's versioned
        directories and E(PATH) are searched for ones not older than the server.
    type: path
extends_documentation_fragment:
  - pgops.runbook.s3
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the manifest and the whole stored backup (sha256, decryption, table of contents), checks the
      versions and the target's state, and reports what would happen; creates and changes nothing.
  diff_mode:
    support: full
    details: The target's tables and row counts before, and the restored database's after.
  platform:
    platforms: posix
requirements:
  - boto3 (for O(s3) and C(s3://) sources)
  - gpg, zstd or lz4 on the host running the module when the backup uses them
notes:
  - The login role needs CREATEDB, and to replace a database it must own it (or be a superuser) and be allowed
    to end its sessions. O(globals) needs CREATEROLE.
  - The connection options' O(login_db) is not used; the module connects to O(maintenance_db).
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Restore last night's backup into a new database for inspection
  pgops.runbook.restore:
    latest: true
    dest: /var/backups/postgresql
    database: healthcare_db
    label: nightly
    target_db: healthcare_db_copy

- name: Replace production with the pre-migration backup (the rollback path)
  pgops.runbook.restore:
    backup_id: "{{ migration_backup_id }}"
    s3:
      bucket: hospital-db-backups
      prefix: prod
    target_db: healthcare_db
    mode: replace
    confirm: "{{ confirm_database_name }}"
    jobs: 4
    encryption:
      private_key: /etc/pgops/backup-signing.key

- name: Recreate the roles from a globals backup (existing roles are left alone)
  pgops.runbook.restore:
    src: /var/backups/postgresql/postgres/postgres-20261125T020000Z-globals/manifest.json
    globals: true
'''

RETURN = r'''
backup_id:
  description: The backup restored.
  returned: success
  type: str
  sample: healthcare_db-20261125T020000Z-nightly
source:
  description: Where the backup's dump was read from.
  returned: success
  type: str
  sample: /var/backups/postgresql/healthcare_db/healthcare_db-20261125T020000Z-nightly/healthcare_db.dump.zst
target_db:
  description: The database restored into.
  returned: success
  type: str
  sample: healthcare_db
mode:
  description: O(mode) - C(new) or C(replace).
  returned: success
  type: str
  sample: replace
previous_db:
  description: With O(mode=replace), the name the replaced database now has (null when O(mode=new)).
  returned: success
  type: str
  sample: healthcare_db__pre_restore_20261126T101500Z
previous_dropped:
  description: True when O(drop_previous) dropped the previous database.
  returned: when O(drop_previous)
  type: bool
  sample: true
restoring_db:
  description:
    - The database the backup was restored into before being put in place.
    - When the restore failed, the half-restored database - dropped, unless the message says it could not be.
  returned: unless a globals backup, also on failure once it was named
  type: str
  sample: healthcare_db__restoring_3f9a2c1d
path:
  description:
    - How the stored bytes reached pg_restore - C(direct), C(streamed) or C(spooled) (see the description).
    - When a file operation on a local backup failed, the file or directory it failed on.
  returned: unless a globals backup, and when a local file operation failed
  type: str
  sample: streamed
duration_s:
  description: Seconds the whole restore took.
  returned: success
  type: float
  sample: 84.213
timings:
  description: Seconds per step - check_s (reading the backup before anything is created), pre_restore_backup_s,
    restore_s, validate_s, analyze_s, swap_s.
  returned: success
  type: dict
  sample: {check_s: 6.1, restore_s: 61.4, validate_s: 9.8, analyze_s: 6.5, swap_s: 0.4}
validation:
  description:
    - status (passed, failed or skipped), tables (per table, the expected and restored exact row counts),
      differences (what differs, at most 50), fingerprint (expected and restored).
    - Also when the validation failed the task (the new database was then not put in place).
  returned: when O(validate) and a full or schema backup
  type: dict
  sample: {status: passed, tables: {public.patients: {expected: 1200, restored: 1200}}, differences: [],
           fingerprint: {expected: 5f1c0e9a..., restored: 5f1c0e9a...}}
roles:
  description: With O(globals), the roles created, the existing ones left alone and the statements skipped by reason.
  returned: when O(globals)
  type: dict
  sample: {created: [healthcare_app], left_alone: [postgres], skipped: {}}
pre_restore_backup:
  description: The backup of the target taken first - backup_id, locations, verified.
  returned: when O(pre_restore_backup)
  type: dict
  sample: {backup_id: healthcare_db-20261126T101200Z-pre-restore, verified: true,
           locations: [/var/backups/postgresql/healthcare_db/healthcare_db-20261126T101200Z-pre-restore/healthcare_db.dump.gz]}
sessions_terminated:
  description: Sessions on the target ended for the swap.
  returned: when some were
  type: int
  sample: 3
discarded_restoring:
  description: Half-restored databases of this target that a restore which died left behind, dropped under the lock.
  returned: unless a globals backup
  type: list
  elements: str
  sample: []
archive_entries:
  description: Entries in the archive's table of contents (custom and directory formats).
  returned: when listed
  type: int
  sample: 187
stages:
  description: When the stored backup could not be read (a damaged byte, a wrong key, a truncated file), each process
    of the reading pipeline (name) and its exit status (returncode).
  returned: when the backup could not be read
  type: list
  elements: dict
  sample: [{name: gpg, returncode: 2}, {name: zstd, returncode: 1}, {name: pg_restore, returncode: 1}]
errno:
  description: When a file operation on a local backup failed, the operating system's error number.
  returned: when a local file operation failed
  type: int
  sample: 2
operation:
  description: When an S3 request failed, what it was doing (for example C(download), C(look up), C(list)).
  returned: when an S3 request failed
  type: str
  sample: download
bucket:
  description: When an S3 request failed, the bucket.
  returned: when an S3 request failed
  type: str
  sample: hospital-db-backups
code:
  description: When an S3 request failed with an error response, its code (for example C(AccessDenied), C(NoSuchKey)).
  returned: when an S3 request failed with an error response
  type: str
  sample: NoSuchKey
msg:
  description: One sentence saying what was done (or, in check mode, what would be).
  returned: always
  type: str
  sample: "Restored backup healthcare_db-20261125T020000Z-nightly into healthcare_db in 84.2 s; validation passed;
    the previous database is healthcare_db__pre_restore_20261126T101500Z."
'''

from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import s3_argument_spec, s3_storage, storages_from_params
from ansible_collections.pgops.runbook.plugins.module_utils.backup.stages import Encryption
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine
from ansible_collections.pgops.runbook.plugins.module_utils.restore.engine import Restore, RestoreRequest
from ansible_collections.pgops.runbook.plugins.module_utils.restore.source import entry_from_catalog, entry_from_src
from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage


def main():
    module = pgops_module(
        dict(
            src=dict(type="str"),
            backup_id=dict(type="str"),
            latest=dict(type="bool", default=False),
            dest=dict(type="path"),
            s3=dict(type="dict", options=s3_argument_spec()),
            database=dict(type="str"),
            label=dict(type="str"),
            target_db=dict(type="str"),
            mode=dict(type="str", choices=["new", "replace"], default="new"),
            confirm=dict(type="str"),
            drop_previous=dict(type="bool", default=False),
            pre_restore_backup=dict(type="bool", default=False),
            jobs=dict(type="int", default=1),
            single_transaction=dict(type="bool", default=False),
            no_owner=dict(type="bool", default=False),
            role=dict(type="str"),
            schemas=dict(type="list", elements="str", default=[]),
            tables=dict(type="list", elements="str", default=[]),
            globals=dict(type="bool", default=False),
            owner=dict(type="str"),
            tablespace=dict(type="str"),
            validate=dict(type="bool", default=True),
            analyze=dict(type="bool", default=True),
            encryption=dict(type="dict", no_log=False, options=dict(
                passphrase=dict(type="str", no_log=True),
                private_key=dict(type="path"),
            ), mutually_exclusive=[["private_key", "passphrase"]], required_one_of=[["private_key", "passphrase"]]),
            work_dir=dict(type="path"),
            maintenance_db=dict(type="str", default="postgres"),
            lock_wait=dict(type="int", default=600),
            disconnect_timeout=dict(type="int", default=30),
            client_bindir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        sources = [name for name in ("src", "backup_id") if p[name]] + (["latest"] if p["latest"] else [])
        if len(sources) != 1:
            raise PgopsError("Give exactly one of the options src, backup_id and latest, got %s."
                             % (" and ".join(sources) if sources else "none"))
        if p["src"]:
            entry = entry_from_src(p["src"], p["s3"], lambda params, prefix: s3_storage(dict(params, prefix=prefix), option="src"))
        else:
            if not (p["dest"] or p["s3"]):
                raise PgopsError("Option %s needs option dest and/or s3 to look the backup up in." % sources[0])
            database = p["database"] or (p["target_db"] if p["latest"] else None)
            if p["latest"] and not database:
                raise PgopsError("Option latest needs option database or target_db: whose newest backup?")
            entry = entry_from_catalog(storages_from_params(p["dest"], p["s3"]), database=database,
                                       backup_id=p["backup_id"], label=p["label"])
        backup_storages = storages_from_params(p["dest"], p["s3"]) if (p["dest"] or p["s3"]) else \
            ([LocalStorage(entry.catalog_root)] if getattr(entry, "catalog_root", None) else [])
        encryption = Encryption(**p["encryption"]) if p["encryption"] else None

        def restore():
            request = RestoreRequest(
                entry, target_db=p["target_db"], mode=p["mode"], confirm=p["confirm"], drop_previous=p["drop_previous"],
                pre_restore_backup=p["pre_restore_backup"], backup_storages=backup_storages if p["pre_restore_backup"] else None,
                jobs=p["jobs"], single_transaction=p["single_transaction"], no_owner=p["no_owner"], role=p["role"],
                schemas=p["schemas"], tables=p["tables"], restore_globals=p["globals"], owner=p["owner"],
                tablespace=p["tablespace"], validate=p["validate"], analyze=p["analyze"], encryption=encryption,
                work_dir=p["work_dir"], lock_wait=p["lock_wait"], disconnect_timeout=p["disconnect_timeout"],
                client_bindir=p["client_bindir"], maintenance_db=p["maintenance_db"])
            return Restore(settings, request, check_mode=module.check_mode, diff=module._diff).run()

        if encryption is None:
            return restore()
        with encryption:
            return restore()

    run_engine(module, engine)


if __name__ == "__main__":
    main()
