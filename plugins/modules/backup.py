#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup
short_description: Make a verified, streamed PostgreSQL backup to local disk and/or S3
version_added: 0.1.0
description:
  - Streams pg_dump (or pg_dumpall for globals) through optional compression and GPG
    encryption into every destination in one pass, computing the sha256 of the stored
    bytes as they are written; nothing is written twice and nothing is read back to hash it.
  - The dump becomes visible only when every process of the pipeline exited 0 (a local
    C(.partial) file renamed, an S3 multipart upload completed); otherwise it is removed
    (or the upload aborted) and the task fails. A C(manifest.json) is written beside it
    last, atomically; a backup without a manifest is incomplete.
  - pg_dump runs on a snapshot exported by the module's own transaction, in which the
    exact row count of every table, the sizes and the schema fingerprint are read for the
    manifest, so they describe exactly what was dumped.
  - Two backups of one database are serialised by an advisory lock on the server (whatever
    their destinations); the second waits up to O(lock_wait) seconds.
  - The manifest also records the migration version when the database has a known history table
    (Prisma C(_prisma_migrations), Alembic C(alembic_version), Django C(django_migrations), Flyway
    C(flyway_schema_history)), read in the same snapshot.
  - Layout, locally and in S3, C(<database>/<backup_id>/<database>.dump[.gz|.zst|.lz4][.gpg])
    and C(<database>/<backup_id>/manifest.json); files 0600, directories 0700.
