"""migrate with plain SQL migrations (Flyway names) through Ansible against the real server:
the healthcare fixture project, status, plan, target and downgrade, a migration failing
half way, two runs at once, a migration blocked behind a long transaction, drift."""

import os
import time

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.migrations import LockHolder, Reads, at_once, fingerprint, history_rows, migrate, tables
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "sql")  # the `project` fixture copies it
TABLES = ["appointments", "patients", "plans", "providers", "subscriptions", "users"]


def history(cluster, db):
    return history_rows(cluster, db, "pgops_schema_history", "version, kind, success", "installed_rank")


def test_apply_all_then_status_then_nothing_to_do(cluster, pg, project, database):
    planned, dummy = migrate(pg, database, project_dir=str(project), check=True, diff=True)
    assert not planned["failed"], planned.get("msg")
    assert "-- apply 1 (users and plans)\n-- V1: user accounts" in planned["diff"]["after"]
    assert planned["changed"] and [m["version"] for m in planned["planned"]] == ["1", "2", "3", "4", "views"]
    assert "CREATE TABLE users" in planned["planned"][0]["sql"]
    assert tables(cluster, database) == []  # check mode applied nothing
    result, dummy = migrate(pg, database, project_dir=str(project), diff=True)
    assert not result["failed"], result.get("msg")
    assert result["tool"] == "sql" and result["current"] is None and result["final"] == "4"
    assert [m["version"] for m in result["applied"]] == ["1", "2", "3", "4", "views"]
    assert tables(cluster, database) == TABLES
    assert "table public.appointments: " in result["diff"]["after"] and "table public" not in result["diff"]["before"]
    assert '"starts_at", "timestamp with time zone", true' in result["diff"]["after"]
    assert history(cluster, database) == [("1", "versioned", True), ("2", "versioned", True), ("3", "versioned", True),
                                          ("4", "versioned", True), (None, "repeatable", True)]
    status, dummy = migrate(pg, database, project_dir=str(project), state="status")
    assert not status["changed"] and status["current"] == "4" and status["pending"] == [] and status["conflicts"] == []
    again, dummy = migrate(pg, database, project_dir=str(project))
    assert not again["changed"] and again["applied"] == []


def test_target_downgrade_and_back(cluster, pg, project, database):
    result, dummy = migrate(pg, database, project_dir=str(project), state="target", target="2")
    assert not result["failed"] and result["final"] == "2", result.get("msg")
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]
    up, dummy = migrate(pg, database, project_dir=str(project))
    assert up["final"] == "4" and [m["version"] for m in up["applied"]] == ["3", "4", "views"]
    refused, dummy = migrate(pg, database, project_dir=str(project), state="target", target="2")
    assert refused["failed"] and "set allow_downgrade" in refused["msg"]
    down, dummy = migrate(pg, database, project_dir=str(project), state="target", target="2", allow_downgrade=True)
    assert not down["failed"], down.get("msg")
    assert [(m["version"], m["direction"]) for m in down["applied"]] == [("4", "down"), ("3", "down")]
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]
    # Up again: the view is re-created because an undo ran since it was applied.
    again, dummy = migrate(pg, database, project_dir=str(project))
    assert [m["version"] for m in again["applied"]] == ["3", "4", "views"]
    assert cluster.primary.execute("SELECT count(*) FROM upcoming_appointments", dbname=database) == [(0,)]


def test_a_migration_failing_half_way_leaves_the_schema_as_it_was(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target="2")
    before = fingerprint(pg, database)
    (project / "V3__appointments.sql").write_text(
        (project / "V3__appointments.sql").read_text() + "\nALTER TABLE appointments ADD COLUMN broken nosuchtype;\n")
    result, run = migrate(pg, database, project_dir=str(project))
    assert result["failed"] and "Migration 3 (V3__appointments.sql) failed at line" in result["msg"], result["msg"]
    assert 'type "nosuchtype" does not exist' in result["msg"] and "rolled back whole" in result["msg"]
    assert "Traceback" not in run.all_text
    assert fingerprint(pg, database) == before
    assert [r[0] for r in history(cluster, database)] == ["1", "2"]


