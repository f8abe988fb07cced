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
  - This version drives plain SQL migrations (O(tool=sql)) natively; Prisma, Alembic and Django
    projects are recognised by O(tool=auto) and refused with a clear message until their adapters land.
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
    holding such a statement without the directive is refused before anything runs."
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
extends_documentation_fragment:
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the state and returns the plan (RV(planned), with each migration's SQL) without taking the lock or applying anything.
  diff_mode:
    support: full
    details: The schema objects before and after (each with the hash of its definition).
  platform:
    platforms: posix
notes:
  - Not yet in this version - Prisma, Alembic and Django adapters, C(rehearse), and the executable, environment and
    database_url_env options for external tools.
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
current:
  description: The version the database was at before the run (null when nothing was applied).
  returned: always
  type: str
final:
  description: The version after the run.
  returned: always
  type: str
applied:
  description: The migrations applied (or undone), in order - version, name, duration_s, direction (up or down).
  returned: always
  type: list
  elements: dict
pending:
  description: The migrations still pending after the run - version, name, sql.
  returned: always
  type: list
  elements: dict
planned:
  description: What the run applies (in check mode - would apply) - version, name, sql, direction.
  returned: unless O(state=status)
  type: list
  elements: dict
conflicts:
  description: What makes applying unsafe - kind (checksum, missing, out_of_order, failed), version, message.
  returned: always
  type: list
  elements: dict
retries:
  description: Migrations retried after a lock timeout - migration, attempt, waited_s.
  returned: always
  type: list
  elements: dict
schema_changes:
  description: With --diff, the schema differences the run made, one sentence each.
  returned: with --diff when something was applied
  type: list
  elements: str
msg:
  description: One sentence saying what was done.
  returned: always
  type: str
'''

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
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        request = MigrateRequest(
            p["project_dir"], tool=p["tool"], migrations_dir=p["migrations_dir"], state=p["state"], target=p["target"],
            allow_downgrade=p["allow_downgrade"], lock_wait=p["lock_wait"], lock_timeout=p["lock_timeout"],
            statement_timeout=p["statement_timeout"], lock_retries=p["lock_retries"], history_table=p["history_table"])
        return run_migrate(settings, request, check_mode=module.check_mode, diff=module._diff)

    run_engine(module, engine)


if __name__ == "__main__":
    main()
