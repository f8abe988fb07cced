"""playbooks/migrate.yml, the whole runbook, as an operator runs it (ansible-runner, inventory
group `databases`, -e env=...): for each migration tool from the pre-migration checklist to
the migration record; a failing migration rolled back by downgrade (SQL with undo files) and
by restoring the pre-migration backup (Prisma without down.sql); a validation failure (rows
lost beyond tolerance) rolled back; a lint error stopping everything before any change;
destructive statements needing the typed confirmation in production; a second run changing
nothing. After every rollback the schema fingerprint and exact row counts equal the baseline."""

import glob
import json
import os
import sys

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.migration_tools import alembic_python, django_python
from tests.harness.migrations import HISTORY_TABLES, copy_project, migrate, snapshot
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(ROOT, "playbooks", "migrate.yml")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "migrations")
# The version each tool's fixture project is at before the runbook (V2: users, plans, providers, patients).
AT_V2 = dict(sql="2", prisma="20260101000200_providers_and_patients", alembic="0002",
             django="clinic.0002_providers_and_patients")
FINAL = dict(sql="4", prisma="20260101000400_subscriptions", alembic="0004", django="clinic.0004_subscriptions")
DATA = """
INSERT INTO users (email, password_hash) SELECT 'user' || g || '@clinic.test', 'x' FROM generate_series(1, 200) g;
INSERT INTO providers (user_id, npi, specialty) SELECT g, lpad(g::text, 10, '0'), 'cardiology' FROM generate_series(1, 20) g;
INSERT INTO patients (first_name, last_name, date_of_birth, mrn)
  SELECT 'First' || g, 'Last' || g, date '1960-01-01' + g, 'MRN' || g FROM generate_series(1, 500) g;
ANALYZE;
"""
TABLE_COUNTS = "SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY 1"


def executable(tool):
    return dict(alembic=alembic_python, django=django_python).get(tool, lambda: None)()


class Runbook:
    """A database at V2 of a tool's project, with data, and the runbook's inventory for it."""

    def __init__(self, cluster, pg, database, tmp_path, tool):
        self.cluster, self.pg, self.db, self.tool = cluster, pg, database, tool
        self.project = copy_project(os.path.join(FIXTURES, tool), tmp_path)
        self.backups = tmp_path / "backups"
        self.reports = tmp_path / "reports"
        self.work = tmp_path / "work"
        for directory in (self.backups, self.reports, self.work):
            directory.mkdir()
        extra = {"executable": executable(tool)} if executable(tool) else {}
        result, dummy = migrate(pg, database, user="pgops_admin", project_dir=str(self.project), state="target",
                                target=AT_V2[tool], **extra)
        assert not result["failed"], result.get("msg")
        cluster.primary.execute(DATA, dbname=database)

    def run(self, env="production", verbosity=0, group_vars="", **extra):
        inventory = "[databases]\ndb1 ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
        if group_vars:
            inventory += "[databases:vars]\n%s\n" % group_vars
        extravars = dict(env=env, release="v2.4", pgops_connection=connection_vars(self.pg, db=self.db),
                         pgops_project_dir=str(self.project), pgops_migration_tool=self.tool,
                         backup_dest=str(self.backups), report_dir=str(self.reports), pgops_work_dir=str(self.work),
                         preflight_override_window=True)
        if executable(self.tool):
            extravars["pgops_migrate_executable"] = executable(self.tool)
        extravars.update(extra)
        extravars = dict((k, v) for k, v in extravars.items() if v is not None)
        return run_play(None, playbook=PLAYBOOK, inventory=inventory, extravars=extravars, verbosity=verbosity)

    def state(self):
        """(schema fingerprint, exact row count per table): what a rollback must give back."""
        snap = snapshot(self.pg, self.db, exact_counts=True)
        # The history tables record the downgrade itself: every other table must be back as it was.
        return snap["fingerprint"], dict((name, table["rows"]) for name, table in snap["tables"].items()
                                         if name.split(".")[-1] not in HISTORY_TABLES)

    def report(self):
        found = sorted(glob.glob(str(self.reports / "**" / "*.json"), recursive=True))
        assert found, "no JSON report under %s" % self.reports
        with open(found[-1]) as handle:
            return json.load(handle)

    def add_failing_migration(self, sql="ALTER TABLE no_such_table ADD COLUMN x int;"):
        if self.tool == "sql":
            (self.project / "V5__broken.sql").write_text(sql)
        elif self.tool == "prisma":
            directory = self.project / "prisma" / "migrations" / "20260101000500_broken"
            directory.mkdir()
            (directory / "migration.sql").write_text(sql)
        else:
            raise ValueError(self.tool)


@pytest.fixture
def runbook_for(cluster, pg, database, tmp_path):
    return lambda tool: Runbook(cluster, pg, database, tmp_path, tool)


def changed_tasks(run):
    return sum(sum((e["event_data"].get("changed") or {}).values()) for e in run.events if e["event"] == "playbook_on_stats")