options:
  type:
    description:
      - What to dump - everything, the schema only, the data only, or the cluster's roles and
        tablespaces (C(pg_dumpall --globals-only), always plain SQL).
    type: str
    choices: [ full, schema, data, globals ]
    default: full
  include_globals:
    description:
      - With O(type=full), also store the cluster's roles and tablespaces (pg_dumpall
        C(--globals-only)) beside the dump, through the same compression and encryption, as
        C(globals.sql[...]) with its own sha256 in the manifest. Reading role passwords needs a superuser.
    type: bool
    default: false
  format:
    description:
      - pg_dump's archive format. C(custom) restores selectively and in parallel with pg_restore.
      - C(directory) dumps tables in parallel (O(jobs)) into a private work directory (O(work_dir)), then
        copies each file into every destination, hashed as it is copied; gzip or none, no encryption yet.
    type: str
    choices: [ custom, directory, plain ]
    default: custom
  jobs:
    description: Tables dumped at once with O(format=directory) (and restored at once by O(verify=restore)).
    type: int
    default: 1
  work_dir:
    description:
      - Where O(format=directory) lets pg_dump write before the files are stored (the system's temporary
        directory by default); it needs room for the whole dump and is removed afterwards.
    type: path
  compression:
    description:
      - Compression method. For the custom format gzip is done by pg_dump itself; zstd and lz4
        (and every method for plain SQL) run in the stream, which needs the C(zstd), C(lz4) or
        C(gzip) program on the host running the module.
    type: str
    choices: [ gzip, zstd, lz4, none ]
    default: gzip
  compression_level:
    description:
      - Compression level; gzip 1-9 (default 6), zstd 1-19 (default 3), lz4 1-12 (default 1).
    type: int
  schemas:
    description: Dump only these schemas (pg_dump C(--schema) patterns); one matching nothing is an error.
    type: list
    elements: str
    default: []
  exclude_schemas:
    description: Leave these schemas out (C(--exclude-schema)).
    type: list
    elements: str
    default: []
  tables:
    description:
      - Dump only these tables (C(--table) patterns); one matching nothing fails the task
        before any data is written.
    type: list
    elements: str
    default: []
  exclude_tables:
    description: Leave these tables out (C(--exclude-table)).
    type: list
    elements: str
    default: []
  exclude_table_data:
    description: Dump these tables' definitions but not their rows (C(--exclude-table-data)).
    type: list
    elements: str
    default: []
  dest:
    description:
      - A local directory to store the backup under. It must exist.
      - At least one of O(dest) and O(s3) is required.
    type: path
  encryption:
    description:
      - GPG encryption in the stream, before the bytes leave the host. To a recipient's public
        key (the backup host then cannot read old backups) or with a passphrase.
    type: dict
    suboptions:
      public_key:
        description: File holding the recipient's public key (armored or binary).
        type: path
      passphrase:
        description: Symmetric passphrase (AES256). Never logged, never on a command line.
        type: str
      private_key:
        description:
          - File holding the matching private key, used only to verify the contents of a
            public-key encrypted backup. Without it such a backup is verified by its checksum alone.
        type: path
  verify:
    description:
      - C(list) reads the stored backup back and checks its sha256 against the one written (so the stored
        bytes are exactly what pg_dump produced), then its contents - a local custom archive (compressed by
        pg_dump, not encrypted) through the table of contents pg_restore lists, which must hold data for
        every table of the snapshot; anything else (plain SQL, zstd or lz4 in the stream, GPG, S3 only) is
        decrypted and decompressed in one stream and turned into SQL, which must hold data for every table
        and end with pg_dump's completion line. A public-key encrypted backup without
        O(encryption.private_key) is verified by its sha256 alone.
      - C(restore) (O(type=full) only; other types are verified as with C(list)) restores the stored backup,
        in the same single read, into a scratch database C(pgops_verify_<hash>) created for it, compares the
        restored copy's exact row counts and schema fingerprint with the manifest's, and drops it. The login
        role needs CREATEDB. The staging and production profiles of the backup role use it.
      - A backup that fails verification keeps its manifest, marked failed, and fails the task.
    type: str
    choices: [ none, list, restore ]
    default: list
  label:
    description: A label such as C(nightly) or C(pre-migration), part of the backup id.
    type: str
  tags:
    description: "Free-form tags recorded in the manifest, for example C({release: 2.4.1})."
    type: dict
    default: {}
  retention:
    description:
      - Applied after a successful backup, in every destination, to the backups of the same database
        and O(label) only. A backup is kept when it is among the newest O(retention.keep_last) or younger
        than O(retention.keep_days); whatever those say, the newest verified backup and the one just made
        survive, and at least O(retention.min_keep) remain. Without keep_last and keep_days nothing is deleted.
    type: dict
    suboptions:
      keep_last:
        description: Keep the newest this many backups.
        type: int
      keep_days:
        description: Keep backups younger than this many days.
        type: int
      min_keep:
        description: Never leave fewer backups than this.
        type: int
        default: 1
  lock_wait_timeout:
    description:
      - Seconds pg_dump waits for a table lock before failing (C(--lock-wait-timeout)),
        so a backup never queues for ever behind a long lock.
    type: int
  lock_wait:
    description: Seconds to wait for another backup of the same database to finish.
    type: int
    default: 600
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
    details: Connects, checks the client tools and the selection, and reports the database's size and the destinations; writes nothing.
  diff_mode:
    support: none
    details: A backup does not change the database.
  platform:
    platforms: posix
requirements:
  - boto3 (for O(s3))
  - gpg, zstd or lz4 on the host running the module when those options use them
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Nightly backup to local disk and S3, encrypted to the DBA team's key
  pgops.runbook.backup:
    login_db: healthcare_db
    dest: /var/backups/postgresql
    s3:
      bucket: hospital-db-backups
      prefix: prod
      server_side_encryption: aws:kms
      kms_key_id: alias/db-backups
    compression: zstd
    encryption:
      public_key: /etc/pgops/dba-team.pub.asc
    label: nightly
    lock_wait_timeout: 300

- name: Pre-migration backup straight to S3 (no local copy)
  pgops.runbook.backup:
    dsn: "{{ database_url }}"
    s3:
      bucket: hospital-db-backups
    label: pre-migration
    tags:
      release: "2.4.1"
  register: pre_migration_backup
'''

RETURN = r'''
backup_id:
  description: The backup's id, C(<database>-<UTC timestamp>[-<label>]); in check mode, the id it would get.
  returned: success, in check mode, and when the backup failed verification
  type: str
  sample: healthcare_db-20261125T020000Z-nightly
database:
  description: In check mode, the database that would be backed up.
  returned: check mode
  type: str
  sample: healthcare_db
