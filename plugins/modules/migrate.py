#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: migrate
short_description: Apply schema migrations safely - serialised, lock-bounded, all or nothing per migration
version_added: 0.1.0
description:
  - Brings a database's schema to the latest or a target version with one set of options and one
    result shape, whatever the project's migration tool.
  - "O(tool=auto) recognises the tool from O(project_dir): C(prisma/schema.prisma) or C(prisma/migrations) - Prisma;
    C(alembic.ini) - Alembic; C(manage.py) - Django; C(V<version>__<description>.sql) files - plain SQL."
  - Alembic versions are revision ids (a unique prefix of 3 or more characters is accepted as O(target)); Django
    versions are C(<app>.<migration>) (C(clinic.0002) is accepted when unambiguous) in Django's plan order.
    O(migrations_dir) does not apply to them (their own configuration names the migrations).
  - Alembic and Django run from the application's own environment (O(executable), its Python), reaching
    the database through O(database_url_env) and E(PGOPTIONS) set from the connection options; they are
    applied one migration per tool run, so each has its own duration, and their state comes from the tool.
  - "Prisma - the state is read from Prisma's own C(_prisma_migrations) table against C(prisma/migrations)
    in both of its paths. With the real Prisma CLI (O(executable), or C(node_modules/.bin/prisma) in
    O(project_dir)), O(state=latest) runs C(prisma migrate deploy) (which takes Prisma's advisory lock
    72707369 itself). Without a CLI, and for O(state=target) and downgrades, the module applies the
    migrations natively, holding lock 72707369 itself so the real CLI and the module exclude each other,
    each C(migration.sql) in one transaction with the bookkeeping the CLI writes (same checksum), which
    the CLI accepts afterwards. A downgrade runs the migration's C(down.sql) and marks the row rolled back
    (as C(prisma migrate resolve --rolled-back) leaves it); without C(down.sql), roll back by restoring the
    pre-migration backup. Unlike Prisma, the module refuses a C(migration.sql) edited after it was applied."
  - "Plain SQL uses Flyway's file names: C(V<version>__<description>.sql) applies in version order,
    C(U<version>__<description>.sql) undoes that version, C(R__<description>.sql) is re-applied after
    the versioned ones when its checksum changed or an undo ran since (only when the run reaches the
    latest version). The history table (O(history_table)) records version, description, script,
    sha256 checksum, applied_by, applied_at, duration_s and success; it is the single truth of what
    was applied."
  - "Each versioned migration runs in one transaction with its history row, so it applies whole or not
    at all. A file that must run outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...) starts
    with C(-- pgops: no-transaction); its statements then run one by one, and a failure names the
    statement and what it left (for example an INVALID index and the statement that drops it). A file
    holding only such statements is recognised and run that way without the directive; one mixing them with
    other statements is refused before anything runs."
  - The run holds an advisory lock on the database from before it reads the history to its end; a
    second run waits up to O(lock_wait), then fails. No migration is applied twice.
  - Every migration statement runs under O(lock_timeout) (and O(statement_timeout)), so an ALTER that
    waits behind a long transaction gives up after O(lock_timeout) instead of queueing every later
    read and write behind it; it is retried up to O(lock_retries) times with jittered, growing waits.
  - Conflicts refuse the run and are listed in RV(conflicts) - a file edited after it was applied
    (checksum drift), an applied version whose file is gone, a pending version older than the applied
    one, a migration that failed part way outside a transaction.