@pytest.mark.parametrize("tool", ["sql", "prisma", "alembic", "django"])
def test_the_whole_runbook_then_a_second_run_changes_nothing(runbook_for, pg, tool):
    book = runbook_for(tool)
    # The backup verified by restoring it (production's) once, with SQL; the other tools' runs
    # verify it by reading it back: the restore verification is the same whatever the tool.
    run = book.run(verbosity=2 if tool == "sql" else 0, backup_verify=None if tool == "sql" else "list")
    assert run.status == "successful", run.stdout[-6000:]
    report = book.report()
    assert report["database"] == book.db and report["environment"] == "production"
    assert report["migrations"]["final"] == FINAL[tool] and report["result"] == "succeeded", report["result"]
    assert FINAL[tool] in [m["version"] for m in report["migrations"]["applied"]]
    assert report["rollback"]["needed"] is False
    assert report["backup"]["backup_id"] and report["backup"]["verified"] is True
    assert os.listdir(str(book.backups))
    assert run.stats["migration_report"]["database"] == book.db
    secrets = [pg["passwords"]["pgops_admin"]]
    for text in (run.all_text, json.dumps(report)):
        assert not [s for s in secrets if s in text]
    if tool in ("alembic", "django"):
        # Their second run (nothing pending) is the SQL and Prisma runs' below, through the same
        # roles; the adapters' own "nothing to do" is tested in test_migrate_alembic/django.py.
        return
    again = book.run()
    assert again.status == "successful", again.stdout[-6000:]
    assert changed_tasks(again) == 0, [r["_task"] for r in again.results if r.get("changed")]
    second = book.report()
    assert not (second["migrations"] or {}).get("applied") and second["result"] == "nothing pending", second


def test_a_failing_migration_is_rolled_back_by_downgrade(runbook_for):
    book = runbook_for("sql")
    before = book.state()
    book.add_failing_migration()
    run = book.run()
    assert run.status == "failed"
    report = book.report()
    assert report["rollback"]["needed"] is True and report["rollback"]["strategy"] == "downgrade"
    assert report["rollback"]["succeeded"] is True, report["rollback"]
    assert book.state() == before


def test_a_failing_prisma_migration_without_down_sql_is_rolled_back_by_restore(runbook_for, cluster):
    book = runbook_for("prisma")
    before = book.state()
    for down in glob.glob(str(book.project / "prisma" / "migrations" / "*" / "down.sql")):
        os.unlink(down)
    book.add_failing_migration()
    # An encrypted pre-migration backup: the rollback reads it back with the key backup_encryption gives.
    run = book.run(group_vars="backup_encryption={'passphrase': 'gpg-Passphrase-%s'}" % os.getpid())
    assert run.status == "failed"
    report = book.report()
    assert report["rollback"]["strategy"] == "restore" and report["rollback"]["succeeded"] is True, report["rollback"]
    assert "gpg-Passphrase-%s" % os.getpid() not in run.all_text
    assert book.state() == before
    kept = report["rollback"]["previous_db"]
    assert kept and cluster.primary.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (kept,)) == [(1,)], kept
    cluster.primary.execute('DROP DATABASE "%s"' % kept)


def test_rows_lost_beyond_tolerance_fail_validation_and_are_restored(runbook_for):
    book = runbook_for("sql")
    before = book.state()
    # Valid SQL and lint-clean (a WHERE), but it deletes half the patients: no undo can bring them back.
    book.add_failing_migration("DELETE FROM patients WHERE id % 2 = 0;")
    run = book.run()
    assert run.status == "failed"
    report = book.report()
    assert any("patients" in problem for problem in report["problems"]), report["problems"]
    assert report["rollback"]["needed"] is True and report["rollback"]["succeeded"] is True, report["rollback"]
    assert book.state() == before


def test_a_lint_error_stops_the_runbook_before_any_change(runbook_for):
    book = runbook_for("sql")
    before = book.state()
    book.add_failing_migration("CREATE INDEX patients_last_name ON patients (last_name);\nDROP TABLE providers CASCADE;")
    run = book.run(env="staging")
    assert run.status == "failed"
    assert "ban-drop-table" in run.stdout
    assert book.state() == before
    assert not os.listdir(str(book.backups))
    report = book.report()
    assert report["result"] == "stopped at preflight" and not report["migrations"], report["result"]
    assert any("ban-drop-table" in p for p in report["problems"]), report["problems"]


def test_destructive_statements_need_the_typed_confirmation_in_production(runbook_for):
    book = runbook_for("sql")
    (book.project / "V5__drop_birth_date.sql").write_text("ALTER TABLE patients DROP COLUMN date_of_birth;\n")
    before = book.state()
    run = book.run()
    assert run.status == "failed" and "-e confirm=%s" % book.db in run.stdout, run.stdout[-3000:]
    assert book.state() == before
    # (the verified backup of a production run is tested above: skipped here to save its time)
    run = book.run(confirm=book.db, pgops_backup_required=False)
    assert run.status == "successful", run.stdout[-6000:]


def test_production_needs_a_maintenance_window_which_group_vars_set(runbook_for):
    book = runbook_for("sql")
    before = book.state()
    run = book.run(preflight_override_window=None)
    assert run.status == "failed" and "No maintenance window is set" in run.stdout, run.stdout[-3000:]
    assert book.report()["result"] == "stopped at preflight" and book.state() == before
    # The inventory's value wins over the environment file's (which leaves it unset in production).
    run = book.run(preflight_override_window=None, group_vars="pgops_maintenance_window=always", pgops_backup_required=False)
    assert run.status == "successful", run.stdout[-6000:]
