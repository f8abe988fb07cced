"""migration_lint through Ansible against the real server: the same statement judged by the
real table it touches (info on a small table, error on a large one, the rule's own
severity without a connection), rows counted for a table never analyzed, a table locked by
someone else not holding the lint up, the failure policy and check mode, and exactly the
pending migrations' SQL of each project type, read through the migrate engine."""

import os

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.migration_tools import alembic_python, django_python
from tests.harness.migrations import LockHolder, copy_project, migrate
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "migrations")
# Small enough to build quickly, over large_table_rows below.
LARGE_ROWS = 60000
THRESHOLDS = dict(small_table_rows=1000, large_table_rows=50000)
STATEMENTS = """\
CREATE INDEX lookup_codes_label ON lookup_codes (label);
CREATE INDEX appointments_starts_at ON appointments (starts_at);
CREATE INDEX imported_visits_note ON imported_visits (note);
CREATE TABLE reminders (id bigint PRIMARY KEY, appointment_id bigint NOT NULL);
CREATE INDEX reminders_appointment_id ON reminders (appointment_id);
CREATE INDEX visit_notes_id ON public."Visit Notes" (id);
"""


@pytest.fixture
def tables(cluster, database):
    """A 200-row lookup table, an analyzed 60,000-row table, and a 60,000-row table never analyzed."""
    cluster.primary.execute(
        "CREATE TABLE lookup_codes (id int PRIMARY KEY, label text);"
        "INSERT INTO lookup_codes SELECT g, 'code ' || g FROM generate_series(1, 200) g;"
        "CREATE TABLE appointments (id bigint PRIMARY KEY, starts_at timestamptz);"
        "INSERT INTO appointments SELECT g, now() + g * interval '1 minute' FROM generate_series(1, %d) g;"
        "ANALYZE lookup_codes; ANALYZE appointments;"
        "CREATE TABLE imported_visits (id bigint, note text) WITH (autovacuum_enabled = false);"
        "INSERT INTO imported_visits SELECT g, 'visit ' || g FROM generate_series(1, %d) g;"
        "CREATE TABLE \"Visit Notes\" (id bigint) WITH (autovacuum_enabled = false);"
        "INSERT INTO \"Visit Notes\" SELECT g FROM generate_series(1, 300) g;"
        "GRANT ALL ON ALL TABLES IN SCHEMA public TO pgops_app;" % (LARGE_ROWS, LARGE_ROWS), dbname=database)
    return database


def lint_task(name, **options):
    return {"name": name, "pgops.runbook.migration_lint": options, "ignore_errors": True}


def by_table(result, rule="require-concurrent-index-creation"):
    return dict((f["table"], f) for f in result["findings"] if f["rule"] == rule)


def test_the_same_statement_is_judged_by_the_real_table(cluster, pg, tables):
    run = run_play([
        lint_task("connected", sql=STATEMENTS, thresholds=THRESHOLDS, fail_on="never",
                  **connection_vars(pg, user="pgops_app", db=tables)),
        lint_task("text alone", sql=STATEMENTS, thresholds=THRESHOLDS, fail_on="never"),
    ])
    connected, alone = run.result("connected"), run.result("text alone")
    assert not connected.get("failed") and connected["connected"] is True, connected.get("msg")
    found = by_table(connected)
    assert found["lookup_codes"]["severity"] == "info" and found["lookup_codes"]["table_rows"] == 200
    assert found["appointments"]["severity"] == "error" and found["appointments"]["table_rows"] == LARGE_ROWS
    assert found["appointments"]["lock"] == "SHARE" and found["appointments"]["table_bytes"] > 1000000
    assert "CONCURRENTLY" in found["appointments"]["fix"] and found["appointments"]["line"] == 2
    # Never analyzed: reltuples says nothing, so the rows were counted (stopping one past "large").
    assert found["imported_visits"]["table_rows"] == THRESHOLDS["large_table_rows"] + 1
    assert found["imported_visits"]["severity"] == "error"
    assert "reminders" not in found  # created earlier in the same migration
    # A quoted, schema-qualified name never analyzed: found and counted under its own spelling.
    assert found["public.Visit Notes"]["table_rows"] == 300 and found["public.Visit Notes"]["severity"] == "info"
    assert alone["connected"] is False
    assert dict((t, f["severity"]) for t, f in by_table(alone).items()) == {
        "lookup_codes": "warning", "appointments": "warning", "imported_visits": "warning", "public.Visit Notes": "warning"}
    assert all(f["table_rows"] is None for f in alone["findings"])
    # Read-only: no index was created.
    assert cluster.primary.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%%_starts_at' "
                                   "OR indexname LIKE '%%_label' OR indexname LIKE '%%_note'", dbname=tables)[0][0] == 0


