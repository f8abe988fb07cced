#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: health_check
short_description: Check the health of a PostgreSQL server and database
version_added: 0.1.0
description:
  - Runs read-only health checks over one connection and reports each as
    C(ok), C(warning), C(critical) or C(skipped), with the value measured, the
    thresholds applied and a one-sentence message.
  - Sends a fixed number of SQL statements whatever the number of tables (one for
    the shared context and at most one per check), with two exceptions - the opt-in
    C(orphaned_records) check sends one statement per relationship, and
    C(sequence_exhaustion) one per tenth of the server's lock table of sequences
    (640 with the defaults), because reading a sequence locks it until the statement
    ends and thousands of locks at once could exhaust the lock table for every session.
  - The session is read-only, with O(statement_timeout) and a 2 s C(lock_timeout)
    so that a check never queues behind a migration's lock.
  - A check the login role may not run is C(skipped) with the reason, never a failure.
  - "Checks and their thresholds (defaults): C(connection) (warning_ms 1000, critical_ms 5000);
    C(server_version) (warning_below 15, critical_below 12);
    C(client_tools) (pg_dump, pg_restore, psql, pg_dumpall on the module host not older than the server);
    C(database_size) (warning_bytes, critical_bytes: unset);
    C(table_count), C(index_count), C(foreign_key_count) (minimum: unset);
    C(connections) (warning_pct 80, critical_pct 95 of max_connections);
    C(cache_hit_ratio) (warning_below_pct 90, critical_below_pct unset, min_blocks 1000);
    C(long_running_queries) (warning_seconds 300, critical_seconds 1800);
    C(idle_in_transaction) (warning_seconds 60, critical_seconds 600);
    C(blocking_locks) (warning_seconds 5, critical_seconds 60; who blocks whom via pg_blocking_pids);
    C(prepared_transactions) (warning_seconds 300, critical_seconds 3600);
    C(deadlocks) (warning_per_hour 1, critical_per_hour 10);
    C(xid_wraparound) (warning_pct 100, critical_pct 200 of autovacuum_freeze_max_age, critical_age 1500000000);
    C(sequence_exhaustion) (warning_pct 75, critical_pct 90 of the range, capped by the column type);
    C(invalid_indexes) (warning_count 1, critical_count unset);
    C(unused_indexes) (min_size_bytes 10485760, warning_count 1, critical_count unset);
    C(table_bloat) (warning_pct 20, critical_pct 50 dead tuples, min_dead_tuples 1000);
    C(seq_scan_heavy) (min_rows 10000, min_seq_scans 50, warning_count 1, critical_count unset);
    C(replication) (warning_lag_seconds 30, critical_lag_seconds 300, min_standbys unset);
    C(replication_slots) (critical_retained_bytes 10737418240; inactive slots warn);
    C(archiver) (require_archiving false);
    C(backup_freshness) (warning_hours 26, critical_hours 50 since the newest verified backup of the database
    in O(backup_dest) / O(backup_s3); critical when there is none; skipped when neither option is given);
    C(backup_destination) (opt-in; a probe file written to and deleted from O(backup_dest) / O(backup_s3), critical when
    either refuses it; skipped when neither option is given);
    C(migration_status) (warning_pending 1, critical_pending 20 pending migrations of the project in O(migrations);
    conflicts - a failed migration, an edited or missing one - are critical; skipped without O(migrations));
    C(not_valid_constraints) (warning_count 1, critical_count unset);
    C(orphaned_records) (opt-in; warning_count unset, critical_count 1, statement_timeout_ms 10000);
    C(slow_queries) (warning_ms 1000, critical_ms 5000, min_calls 1, top 10; needs pg_stat_statements);
    C(disk_space) (warning_free_pct 30, critical_free_pct 10; only on the database host);
    C(security) (require_connection_logging true)."