options:
  project_dir:
    description: The project holding the migrations.
    type: path
    required: true
  migrations_dir:
    description: The directory of the migration files, when not O(project_dir) itself or its C(migrations/) or C(sql/).
    type: path
  tool:
    description: The migration tool; C(auto) detects it from O(project_dir).
    type: str
    choices: [ auto, sql, prisma, alembic, django ]
    default: auto
  state:
    description:
      - C(latest) applies everything pending; C(target) goes to O(target) (down only with O(allow_downgrade));
        C(status) reads the state and changes nothing.
    type: str
    choices: [ latest, target, status ]
    default: latest
  target:
    description: The version to bring the database to, with O(state=target).
    type: str
  allow_downgrade:
    description: Allow O(state=target) to undo migrations above O(target).
    type: bool
    default: false
  lock_wait:
    description: How long to wait for another migration run on the same database (seconds, or C(30s), C(2min)).
    type: str
    default: "60"
  lock_timeout:
    description: The lock_timeout every migration statement runs under (C(0) disables it).
    type: str
    default: 5s
  statement_timeout:
    description: The statement_timeout every migration statement runs under (default none).
    type: str
  lock_retries:
    description: How many times a migration that hit O(lock_timeout) (SQLSTATE 55P03) is retried.
    type: int
    default: 5
  history_table:
    description: The SQL tool's history table (optionally schema-qualified).
    type: str
    default: pgops_schema_history
  rehearse:
    description:
      - A real dry run, for every tool - the database's schema and the rows of the migration tools' history
        tables are copied into a scratch database (pg_dump and psql), the pending migrations are applied there
        as they would be here, and the scratch database is dropped. Returns RV(rehearsal) - per-migration
        timings, the schema changes, and whether it succeeded; the task fails when the rehearsal fails. The
        database itself is not changed. The login role needs CREATEDB.
    type: bool
    default: false
  rehearse_data:
    description:
      - With O(rehearse), rehearse on the data too - the newest backup of the database in O(backup_dest) /
        O(backup_s3) (with O(backup_label); not one that failed verification) is restored into the scratch
        database by the restore engine, instead of copying the schema. The rehearsal then runs the
        migrations that are pending relative to that backup.
    type: bool
    default: false
  backup_dest:
    description: For O(rehearse_data), the local directory of the backups (O(pgops.runbook.backup#module:dest)).
    type: path
  backup_label:
    description: For O(rehearse_data), only backups with this label.
    type: str
  backup_encryption:
    description: For O(rehearse_data), the key of an encrypted backup.
    type: dict
    suboptions:
      passphrase:
        description: The passphrase of a passphrase-encrypted backup. Never logged.
        type: str
      private_key:
        description: File holding the private key of a public-key encrypted backup.
        type: path
  executable:
    description:
      - For Alembic and Django - the Python of the application's environment (its virtualenv's C(bin/python)),
        which must be able to import the tool; default the Python running the module.
      - For Prisma - the Prisma CLI (for example C(node_modules/.bin/prisma)); default C(node_modules/.bin/prisma) in
        O(project_dir) when it exists, else the native path (see the description).
    type: path
  environment:
    description: Extra environment variables for the migration tool (for example its settings module).
    type: dict
    default: {}
  database_url_env:
    description:
      - The environment variable the tool reads its database URL from. The module sets it from the connection
        options (same host, database, user, password and SSL settings), so the tool reaches the same database with
        the same credentials - never on a command line. The URL also carries the run's O(lock_timeout) and
        O(statement_timeout) as its C(options) parameter, and so does E(PGOPTIONS).
    type: str
    default: DATABASE_URL
extends_documentation_fragment:
  - pgops.runbook.s3.backup_s3
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the state and returns the plan (RV(planned), with each migration's SQL) without taking the lock or applying anything.
  diff_mode:
    support: full
    details: The schema objects with their definitions before and after; in check mode, the schema now and the SQL
      the plan would run (O(rehearse) gives the schema after without touching the database).
  platform:
    platforms: posix
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Apply pending SQL migrations, never waiting more than 3 s for a lock
  pgops.runbook.migrate:
    login_db: healthcare_db
    project_dir: /srv/app/db
    lock_timeout: 3s
    lock_retries: 10

- name: Show what would run
  pgops.runbook.migrate:
    login_db: healthcare_db
    project_dir: /srv/app/db
  check_mode: true
  register: plan

- name: Go back to version 2
  pgops.runbook.migrate:
    login_db: healthcare_db
    project_dir: /srv/app/db
    state: target
    target: "2"
    allow_downgrade: true
'''

RETURN = r'''
tool:
  description: The migration tool used.
  returned: always
  type: str
  sample: sql
current:
  description: The version the database was at before the run (null when nothing was applied).
  returned: always
  type: str
  sample: "2"
final:
  description: The version after the run.
  returned: always
  type: str
  sample: "4"
applied:
  description: The migrations applied (or undone), in order - version, name, duration_s, direction (up or down).
  returned: always
  type: list
  elements: dict
  sample: [{version: "3", name: appointments, duration_s: 0.021, direction: up}, {version: "4", name: subscriptions, duration_s: 0.015, direction: up}]
pending:
  description: The migrations still pending after the run - version, name, sql.
  returned: always
  type: list
  elements: dict
  sample: []
planned:
  description: What the run applies (in check mode - would apply) - version, name, sql, direction.
  returned: unless O(state=status)
  type: list
  elements: dict
  sample: [{version: "3", name: appointments, sql: "CREATE TABLE appointments (...);", direction: up}]
conflicts:
  description:
    - What makes applying unsafe - kind, version, message. Kinds - checksum (a file edited after it was applied; SQL,
      Prisma), missing (applied but no longer in the project), out_of_order (SQL, Prisma), failed (a migration that
      failed part way; SQL, Prisma), multiple_heads (Alembic), conflicting_leaves and inconsistent (Django).
  returned: always
  type: list
  elements: dict
  sample: [{kind: checksum, version: "2", message: "V2__patients.sql was edited after it was applied (sha256 9c1f04ab77e2, applied 51d0c3e8f9a4)."}]
rehearsal:
  description:
    - With O(rehearse) - succeeded, scratch_db (dropped), copy_s, applied (per-migration duration_s), final,
      schema_changes, retries, duration_s, message.
  returned: with O(rehearse)
  type: dict
  sample: {succeeded: true, scratch_db: pgops_rehearse_3f9a2c1d5e6b7a80, copy_s: 0.84,
           applied: [{version: "3", name: appointments, duration_s: 0.021, direction: up},
                     {version: "4", name: subscriptions, duration_s: 0.015, direction: up}],
           final: "4", schema_changes: ["Table public.appointments is new.", "Table public.subscriptions is new."], retries: [],
           duration_s: 1.92, message: "Rehearsed on a copy of the schema: Applied 2 migrations with sql: version 2 -> 4."}
retries:
  description: Migrations retried after a lock timeout - migration, attempt, waited_s.
  returned: always
  type: list
  elements: dict
  sample: [{migration: V3__appointments.sql, attempt: 1, waited_s: 0.5}]
schema_changes:
  description: With --diff, the schema differences the run made, one sentence each.
  returned: with --diff when something was applied
  type: list
  elements: str
  sample: ["Table public.appointments is new."]
msg:
  description: One sentence saying what was done.
  returned: always
  type: str
  sample: "Applied 2 migrations with sql: version 2 -> 4."
'''

from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import s3_argument_spec
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.engine import MigrateRequest, run_migrate
from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine


def main():
    module = pgops_module(
        dict(
            project_dir=dict(type="path", required=True),
            migrations_dir=dict(type="path"),
            tool=dict(type="str", choices=["auto", "sql", "prisma", "alembic", "django"], default="auto"),
            state=dict(type="str", choices=["latest", "target", "status"], default="latest"),
            target=dict(type="str"),
            allow_downgrade=dict(type="bool", default=False),
            lock_wait=dict(type="str", default="60"),
            lock_timeout=dict(type="str", default="5s"),
            statement_timeout=dict(type="str"),
            lock_retries=dict(type="int", default=5),
            history_table=dict(type="str", default="pgops_schema_history"),
            executable=dict(type="path"),
            environment=dict(type="dict", default={}),
            database_url_env=dict(type="str", default="DATABASE_URL"),
            rehearse=dict(type="bool", default=False),
            rehearse_data=dict(type="bool", default=False),
            backup_dest=dict(type="path"),
            backup_s3=dict(type="dict", options=s3_argument_spec()),
            backup_label=dict(type="str"),
            backup_encryption=dict(type="dict", no_log=False, options=dict(
                passphrase=dict(type="str", no_log=True),
                private_key=dict(type="path"),
            ), mutually_exclusive=[["private_key", "passphrase"]], required_one_of=[["private_key", "passphrase"]]),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        request = MigrateRequest(
            p["project_dir"], tool=p["tool"], migrations_dir=p["migrations_dir"], state=p["state"], target=p["target"],
            allow_downgrade=p["allow_downgrade"], lock_wait=p["lock_wait"], lock_timeout=p["lock_timeout"],
            statement_timeout=p["statement_timeout"], lock_retries=p["lock_retries"], history_table=p["history_table"],
            executable=p["executable"], environment=p["environment"], database_url_env=p["database_url_env"],
            rehearse=p["rehearse"], rehearse_data=p["rehearse_data"], backup_dest=p["backup_dest"], backup_s3=p["backup_s3"],
            backup_label=p["backup_label"], backup_encryption=p["backup_encryption"])
        return run_migrate(settings, request, check_mode=module.check_mode, diff=module._diff)

    run_engine(module, engine)


if __name__ == "__main__":
    main()
