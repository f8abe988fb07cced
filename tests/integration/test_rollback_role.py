"""The rollback role through ansible-runner against the real server, as the runbook runs it
(the migrate role in a block, the rollback role in its rescue) and on its own: a failed
migration undone by downgrade (plain SQL with undo files), by restoring the pre-migration
backup (Prisma without down.sql), a downgrade that cannot bring deleted rows back followed
by the restore, and no way back at all. Afterwards the schema fingerprint and the exact row
counts equal the pre-migration baseline."""

import os
import secrets

import pytest
from psycopg2 import sql

from tests.conftest import ROOT, connection_vars
from tests.harness.migrations import HISTORY_TABLES, copy_project, migrate
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "migrations")
PRISMA_STEPS = ["20260101000100_users_and_plans", "20260101000200_providers_and_patients",
                "20260101000300_appointments", "20260101000400_subscriptions"]


@pytest.fixture
def short_db(cluster):
    """A database with a short name (the restore's swap appends __pre_restore_<time>), dropped afterwards."""
    name = "rb_" + secrets.token_hex(4)
    cluster.primary.execute(sql.SQL("CREATE DATABASE {} OWNER pgops_app").format(sql.Identifier(name)))
    yield name
    rows = cluster.primary.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (name + "%",)) or []
    for (db,) in rows:
        cluster.primary.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))


def seed(cluster, db, with_providers=True):
    """Rows in the version-2 tables, as an application would have written them."""
    cluster.primary.execute(
        "INSERT INTO users (email, password_hash) SELECT 'u' || g || '@clinic.example', 'h' FROM generate_series(1, 40) g;"
        "INSERT INTO plans (name, price_cents, \"interval\") VALUES ('basic', 900, 'month'), ('plus', 1900, 'month');"
        "INSERT INTO patients (user_id, first_name, last_name, date_of_birth, mrn) "
        "SELECT g, 'F' || g, 'L' || g, date '1980-01-01' + g, 'MRN' || g FROM generate_series(1, 25) g;", dbname=db)
    if with_providers:
        cluster.primary.execute("INSERT INTO providers (user_id, npi, specialty) "
                                "SELECT g, lpad(g::text, 10, '0'), 'gp' FROM generate_series(1, 5) g", dbname=db)


def snapshot(pg, db, dest=None):
    options = dict(connection_vars(pg, db=db), exact_counts=True)
    if dest:
        options["dest"] = str(dest)
    run = run_play([{"name": "snap", "pgops.runbook.db_snapshot": options}])
    result = run.result("snap")
    assert not result["failed"], result.get("msg")
    return result["snapshot"]


def comparable(snap):
    """What must equal the baseline: the fingerprint and exact row counts, history tables left out."""
    rows = dict((t, v["rows"]) for t, v in snap["tables"].items() if t.split(".")[-1] not in HISTORY_TABLES)
    return snap["fingerprint"], rows


def backup(pg, db, dest):
    dest.mkdir(exist_ok=True)
    run = run_play([{"name": "backup", "pgops.runbook.backup": dict(connection_vars(pg, db=db), dest=str(dest))}])
    result = run.result("backup")
    assert not result["failed"], result.get("msg")
    return result["backup_id"]


def runbook(pg, db, project, tool, baseline, backup_id=None, backup_dest=None, rollback_vars=None):
    """The runbook's shape: migrate in a block, rollback in its rescue (the migration as pgops_app,
    the rollback as pgops_admin, who may replace the database)."""
    facts = {"preflight_outcome": {"passed": True, "baseline": {"path": str(baseline)}}}
    if backup_id:
        facts["backup_outcome"] = {"backup_id": backup_id, "verified": True}
    rollback = dict(rollback_connection=connection_vars(pg, db=db), rollback_project_dir=str(project),
                    rollback_backup_dest=str(backup_dest or ""))
    rollback.update(rollback_vars or {})
    tasks = [
        {"name": "Record what preflight and backup found", "ansible.builtin.set_fact": facts},
        {"name": "Migrate, roll back on failure",
         "block": [{"name": "migrate", "ansible.builtin.include_role": {"name": "pgops.runbook.migrate"},
                    "vars": {"migrate_project_dir": str(project), "migrate_tool": tool,
                             "migrate_connection": connection_vars(pg, user="pgops_app", db=db)}}],
         "rescue": [{"name": "rollback", "ansible.builtin.include_role": {"name": "pgops.runbook.rollback"},
                     "vars": rollback}]},
    ]
    return run_play(tasks)