def test_two_runs_at_once_apply_each_migration_once(cluster, pg, project, database):
    runs = at_once(lambda: migrate(pg, database, project_dir=str(project)), lambda: migrate(pg, database, project_dir=str(project)))
    results = [result for result, dummy in runs]
    assert all(not r["failed"] for r in results), [r.get("msg") for r in results]
    assert sorted(len(r["applied"]) for r in results) == [0, 5]
    assert [r[0] for r in history(cluster, database)] == ["1", "2", "3", "4", None]


def test_second_run_gives_up_after_lock_wait(cluster, pg, project, database):
    with LockHolder.advisory(pg, database, "SELECT pg_advisory_lock(%s::int, hashtext(%s))", (0x70676F6D, "sql|" + database)):
        result, dummy = migrate(pg, database, project_dir=str(project), lock_wait="1s")
    assert result["failed"] and "Another migration of" in result["msg"] and "lock_wait" in result["msg"]
    assert tables(cluster, database) == []


def test_migration_behind_a_long_transaction_retries_then_succeeds(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target="2")
    (project / "V3__appointments.sql").write_text("ALTER TABLE patients ADD COLUMN allergies text;\n")
    (project / "V4__subscriptions.sql").unlink()
    (project / "R__views.sql").unlink()  # it reads appointments, which this project no longer has
    with LockHolder.table(pg, database, "patients", seconds=2.5, waited=1.0):  # a long transaction, as an application's
        started = time.monotonic()
        result, dummy = migrate(pg, database, project_dir=str(project), state="target", target="3", lock_timeout="500ms",
                                lock_retries=8)
    assert not result["failed"], result.get("msg")
    assert result["retries"] and result["retries"][0]["migration"] == "V3__appointments.sql"
    assert time.monotonic() - started >= 2.0
    assert cluster.primary.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'allergies'",
                                   dbname=database) == [(1,)]


def test_migration_behind_a_long_transaction_fails_cleanly_without_stalling_traffic(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target="2")
    (project / "V3__appointments.sql").write_text("ALTER TABLE patients ADD COLUMN allergies text;\n")
    # Another application's reads while the migration waits: none may wait longer than lock_timeout.
    with LockHolder.table(pg, database, "patients"), \
            Reads(cluster, database, "SELECT count(*) FROM patients", at_least=3) as reads:
        result, dummy = migrate(pg, database, project_dir=str(project), state="target", target="3", lock_timeout="500ms",
                                lock_retries=1)
    assert result["failed"] and "lock_timeout" in result["msg"] and "The database is at version 2" in result["msg"]
    assert max(reads.waits) < 0.5 + 0.5, max(reads.waits)
    assert [r[0] for r in history(cluster, database)] == ["1", "2"]


def test_checksum_drift_and_missing_files_are_refused(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project))
    (project / "V2__providers_and_patients.sql").write_text(
        (project / "V2__providers_and_patients.sql").read_text() + "\n-- edited later\n")
    (project / "V5__more.sql").write_text("CREATE TABLE more (id int);\n")
    result, dummy = migrate(pg, database, project_dir=str(project))
    assert result["failed"] and "Refusing to migrate" in result["msg"]
    assert "V2__providers_and_patients.sql was edited after it was applied" in result["msg"]
    assert [c["kind"] for c in result["conflicts"]] == ["checksum"]
    assert "more" not in tables(cluster, database)
    status, dummy = migrate(pg, database, project_dir=str(project), state="status")
    assert not status["failed"] and status["conflicts"][0]["kind"] == "checksum"
    (project / "V2__providers_and_patients.sql").unlink()
    result, dummy = migrate(pg, database, project_dir=str(project))
    assert result["failed"] and "Version 2 (V2__providers_and_patients.sql) is applied but its file is no longer" in result["msg"]


