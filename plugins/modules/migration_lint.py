#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: migration_lint
short_description: Find the migration statements that would lock or break production, judged against the real tables
version_added: 0.1.0
description:
  - Parses migration SQL with PostgreSQL's own grammar (pglast, built on libpg_query) and
    reports each statement that takes a lock for long, rewrites a table, breaks running
    application code or loses data, with the lock it takes and on which table, why it
    is dangerous, and the safe way to do it.
  - The SQL is O(sql), the C(.sql) files of O(paths), or exactly the pending migrations
    of a project (O(project_dir)) as the M(pgops.runbook.migrate) module would run them -
    SQL files, Prisma C(migration.sql), Alembic offline SQL, Django C(sqlmigrate).
  - Connected (always with O(project_dir); with O(sql) or O(paths) when O(login_host),
    O(login_unix_socket), O(login_port), O(login_db) or O(dsn) is given), severity follows
    the real table - a lock-taking or rewriting statement on a table under
    O(thresholds.small_table_rows) rows and O(thresholds.small_table_bytes) bytes is
    C(info), over O(thresholds.large_table_rows) rows C(error). A statement on a table
    created earlier in the same migration is never reported. Without a connection the
    rules judge the text alone.
  - Rule names follow squawk where the hazard is the same (require-concurrent-index-creation,
    constraint-missing-not-valid, adding-field-with-default, ban-drop-column, ...), plus
    truncate, update-without-where, delete-without-where, vacuum-full, cluster and
    alter-enum-add-value-in-transaction. A statement that does not parse is a C(syntax-error)
    finding with its line; PL/pgSQL bodies and DO blocks are reported as not inspected.
  - "Suppression by comment: C(-- pgops-lint: ignore ban-drop-column) in or just before a
    statement, C(-- pgops-lint: ignore-file <rule>) for a whole file. A suppression that
    matches nothing is itself reported (unused-suppression)."
  - Read-only; it never changes the database.