def append(path, text):
    path.write_text(path.read_text() + text)


def test_failed_sql_migration_is_undone_by_downgrade(cluster, pg, short_db, tmp_path):
    project = copy_project(os.path.join(FIXTURES, "sql"), tmp_path)
    result, dummy = migrate(pg, short_db, project_dir=str(project), state="target", target="2")
    assert not result["failed"], result.get("msg")
    seed(cluster, short_db)
    baseline = snapshot(pg, short_db, dest=tmp_path / "baseline.json")
    append(project / "V4__subscriptions.sql", "\nALTER TABLE subscriptions ADD COLUMN broken nosuchtype;\n")

    run = runbook(pg, short_db, project, "sql", tmp_path / "baseline.json")
    assert run.status == "successful", run.stdout[-4000:]  # rescued by the rollback
    assert run.stats["migrate_report"]["failed"] is True and run.stats["migrate_report"]["final"] == "3"
    outcome = run.stats["rollback_report"]
    assert outcome["needed"] and outcome["succeeded"], outcome
    assert outcome["strategy"] == "downgrade" and outcome["reason"] == "the tool can undo 3 down to version 2."
    assert [(m["version"], m["direction"]) for m in outcome["undone"]] == [("3", "down")]
    assert outcome["validation"]["passed"] and outcome["validation"]["compared"]
    assert outcome["message"].endswith("the database matches the pre-migration baseline.")
    assert comparable(snapshot(pg, short_db)) == comparable(baseline)
    assert pg["passwords"]["pgops_admin"] not in run.all_text


def test_failed_prisma_migration_without_down_sql_is_undone_by_restoring_the_backup(cluster, pg, short_db, tmp_path):
    project = copy_project(os.path.join(FIXTURES, "prisma"), tmp_path)
    result, dummy = migrate(pg, short_db, project_dir=str(project), tool="prisma", state="target", target=PRISMA_STEPS[1])
    assert not result["failed"], result.get("msg")
    seed(cluster, short_db)
    baseline = snapshot(pg, short_db, dest=tmp_path / "baseline.json")
    backup_id = backup(pg, short_db, tmp_path / "backups")
    for step in PRISMA_STEPS[2:]:
        os.unlink(str(project / "prisma" / "migrations" / step / "down.sql"))
    append(project / "prisma" / "migrations" / PRISMA_STEPS[3] / "migration.sql",
           "\nALTER TABLE subscriptions ADD COLUMN broken nosuchtype;\n")

    run = runbook(pg, short_db, project, "prisma", tmp_path / "baseline.json", backup_id, tmp_path / "backups")
    assert run.status == "successful", run.stdout[-4000:]
    assert run.stats["migrate_report"]["final"] == PRISMA_STEPS[2]
    outcome = run.stats["rollback_report"]
    assert outcome["succeeded"] and outcome["strategy"] == "restore", outcome
    assert "has no down.sql" in outcome["reason"]
    assert outcome["backup_id"] == backup_id and outcome["previous_db"].startswith(short_db + "__pre_restore_")
    assert comparable(snapshot(pg, short_db)) == comparable(baseline)
    # The replaced database is kept, with the half-migrated schema.
    kept = cluster.primary.execute("SELECT to_regclass('public.appointments') IS NOT NULL", dbname=outcome["previous_db"])
    assert kept == [(True,)]