def test_concurrent_index_runs_outside_a_transaction_and_reports_leftovers(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project))
    (project / "V5__index.sql").write_text("CREATE TABLE wards (id int);\n"
                                           "CREATE INDEX CONCURRENTLY patients_name ON patients (last_name);\n")
    refused, dummy = migrate(pg, database, project_dir=str(project))
    assert refused["failed"] and "cannot run inside a transaction, and the file has other statements" in refused["msg"]
    assert "wards" not in tables(cluster, database)
    # Alone in its file it is detected and run outside a transaction, without a header.
    (project / "V5__index.sql").write_text("CREATE INDEX CONCURRENTLY patients_name ON patients (last_name);\n")
    applied, dummy = migrate(pg, database, project_dir=str(project))
    assert not applied["failed"] and applied["final"] == "5", applied.get("msg")
    # A unique index that cannot be built leaves an INVALID index: the error says how to clean it up.
    cluster.primary.execute("INSERT INTO users (email, password_hash) VALUES ('a@x', 'h'), ('b@x', 'h')", dbname=database)
    cluster.primary.execute("UPDATE users SET password_hash = 'same'", dbname=database)
    (project / "V6__unique.sql").write_text("-- pgops: no-transaction\n"
                                            "CREATE UNIQUE INDEX CONCURRENTLY users_hash ON users (password_hash);\n")
    failed, dummy = migrate(pg, database, project_dir=str(project))
    assert failed["failed"] and "INVALID index public.users_hash" in failed["msg"], failed["msg"]
    assert "DROP INDEX CONCURRENTLY public.users_hash" in failed["msg"]
    status, dummy = migrate(pg, database, project_dir=str(project), state="status")
    assert status["conflicts"] and status["conflicts"][0]["kind"] == "failed"


@pytest.mark.parametrize("options, message", [
    (dict(project_dir="/nonexistent"), "Option project_dir: /nonexistent is not a directory."),
    (dict(EMPTY=True), "holds no migrations this module recognises"),
    (dict(state="target"), "Option target is required with state target."),
    (dict(state="target", target="9"), "Option target: version 9 is not a migration of the project"),
    (dict(lock_timeout="soon"), "Option lock_timeout must be a duration"),
    (dict(tool="alembic"), "Option project_dir: %s holds no alembic.ini"),
    (dict(BROKEN=True), "unknown directive '-- pgops: transactional'"),
])
def test_bad_input_is_one_sentence_and_applies_nothing(cluster, pg, project, database, tmp_path, options, message):
    options = dict(options)
    options.setdefault("project_dir", str(project))
    if options.pop("EMPTY", False):
        options["project_dir"] = str(tmp_path)
    if options.pop("BROKEN", False):
        (project / "V9__broken.sql").write_text("-- pgops: transactional\nSELECT 1;\n")
    result, run = migrate(pg, database, **options)
    message = message % options["project_dir"] if "%s" in message else message
    assert result["failed"] and message in result["msg"], result.get("msg")
    assert "Traceback" not in run.all_text
    assert tables(cluster, database) == []


def test_health_check_reports_pending_and_conflicting_migrations(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target="2")

    def check():
        run = run_play([{"name": "health", "pgops.runbook.health_check": connection_vars(
            pg, user="pgops_app", db=database, checks=["migration_status"], fail_on="never",
            migrations=dict(project_dir=str(project)))}])
        result = run.result("health")
        assert not result["failed"], result.get("msg")
        return result["checks"][0]

    pending = check()
    assert pending["status"] == "warning" and pending["value"] == 3, pending
    assert pending["details"]["pending"] == ["3", "4", "views"]
    (project / "V1__users_and_plans.sql").write_text("-- edited\n" + (project / "V1__users_and_plans.sql").read_text())
    drifted = check()
    assert drifted["status"] == "critical" and "was edited after it was applied" in drifted["message"], drifted
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]  # read-only