options:
  checks:
    description:
      - The checks to run, by name. C(default) means every check but the opt-in ones
        (C(orphaned_records)); C(all) means every check.
    type: list
    elements: str
    default: [ default ]
  skip_checks:
    description:
      - Checks not to run, by name.
    type: list
    elements: str
    default: []
  thresholds:
    description:
      - "Per-check threshold overrides, for example
        C({connections: {warning_pct: 70}, disk_space: {warning_free_pct: 40}})."
      - The checks and their thresholds are listed in the description above; an unknown
        check, an unknown threshold or a value of the wrong type is refused.
    type: dict
    default: {}
  fail_on:
    description:
      - Which status fails the task. C(never) only reports.
    type: str
    choices: [ critical, warning, never ]
    default: critical
  prometheus_textfile:
    description:
      - Also write the results to this file in the Prometheus text exposition format,
        atomically, for node_exporter's textfile collector (name it C(*.prom)).
      - Not written in check mode.
    type: path
  relationships:
    description:
      - Relationships the schema does not declare as foreign keys, checked by
        C(orphaned_records) besides every declared foreign key.
    type: list
    elements: dict
    default: []
    suboptions:
      child_table:
        description: The referencing table, optionally schema-qualified (default schema C(public)).
        type: str
        required: true
      child_column:
        description: The referencing column.
        type: str
        required: true
      parent_table:
        description: The referenced table, optionally schema-qualified.
        type: str
        required: true
      parent_column:
        description: The referenced column.
        type: str
        required: true
  query_text_length:
    description:
      - How many characters of query texts to return in details (long-running
        queries, blocked sessions, slow queries). C(0) returns none, for databases
        whose query texts may contain personal data.
    type: int
    default: 100
  statement_timeout:
    description:
      - Seconds any one check's statement may run before the server cancels it
        (the check then reports a warning).
    type: int
    default: 30
  client_bindir:
    description:
      - Directory of the PostgreSQL client tools for the C(client_tools) check.
        When unset, the versioned directories of the distribution and E(PATH) are searched.
    type: path
  migrations:
    description:
      - The application's migration project, for the C(migration_status) check (read with
        M(pgops.runbook.migrate)'s engine, read-only). Suboptions as in M(pgops.runbook.migrate).
    type: dict
    suboptions:
      project_dir:
        description: The project holding the migrations.
        type: path
        required: true
      tool:
        description: The migration tool; C(auto) detects it.
        type: str
        choices: [ auto, sql, prisma, alembic, django ]
        default: auto
      migrations_dir:
        description: The directory of the migration files, when not the tool's default.
        type: path
      executable:
        description: The application's Python (Alembic, Django) or the Prisma CLI.
        type: path
      environment:
        description: Extra environment variables for the migration tool.
        type: dict
      database_url_env:
        description: The environment variable the tool reads its database URL from.
        type: str
        default: DATABASE_URL
      history_table:
        description: The SQL tool's history table.
        type: str
        default: pgops_schema_history
  backup_dest:
    description:
      - A local directory that M(pgops.runbook.backup) stores backups under (O(pgops.runbook.backup#module:dest)), for the
        C(backup_freshness) and C(backup_destination) checks. Both O(backup_dest) and O(backup_s3) may be given;
        each must then hold a fresh verified backup, and accept a write.
    type: path
extends_documentation_fragment:
  - pgops.runbook.s3.backup_s3
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The checks are read-only; in check mode the Prometheus file is not written.
  diff_mode:
    support: none
    details: Nothing is changed on the server.
  platform:
    platforms: posix
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Check the database before a migration
  pgops.runbook.health_check:
    login_host: db1.example.internal
    login_user: monitor
    login_password: "{{ vault_monitor_password }}"
    login_db: healthcare_db
    ssl_mode: verify-full
    ca_cert: /etc/pki/pg-ca.crt
    fail_on: critical
  register: health

- name: Hourly check from AWX with stricter disk and connection limits, metrics for node_exporter
  pgops.runbook.health_check:
    dsn: "{{ database_url }}"
    thresholds:
      connections: {warning_pct: 70}
      disk_space: {warning_free_pct: 40}
    prometheus_textfile: /var/lib/node_exporter/textfile/pgops_health.prom
    fail_on: never

- name: Look for orphaned rows, including a relationship without a foreign key
  pgops.runbook.health_check:
    login_db: healthcare_db
    checks: [orphaned_records]
    relationships:
      - {child_table: public.appointments, child_column: patient_id, parent_table: public.patients, parent_column: id}
'''

RETURN = r'''
checks:
  description: One entry per check run, in a fixed order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check's name.
      type: str
    status:
      description: C(ok), C(warning), C(critical) or C(skipped).
      type: str
    value:
      description: What the check measured (a number where one makes sense; see message for the unit).
      type: raw
    threshold:
      description: The thresholds applied (defaults merged with O(thresholds)).
      type: dict
    message:
      description: One sentence saying what was found, or why the check was skipped.
      type: str
    details:
      description: The objects behind the status (sessions, tables, indexes, slots, ...), when the check lists any.
      type: raw
  sample:
    - {name: connections, status: ok, value: 12.5, threshold: {warning_pct: 80, critical_pct: 95},
       message: "25 of 200 connections in use (12.5 %; 3 active, 22 idle, 0 idle in transaction)."}
summary:
  description: Counts per status and a one-line summary.
  returned: always
  type: dict
  sample: {ok: 25, warning: 1, critical: 0, skipped: 2, total: 28,
           line: "25 checks passed, 1 warning, 0 failed, 2 skipped"}
status:
  description: The worst status among the checks (C(skipped) counts as below C(ok)).
  returned: always
  type: str
  sample: warning
statements:
  description: The number of SQL statements sent.
  returned: always
  type: int
  sample: 31
database:
  description: The database checked.
  returned: always
  type: str
  sample: healthcare_db
server_version:
  description: The server's version string.
  returned: always
  type: str
  sample: "15.8"
in_recovery:
  description: Whether the server is a standby.
  returned: always
  type: bool
  sample: false
duration_s:
  description: Seconds the run took, connecting included.
  returned: always
  type: float
  sample: 0.412
prometheus_textfile:
  description: The metrics file written (or that would be written in check mode).
  returned: when O(prometheus_textfile) is set
  type: str
  sample: /var/lib/node_exporter/textfile/pgops_health.prom
'''

import time

from ansible_collections.pgops.runbook.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import s3_argument_spec
from ansible_collections.pgops.runbook.plugins.module_utils.health.engine import failing_checks, run_health_checks
from ansible_collections.pgops.runbook.plugins.module_utils.health.prometheus import exposition
from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine


def main():
    module = pgops_module(
        dict(
            checks=dict(type="list", elements="str", default=["default"]),
            skip_checks=dict(type="list", elements="str", default=[]),
            thresholds=dict(type="dict", default={}),
            fail_on=dict(type="str", choices=["critical", "warning", "never"], default="critical"),
            prometheus_textfile=dict(type="path"),
            relationships=dict(type="list", elements="dict", default=[], options=dict(
                child_table=dict(type="str", required=True),
                child_column=dict(type="str", required=True),
                parent_table=dict(type="str", required=True),
                parent_column=dict(type="str", required=True),
            )),
            query_text_length=dict(type="int", default=100),
            statement_timeout=dict(type="int", default=30),
            client_bindir=dict(type="path"),
            backup_dest=dict(type="path"),
            backup_s3=dict(type="dict", options=s3_argument_spec()),
            migrations=dict(type="dict", options=dict(
                project_dir=dict(type="path", required=True),
                tool=dict(type="str", choices=["auto", "sql", "prisma", "alembic", "django"], default="auto"),
                migrations_dir=dict(type="path"),
                executable=dict(type="path"),
                environment=dict(type="dict"),
                database_url_env=dict(type="str", default="DATABASE_URL"),
                history_table=dict(type="str", default="pgops_schema_history"),
            )),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        result = run_health_checks(
            settings, checks=p["checks"], skip_checks=p["skip_checks"], thresholds=p["thresholds"],
            options=dict(relationships=p["relationships"], query_text_length=max(p["query_text_length"], 0),
                         statement_timeout=p["statement_timeout"], client_bindir=p["client_bindir"],
                         backup_dest=p["backup_dest"], backup_s3=p["backup_s3"], migrations=p["migrations"]))
        result["changed"] = False
        if p["prometheus_textfile"]:
            result["prometheus_textfile"] = p["prometheus_textfile"]
            if not module.check_mode:
                result["changed"] = write_atomically(p["prometheus_textfile"], exposition(result, time.time()),
                                                     option="prometheus_textfile")
        failing = failing_checks(result["checks"], p["fail_on"])
        if failing:
            result["failed"] = True
            result["msg"] = "Health check of %s: %s. %s" % (result["database"], result["summary"]["line"], " ".join(
                "%s: %s" % (c["name"], c["message"]) for c in failing))
        return result

    run_engine(module, engine)


if __name__ == "__main__":
    main()