locations:
  description: Where the dump was stored (a path and/or an C(s3://) URI).
  returned: success, and when the backup failed verification
  type: list
  elements: str
  sample: [/var/backups/postgresql/healthcare_db/healthcare_db-20261125T020000Z-nightly/healthcare_db.dump.zst]
path:
  description:
    - The dump's path under O(dest) (for O(format=directory), the directory), or null without O(dest).
    - When a file operation under O(dest) failed, the file or directory it failed on.
  returned: success, when the backup failed verification, and when a local file operation failed
  type: str
  sample: /var/backups/postgresql/healthcare_db/healthcare_db-20261125T020000Z-nightly/healthcare_db.dump.zst
s3_uri:
  description: The dump's C(s3://) URI, or null without O(s3).
  returned: success, and when the backup failed verification
  type: str
  sample: s3://hospital-db-backups/prod/healthcare_db/healthcare_db-20261125T020000Z-nightly/healthcare_db.dump.zst
size_bytes:
  description: Size of the stored dump.
  returned: success, and when the backup failed verification
  type: int
  sample: 73400320
sha256:
  description: sha256 of the stored bytes, computed while they were written.
  returned: success, and when the backup failed verification
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
duration_s:
  description: Seconds the backup took, verification included.
  returned: success, and when the backup failed verification
  type: float
  sample: 42.718
verified:
  description: Whether verification passed.
  returned: success, and when the backup failed verification
  type: bool
  sample: true
verification:
  description: How the stored backup was verified.
  returned: success, and when the backup failed verification
  type: dict
  contains:
    status:
      description: C(passed), C(failed) or C(skipped) (O(verify=none)).
      type: str
    method:
      description:
        - What the verdict rests on - C(list), C(read-back), C(restore), C(checksum) (the contents could not be read,
          or the stored bytes differ), C(none).
      type: str
    message:
      description: One sentence saying what was checked and found.
      type: str
    tables:
      description: The tables found with data (C(list), C(read-back)) or restored (C(restore)).
      type: int
      returned: when the contents were read
    entries:
      description: With C(list), the entries of pg_restore's table of contents.
      type: int
      returned: with O(verify=list) of a local custom archive
    differences:
      description: With C(restore), what the restored copy has unlike the manifest (at most 20).
      type: list
      elements: dict
      returned: when a verification by restore failed
  sample: {status: passed, method: restore, tables: 42,
           message: "sha256 matches; restored into a scratch database, whose 42 tables' exact row counts and schema fingerprint equal the manifest's"}
manifest:
  description:
    - The manifest written beside the dump as C(manifest.json) - backup_id, database, type, dump_format, file,
      compression, encryption, server_version, client_version, started_at, finished_at, size_bytes, sha256, label,
      tags, selection, snapshot (exact row counts, sizes, schema fingerprint), migration_version, files, jobs,
      globals, verification.
  returned: success, and when the backup failed verification
  type: dict
  sample: {backup_id: healthcare_db-20261125T020000Z-nightly, database: healthcare_db, type: full, dump_format: custom,
           file: healthcare_db.dump.zst, migration_version: "3", size_bytes: 73400320}
stages:
  description:
    - Each pipeline process (name) and its exit status (returncode).
    - When a process of the pipeline failed, the same for that run, which names the one that failed.
  returned: success, when the backup failed verification, and when a client tool failed
  type: list
  elements: dict
  sample: [{name: pg_dump, returncode: 0}, {name: zstd, returncode: 0}]
deleted:
  description:
    - The backups retention deleted (in check mode, would delete), each with backup_id, location, verified and finished_at.
    - Empty when the backup failed verification (retention then does not run).
  returned: success, in check mode, and when the backup failed verification
  type: list
  elements: dict
  sample: [{backup_id: healthcare_db-20261024T020000Z-nightly, verified: true, finished_at: "2026-10-24T02:03:05.118230+00:00",
            location: /var/backups/postgresql/healthcare_db/healthcare_db-20261024T020000Z-nightly/healthcare_db.dump.zst}]
discarded_incomplete:
  description: Partial files and unfinished S3 uploads of this database that an earlier failed run left behind
    (for example when the network died before the upload could be aborted), removed once this run held the backup lock.
  returned: success, and when the backup failed verification
  type: list
  elements: str
  sample: []
destinations:
  description: In check mode, where the dump would be stored.
  returned: check mode
  type: list
  elements: str
  sample: [/var/backups/postgresql/healthcare_db/healthcare_db-20261125T020000Z-nightly/healthcare_db.dump.zst]
database_bytes:
  description: In check mode, the database's size on disk.
  returned: check mode
  type: int
  sample: 1073741824
errno:
  description: When a file operation under O(dest) failed, the operating system's error number (28 - no space left).
  returned: when a local file operation failed
  type: int
  sample: 28
operation:
  description: When an S3 request failed, what it was doing (for example C(upload), C(download), C(look up), C(delete objects in)).
  returned: when an S3 request failed
  type: str
  sample: upload
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

from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import s3_argument_spec, storages_from_params
from ansible_collections.pgops.runbook.plugins.module_utils.backup.engine import BackupRequest, run_backup
from ansible_collections.pgops.runbook.plugins.module_utils.backup.retention import RetentionPolicy
from ansible_collections.pgops.runbook.plugins.module_utils.backup.stages import Encryption
from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine


def main():
    module = pgops_module(
        dict(
            type=dict(type="str", choices=["full", "schema", "data", "globals"], default="full"),
            include_globals=dict(type="bool", default=False),
            format=dict(type="str", choices=["custom", "directory", "plain"], default="custom"),
            jobs=dict(type="int", default=1),
            work_dir=dict(type="path"),
            compression=dict(type="str", choices=["gzip", "zstd", "lz4", "none"], default="gzip"),
            compression_level=dict(type="int"),
            schemas=dict(type="list", elements="str", default=[]),
            exclude_schemas=dict(type="list", elements="str", default=[]),
            tables=dict(type="list", elements="str", default=[]),
            exclude_tables=dict(type="list", elements="str", default=[]),
            exclude_table_data=dict(type="list", elements="str", default=[]),
            dest=dict(type="path"),
            s3=dict(type="dict", options=s3_argument_spec()),
            encryption=dict(type="dict", options=dict(
                public_key=dict(type="path"),
                passphrase=dict(type="str", no_log=True),
                private_key=dict(type="path"),
            ), mutually_exclusive=[["public_key", "passphrase"]], required_one_of=[["public_key", "passphrase"]]),
            verify=dict(type="str", choices=["none", "list", "restore"], default="list"),
            label=dict(type="str"),
            tags=dict(type="dict", default={}),
            retention=dict(type="dict", options=dict(
                keep_last=dict(type="int"),
                keep_days=dict(type="int"),
                min_keep=dict(type="int", default=1),
            )),
            lock_wait_timeout=dict(type="int"),
            lock_wait=dict(type="int", default=600),
            client_bindir=dict(type="path"),
        ),
        required_one_of=[["dest", "s3"]],
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        storages = storages_from_params(p["dest"], p["s3"])
        encryption = Encryption(**p["encryption"]) if p["encryption"] else None

        def backup():
            request = BackupRequest(
                storages, type=p["type"], format=p["format"], compression=p["compression"],
                compression_level=p["compression_level"], schemas=p["schemas"], exclude_schemas=p["exclude_schemas"],
                tables=p["tables"], exclude_tables=p["exclude_tables"], exclude_table_data=p["exclude_table_data"],
                encryption=encryption, verify=p["verify"], label=p["label"], tags=p["tags"],
                lock_wait_timeout=p["lock_wait_timeout"], lock_wait=p["lock_wait"], client_bindir=p["client_bindir"],
                retention=RetentionPolicy(**p["retention"]) if p["retention"] else None,
                include_globals=p["include_globals"], jobs=p["jobs"], work_dir=p["work_dir"])
            return run_backup(settings, request, check_mode=module.check_mode)

        if encryption is None:
            return backup()
        with encryption:
            return backup()

    run_engine(module, engine)


if __name__ == "__main__":
    main()