def test_migrate_role_shows_the_plan_then_applies_it(cluster, pg, project, database):
    task = {"name": "migrate role", "ansible.builtin.include_role": {"name": "pgops.runbook.migrate"},
            "vars": {"migrate_project_dir": str(project),
                     "migrate_connection": connection_vars(pg, user="pgops_app", db=database)}}
    run = run_play([task])
    assert run.status == "successful", run.stdout[-3000:]
    assert "Would apply 5 migrations with sql from version None: 1, 2, 3, 4, views." in run.stdout
    report = run.stats["migrate_report"]
    assert report["final"] == "4" and [m["version"] for m in report["applied"]] == ["1", "2", "3", "4", "views"]
    assert tables(cluster, database) == TABLES
    assert pg["passwords"]["pgops_app"] not in run.all_text


def test_rehearse_applies_the_plan_to_a_scratch_copy_only(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target="2")
    cluster.primary.execute("INSERT INTO users (email, password_hash) VALUES ('kept@x', 'h')", dbname=database)
    before = fingerprint(pg, database)
    refused, dummy = migrate(pg, database, project_dir=str(project), rehearse=True)
    assert refused["failed"] and "Option rehearse needs a login role that may create databases" in refused["msg"]
    result, dummy = migrate(pg, database, project_dir=str(project), rehearse=True, user="pgops_admin")
    assert not result["failed"], result.get("msg")
    rehearsal = result["rehearsal"]
    assert rehearsal["succeeded"] and [m["version"] for m in rehearsal["applied"]] == ["3", "4", "views"]
    assert rehearsal["final"] == "4" and any("appointments" in c for c in rehearsal["schema_changes"])
    assert not result["changed"] and fingerprint(pg, database) == before
    assert rehearsal["scratch_db"] not in [r[0] for r in cluster.primary.execute("SELECT datname FROM pg_database")]
    # A migration that fails in the rehearsal fails the task, and the database is still untouched.
    (project / "V5__bad.sql").write_text("ALTER TABLE users ADD COLUMN x nosuchtype;\n")
    failed, dummy = migrate(pg, database, project_dir=str(project), rehearse=True, user="pgops_admin")
    assert failed["failed"] and "The rehearsal failed" in failed["msg"] and "nosuchtype" in failed["msg"]
    assert [m["version"] for m in failed["rehearsal"]["applied"]] == ["3", "4"]
    assert fingerprint(pg, database) == before


def test_rehearse_data_restores_the_latest_backup_and_applies_the_plan_there(cluster, pg, project, database, tmp_path):
    migrate(pg, database, project_dir=str(project), state="target", target="2")
    cluster.primary.execute("INSERT INTO users (email, password_hash) SELECT 'u' || g || '@x', 'h' "
                            "FROM generate_series(1, 500) g", dbname=database)
    backup = run_play([{"name": "backup", "pgops.runbook.backup": connection_vars(
        pg, db=database, dest=str(tmp_path), label="nightly")}]).result("backup")
    assert not backup["failed"], backup.get("msg")
    (project / "V3__appointments.sql").write_text("ALTER TABLE users ADD COLUMN note text NOT NULL DEFAULT 'x';\n"
                                                  "UPDATE users SET note = email;\n")
    (project / "V4__subscriptions.sql").unlink()
    (project / "R__views.sql").unlink()
    before = fingerprint(pg, database)
    missing, dummy = migrate(pg, database, project_dir=str(project), rehearse=True, rehearse_data=True, user="pgops_admin")
    assert missing["failed"] and "Option rehearse_data needs the backups' location" in missing["msg"]
    result, dummy = migrate(pg, database, project_dir=str(project), rehearse=True, rehearse_data=True, user="pgops_admin",
                            backup_dest=str(tmp_path), backup_label="nightly")
    assert not result["failed"], result.get("msg")
    rehearsal = result["rehearsal"]
    assert rehearsal["succeeded"] and "a restore of backup %s" % backup["backup_id"] in rehearsal["message"]
    assert [m["version"] for m in rehearsal["applied"]] == ["3"]
    assert fingerprint(pg, database) == before
    leftovers = [r[0] for r in cluster.primary.execute("SELECT datname FROM pg_database")
                 if r[0].startswith("pgops_rehearse_")]
    assert leftovers == []