def test_the_policy_fails_the_task_and_check_mode_judges_the_same(cluster, pg, tables, tmp_path):
    sql_file = tmp_path / "V7__index.sql"
    sql_file.write_text("-- pgops-lint: ignore ban-drop-column\nCREATE INDEX appointments_starts_at ON appointments (starts_at);\n")
    options = dict(paths=[str(sql_file)], thresholds=THRESHOLDS, **connection_vars(pg, user="pgops_app", db=tables))
    run = run_play([lint_task("strict", **options),
                    lint_task("report only", fail_on="never", **options)], verbosity=3)
    strict, report = run.result("strict"), run.result("report only")
    assert strict["failed"] is True
    assert "require-concurrent-index-creation at V7__index.sql line 2" in strict["msg"], strict["msg"]
    assert strict["summary"]["error"] == 1 and strict["summary"]["failed"] is True
    rules = sorted(f["rule"] for f in report["findings"])
    # The file is wrapped in a transaction by default and the suppression matches nothing.
    assert rules == ["require-concurrent-index-creation", "require-lock-timeout", "unused-suppression"], rules
    assert not report.get("failed")
    assert pg["passwords"]["pgops_app"] not in run.all_text
    checked = run_play([lint_task("check", **options)], check=True).result("check")
    # The same judgement (sizes are re-read, and autovacuum may have re-estimated the rows meanwhile).
    judged = ("rule", "severity", "file", "line", "statement", "lock", "table")
    assert checked["failed"] is True
    assert [[f[k] for k in judged] for f in checked["findings"]] == [[f[k] for k in judged] for f in strict["findings"]]
    assert cluster.primary.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'appointments_starts_at'",
                                   dbname=tables)[0][0] == 0


def test_a_table_locked_by_someone_else_does_not_hold_the_lint_up(cluster, pg, tables):
    # Sizes need a share lock: behind an ACCESS EXCLUSIVE holder the lint gives up on the size
    # (lock_timeout) and keeps the rule's own severity, while the holder still holds its lock.
    with LockHolder.table(pg, tables, "appointments", "ACCESS EXCLUSIVE", seconds=120) as holder:
        run = run_play([lint_task("lint", sql="CREATE INDEX appointments_starts_at ON appointments (starts_at);",
                                  thresholds=THRESHOLDS, fail_on="never", **connection_vars(pg, user="pgops_app", db=tables))])
        still_held = not holder.released.is_set()
    result = run.result("lint")
    assert not result.get("failed"), result.get("msg")
    finding = by_table(result)["appointments"]
    assert finding["table_rows"] is None and finding["severity"] == "warning"
    assert still_held