def test_a_downgrade_that_cannot_bring_deleted_rows_back_is_followed_by_the_restore(cluster, pg, short_db, tmp_path):
    project = copy_project(os.path.join(FIXTURES, "sql"), tmp_path)
    migrate(pg, short_db, project_dir=str(project), state="target", target="2")
    seed(cluster, short_db)
    baseline = snapshot(pg, short_db, dest=tmp_path / "baseline.json")
    backup_id = backup(pg, short_db, tmp_path / "backups")
    for name in os.listdir(str(project)):
        if name[0] in "VUR" and not name.startswith(("V1_", "V2_", "U1_", "U2_")):
            os.unlink(str(project / name))
    # A release that purges rows: its undo can only say so.
    (project / "V3__purge_test_accounts.sql").write_text("DELETE FROM patients WHERE id > 20;\n")
    (project / "U3__purge_test_accounts.sql").write_text("SELECT 'the purged rows are not coming back';\n")
    result, dummy = migrate(pg, short_db, project_dir=str(project))
    assert not result["failed"] and result["final"] == "3", result.get("msg")

    # Validation failed (row counts), so the runbook calls the rollback with what migrate recorded.
    run = run_play([
        {"name": "Record the run", "ansible.builtin.set_fact": {
            "preflight_outcome": {"baseline": {"path": str(tmp_path / "baseline.json")}},
            "backup_outcome": {"backup_id": backup_id}, "migrate_outcome": {"tool": "sql", "previous": "2"}}},
        {"name": "rollback", "ansible.builtin.include_role": {"name": "pgops.runbook.rollback"},
         "vars": {"rollback_connection": connection_vars(pg, db=short_db), "rollback_project_dir": str(project),
                  "rollback_backup_dest": str(tmp_path / "backups")}}])
    assert run.status == "successful", run.stdout[-4000:]
    outcome = run.stats["rollback_report"]
    assert outcome["succeeded"] and outcome["strategy"] == "restore", outcome
    assert outcome["reason"].startswith("the downgrade left differences from the baseline (Table public.patients has 20 rows, 25 before")
    assert [m["version"] for m in outcome["undone"]] == ["3"]
    assert comparable(snapshot(pg, short_db)) == comparable(baseline)


def test_no_way_back_fails_clearly_and_changes_nothing(cluster, pg, short_db, tmp_path):
    project = copy_project(os.path.join(FIXTURES, "sql"), tmp_path)
    os.unlink(str(project / "U3__appointments.sql"))
    migrate(pg, short_db, project_dir=str(project), state="target", target="2")
    baseline = snapshot(pg, short_db, dest=tmp_path / "baseline.json")
    append(project / "V4__subscriptions.sql", "\nALTER TABLE subscriptions ADD COLUMN broken nosuchtype;\n")
    run = runbook(pg, short_db, project, "sql", tmp_path / "baseline.json")
    assert run.status == "failed"
    outcome = run.stats["rollback_report"]
    assert not outcome["succeeded"] and outcome["strategy"] == "restore"
    assert "Cannot restore (Option target: version 3 has no undo file U3__<description>.sql" in outcome["message"]
    assert "set rollback_backup_id" in outcome["message"] and "Traceback" not in run.all_text
    after = snapshot(pg, short_db)
    assert "public.appointments" in after["tables"] and after["fingerprint"] != baseline["fingerprint"]  # untouched


def test_rollback_playbook_downgrades_to_the_version_given(cluster, pg, short_db, tmp_path):
    project = copy_project(os.path.join(FIXTURES, "sql"), tmp_path)
    migrate(pg, short_db, project_dir=str(project), state="target", target="2")
    seed(cluster, short_db)
    baseline = snapshot(pg, short_db, dest=tmp_path / "baseline.json")
    migrate(pg, short_db, project_dir=str(project))
    inventory = {"all": {"children": {"databases": {"hosts": {"db1": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "pgops_connection": connection_vars(pg, db=short_db), "pgops_project_dir": str(project)}}}}}}
    run = run_play(None, playbook=os.path.join(ROOT, "playbooks", "rollback.yml"), inventory=inventory,
                   extravars={"env": "staging", "strategy": "downgrade", "previous": "2",
                              "baseline": str(tmp_path / "baseline.json")})
    assert run.status == "successful", run.stdout[-4000:]
    outcome = run.stats["rollback_report"]
    assert outcome["strategy"] == "downgrade" and outcome["succeeded"]
    assert [m["version"] for m in outcome["undone"]] == ["views", "4", "3"] or \
        [m["version"] for m in outcome["undone"]] == ["4", "3"], outcome["undone"]
    assert comparable(snapshot(pg, short_db)) == comparable(baseline)