options:
  sql:
    description:
      - SQL text to lint, as one source. Exactly one of O(sql), O(paths) and O(project_dir).
    type: str
  paths:
    description:
      - Files, or directories searched recursively for C(*.sql) files (in name order), each
        file one source.
    type: list
    elements: path
  project_dir:
    description:
      - A migration project; its pending migrations are linted, each as one source, with the
        SQL the M(pgops.runbook.migrate) module would run. Needs a connection (the database
        says what is pending).
    type: path
  tool:
    description:
      - The project's migration tool, as for M(pgops.runbook.migrate); C(auto) detects it.
    type: str
    choices: [auto, sql, prisma, alembic, django]
    default: auto
  migrations_dir:
    description:
      - The migrations directory, when not the tool's default, as for M(pgops.runbook.migrate).
    type: path
  executable:
    description:
      - The Python interpreter (Alembic, Django) or Prisma CLI rendering the SQL, as for M(pgops.runbook.migrate).
    type: path
  environment:
    description:
      - Environment variables for the tool rendering the SQL, as for M(pgops.runbook.migrate).
    type: dict
    default: {}
  database_url_env:
    description:
      - The variable the project reads its database URL from, as for M(pgops.runbook.migrate).
    type: str
    default: DATABASE_URL
  in_transaction:
    description:
      - Whether the runner wraps each source in a transaction, which matters to the rules
        about statements that cannot run in one (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE).
      - Default - C(true) for O(paths) (how M(pgops.runbook.migrate) runs SQL files), C(false)
        for O(sql) (psql's autocommit); with O(project_dir) each migration says for itself.
    type: bool
  runner_sets_lock_timeout:
    description:
      - Whether the runner sets C(lock_timeout) before each migration, which satisfies
        require-lock-timeout. Default - C(true) with O(project_dir) (M(pgops.runbook.migrate)
        sets it), otherwise C(false).
    type: bool
  fail_on:
    description:
      - Fail the task when a finding of this severity or worse is found. C(never) only reports.
    type: str
    choices: [error, warning, never]
    default: error
  rules:
    description:
      - Run only these rules (default all). An unknown name is refused.
    type: list
    elements: str
    default: []
  exclude_rules:
    description:
      - Do not run these rules. An unknown name is refused.
    type: list
    elements: str
    default: []
  thresholds:
    description:
      - The table sizes that make a finding C(info) or C(error) when connected.
    type: dict
    default: {}
    suboptions:
      small_table_rows:
        description: Under this many rows (and O(thresholds.small_table_bytes)) a table is small.
        type: int
        default: 10000
      small_table_bytes:
        description: Under this many bytes (and O(thresholds.small_table_rows) rows) a table is small.
        type: int
        default: 10485760
      large_table_rows:
        description: Over this many rows a table is large.
        type: int
        default: 1000000
extends_documentation_fragment:
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - pglast (PostgreSQL's parser for Python)
notes:
  - Table sizes come from C(pg_class.reltuples) and C(pg_total_relation_size); a table
    never analyzed has its rows counted, stopping one past O(thresholds.large_table_rows),
    under a 5 second statement timeout.
seealso:
  - module: pgops.runbook.migrate
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Lint the pending migrations with the production policy
  pgops.runbook.migration_lint:
    login_host: db1.internal
    login_user: migrator
    login_password: "{{ vault_migrator_password }}"
    login_db: healthcare_db
    project_dir: /srv/app
    fail_on: error

- name: Lint SQL files in review, without a database
  pgops.runbook.migration_lint:
    paths: [migrations/]
    fail_on: warning
    exclude_rules: [prefer-text-field]

- name: One statement, judged against the real table
  pgops.runbook.migration_lint:
    login_host: db1.internal
    login_db: healthcare_db
    sql: CREATE INDEX appointments_starts_at ON appointments (starts_at);
    fail_on: never
  register: lint
'''

RETURN = r'''
findings:
  description: One per hazard found, in the order of the sources and statements.
  returned: always
  type: list
  elements: dict
  contains:
    rule:
      description: The rule's name (squawk's where the hazard is the same).
      type: str
      sample: require-concurrent-index-creation
    severity:
      description: error, warning or info (after the table's size was taken into account).
      type: str
    file:
      description: The source - a file's path, C(sql), or the migration.
      type: str
    line:
      description: The statement's first line in the source.
      type: int
    statement:
      description: The statement (shortened past 200 characters).
      type: str
    lock:
      description: The lock the statement takes, by PostgreSQL's name for it, or null.
      type: str
      sample: ACCESS EXCLUSIVE
    table:
      description: The table it is taken on, as written, or null.
      type: str
    table_rows:
      description: The table's rows (estimate, or counted) when connected, or null.
      type: int
    table_bytes:
      description: The table's total size when connected, or null.
      type: int
    why:
      description: Why it is dangerous.
      type: str
    fix:
      description: The safe way to do it.
      type: str
  sample:
    - {rule: require-concurrent-index-creation, severity: error, file: migrations/V3__appointments.sql, line: 12,
       statement: CREATE INDEX appointments_patient_idx ON appointments (patient_id), lock: SHARE, table: appointments,
       table_rows: 2400000, table_bytes: 412090368,
       why: "CREATE INDEX holds a SHARE lock for the whole build: every INSERT, UPDATE and DELETE on the table waits.",
       fix: "CREATE INDEX CONCURRENTLY, alone in a migration that runs outside a transaction."}
summary:
  description: Counts of the findings by severity (error, warning, info), statements, files, a one-line C(line), and C(failed).
  returned: always
  type: dict
  sample: {error: 1, warning: 2, info: 0, statements: 14, files: 2, line: "14 statements: 1 errors, 2 warnings, 0 info", failed: true}
sources:
  description: The sources linted, in order.
  returned: always
  type: list
  elements: str
  sample: [migrations/V3__appointments.sql, migrations/V4__subscriptions.sql]
connected:
  description: Whether table sizes and the server version were read from the database.
  returned: always
  type: bool
  sample: true
tool:
  description: The migration tool, with O(project_dir).
  returned: with O(project_dir)
  type: str
  sample: sql
current:
  description: The version the database is at, with O(project_dir).
  returned: with O(project_dir)
  type: str
  sample: "2"
duration_s:
  description: Seconds spent parsing and judging.
  returned: always
  type: float
  sample: 0.038
msg:
  description: One sentence with the counts (and, when it fails, the first finding).
  returned: always
  type: str
  sample: "migration_lint: 14 statements: 0 errors, 2 warnings, 0 info in 2 pending migrations of sql."
'''

from ansible_collections.pgops.runbook.plugins.module_utils.lint.runner import LintRequest, run_lint
from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine

# Any of these means "connect" for sql / paths (project_dir always connects).
CONNECTING_OPTIONS = ("login_host", "login_unix_socket", "login_port", "login_db", "dsn")


def main():
    module = pgops_module(
        dict(
            sql=dict(type="str"),
            paths=dict(type="list", elements="path"),
            project_dir=dict(type="path"),
            tool=dict(type="str", choices=["auto", "sql", "prisma", "alembic", "django"], default="auto"),
            migrations_dir=dict(type="path"),
            executable=dict(type="path"),
            environment=dict(type="dict", default={}),
            database_url_env=dict(type="str", default="DATABASE_URL"),
            in_transaction=dict(type="bool"),
            runner_sets_lock_timeout=dict(type="bool"),
            fail_on=dict(type="str", choices=["error", "warning", "never"], default="error"),
            rules=dict(type="list", elements="str", default=[]),
            exclude_rules=dict(type="list", elements="str", default=[]),
            thresholds=dict(type="dict", default={}, options=dict(
                small_table_rows=dict(type="int", default=10000),
                small_table_bytes=dict(type="int", default=10485760),
                large_table_rows=dict(type="int", default=1000000),
            )),
        ),
        mutually_exclusive=[["sql", "paths", "project_dir"]],
        required_one_of=[["sql", "paths", "project_dir"]],
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        request = LintRequest(
            sql=p["sql"], paths=p["paths"], project_dir=p["project_dir"], tool=p["tool"], migrations_dir=p["migrations_dir"],
            executable=p["executable"], environment=p["environment"], database_url_env=p["database_url_env"],
            in_transaction=p["in_transaction"], runner_sets_lock_timeout=p["runner_sets_lock_timeout"], fail_on=p["fail_on"],
            rules=p["rules"], exclude_rules=p["exclude_rules"], thresholds=p["thresholds"],
            connect=any(p[name] not in (None, "") for name in CONNECTING_OPTIONS))
        return run_lint(settings, request)

    run_engine(module, engine)


if __name__ == "__main__":
    main()