@pytest.mark.parametrize("tool, applied, pending", [
    ("sql", "2", ["V3__appointments.sql", "V4__subscriptions.sql", "R__views.sql"]),  # a repeatable runs again after a change
    ("prisma", "20260101000200_providers_and_patients", ["20260101000300_appointments", "20260101000400_subscriptions"]),
    ("alembic", "0002", ["0003", "0004"]),
    ("django", "clinic.0002_providers_and_patients", ["0003_appointments", "0004_subscriptions"]),
])
def test_exactly_the_pending_migrations_sql_is_linted(cluster, pg, database, tmp_path, tool, applied, pending):
    project = copy_project(os.path.join(FIXTURES, tool), tmp_path)
    extra = {}
    if tool == "alembic":
        extra["executable"] = alembic_python()
    elif tool == "django":
        extra["executable"] = django_python()
    result, dummy = migrate(pg, database, project_dir=str(project), state="target", target=applied, **extra)
    assert not result["failed"], result.get("msg")
    # A table the applied migrations made, grown past "large", for the pending ones' statements to be judged by.
    run = run_play([lint_task("lint", project_dir=str(project), fail_on="never", thresholds=THRESHOLDS,
                              **dict(connection_vars(pg, user="pgops_app", db=database), **extra))])
    lint = run.result("lint")
    assert not lint.get("failed"), lint.get("msg")
    assert lint["tool"] == tool and lint["connected"] is True
    assert len(lint["sources"]) == len(pending), lint["sources"]
    for source, name in zip(lint["sources"], pending):
        assert name in source, lint["sources"]
    assert lint["summary"]["statements"] >= 2
    # The pending migrations create their tables, their indexes and foreign keys on them: nothing
    # there locks a table that has rows, and the migrate module sets lock_timeout.
    serious = [f for f in lint["findings"] if f["severity"] in ("warning", "error")]
    assert serious == [], serious


def test_a_dangerous_pending_migration_is_found_with_its_table_size(cluster, pg, database, tmp_path):
    project = copy_project(os.path.join(FIXTURES, "sql"), tmp_path)
    result, dummy = migrate(pg, database, project_dir=str(project))
    assert not result["failed"], result.get("msg")
    cluster.primary.execute("INSERT INTO plans (name, price_cents, \"interval\") SELECT 'plan ' || g, g, 'month' FROM generate_series(1, 3000) g;"
                            "ANALYZE plans", dbname=database)
    (project / "V5__plans_price.sql").write_text("ALTER TABLE plans ALTER COLUMN price_cents TYPE numeric(12, 2);\n")
    run = run_play([lint_task("lint", project_dir=str(project), thresholds=THRESHOLDS, fail_on="warning",
                              **connection_vars(pg, user="pgops_app", db=database))])
    lint = run.result("lint")
    assert lint["failed"] is True and lint["sources"] == [str(project / "V5__plans_price.sql")]
    finding = [f for f in lint["findings"] if f["rule"] == "changing-column-type"][0]
    assert finding["table"] == "plans" and finding["table_rows"] == 3000 and finding["lock"] == "ACCESS EXCLUSIVE"
    assert finding["severity"] == "warning"  # between small (1,000) and large (50,000)
    assert "changing-column-type at V5__plans_price.sql line 1" in lint["msg"], lint["msg"]


@pytest.mark.parametrize("options, message", [
    (dict(), "one of the following is required: sql, paths, project_dir"),
    (dict(sql="SELECT 1", paths=["/tmp"]), "parameters are mutually exclusive: sql|paths|project_dir"),
    (dict(sql="SELECT 1", rules=["no-such-rule"]), "Option rules: unknown rule no-such-rule"),
    (dict(paths=["/nonexistent/V1__x.sql"]), "Option paths: /nonexistent/V1__x.sql does not exist."),
    (dict(sql="SELECT 1", fail_on="sometimes"), "value of fail_on must be one of: error, warning, never"),
    (dict(sql="SELECT 1", thresholds=dict(small_table_rows=5, large_table_rows=1)),
     "Option thresholds: small_table_rows (5) is above large_table_rows (1)."),
])
def test_bad_input_is_one_sentence(options, message):
    result = run_play([lint_task("lint", **options)]).result("lint")
    assert result["failed"] is True and message in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"] and "findings" not in result
