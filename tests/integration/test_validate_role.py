"""The validate role through ansible-runner against the real server, after preflight saved the
baseline and a real migration ran: it passes; then a row-count drop beyond the tolerance, an
index left invalid by a failed CREATE UNIQUE INDEX CONCURRENTLY, a failing assertion and a
query made slower (its index dropped) are all listed in one failure; declared changes are
exempt, and the rollback's re-validation compares the schema fingerprint."""

import os

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.migrations import copy_project, migrate
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "sql")
LOOKUP = {"name": "lookup by code", "sql": "SELECT id FROM lookups WHERE code = 'c4242'"}


@pytest.fixture
def project(tmp_path, pg, database, cluster):
    """The healthcare SQL project at version 2 (3, 4 and the views pending), 50 users, and a table
    big enough that a lookup without its index is a slow sequential scan."""
    target = copy_project(FIXTURE, tmp_path)
    result, dummy = migrate(pg, database, project_dir=str(target), state="target", target="2")
    assert not result["failed"], result["msg"]
    for statement in (
        "INSERT INTO users (email, password_hash) SELECT 'u' || g || '@x', 'h' FROM generate_series(1, 50) g",
        "INSERT INTO patients (first_name, last_name, date_of_birth, mrn) "
        "VALUES ('a', 'Same', '1980-01-01', 'm1'), ('b', 'Same', '1980-01-01', 'm2')",
        "CREATE TABLE lookups (id bigint PRIMARY KEY, code text NOT NULL, payload text)",
        "INSERT INTO lookups SELECT g, 'c' || g, repeat('x', 200) FROM generate_series(1, 200000) g",
        "CREATE INDEX lookups_code ON lookups (code)",
        "ALTER TABLE lookups OWNER TO pgops_app",
        "ANALYZE",
    ):
        cluster.primary.execute(statement, dbname=database)
    return target


def runbook_play(pg, database, project, tmp_path, validate=True, **validate_vars):
    """One play: preflight (baseline and timings), the migration, then (unless validate=False) validate."""
    connection = connection_vars(pg, user="pgops_admin", db=database)
    common = {"pgops_connection": connection, "pgops_project_dir": str(project), "pgops_performance_queries": [LOOKUP]}
    tasks = [
        {"name": "preflight", "ansible.builtin.include_role": {"name": "pgops.runbook.preflight"},
         "vars": {"preflight_baseline_dir": str(tmp_path / "baselines"), "preflight_timing_repeat": 3}},
        {"name": "migrate", "pgops.runbook.migrate": dict(connection, project_dir=str(project))},
    ]
    if validate:
        tasks.append({"name": "validate", "ansible.builtin.include_role": {"name": "pgops.runbook.validate"},
                      "vars": dict({"validate_timing_repeat": 3}, **validate_vars)})
    return run_play(tasks, play_vars=common)


def validate_alone(pg, database, project, baseline, **validate_vars):
    """The validate role in a play of its own, given the baseline file (its timings file beside it)."""
    variables = {"validate_connection": connection_vars(pg, user="pgops_admin", db=database),
                 "validate_project_dir": str(project), "validate_baseline": baseline,
                 "validate_performance_queries": [LOOKUP], "validate_timing_repeat": 3}
    variables.update(validate_vars)
    return run_play([{"name": "validate", "ansible.builtin.include_role": {"name": "pgops.runbook.validate"},
                      "vars": variables}])


def baseline_then_migrate(pg, database, project, tmp_path):
    run = runbook_play(pg, database, project, tmp_path, validate=False)
    assert run.status == "successful", run.stdout[-4000:]
    return run.stats["preflight_report"]["baseline"]["path"]


def test_validation_passes_after_a_real_migration(pg, database, project, tmp_path):
    run = runbook_play(pg, database, project, tmp_path,
                       validate_assertions=[{"name": "users kept", "sql": "SELECT count(*) FROM users", "expect": 50}])
    assert run.status == "successful", run.stdout[-4000:]
    outcome = run.stats["validate_report"]
    assert outcome["passed"] is True and outcome["problems"] == []
    assert [c["check"] for c in outcome["checks"]] == [
        "pending_migrations", "row_counts", "assertions", "performance", "invalid_indexes", "not_valid_constraints", "health"]
    # The migration's own history rows are listed, never judged.
    assert outcome["row_changes"] == [{"table": "public.pgops_schema_history", "before": 2, "after": 5, "change_pct": 150.0}]
    assert sorted(outcome["analyzed"]) == ["public.appointments", "public.pgops_schema_history", "public.subscriptions"]
    timing = outcome["timings"][0]
    assert timing["name"] == "lookup by code" and timing["before_ms"] is not None and timing["slowed"] is False
    assert outcome["baseline"] == run.stats["preflight_report"]["baseline"]["path"]
    assert pg["passwords"]["pgops_admin"] not in run.all_text


def test_every_problem_is_listed_at_once(cluster, pg, database, project, tmp_path):
    baseline = baseline_then_migrate(pg, database, project, tmp_path)
    # Between the baseline and the validation: 30 of the 50 users lost, an index left invalid by a
    # CREATE UNIQUE INDEX CONCURRENTLY that fails on two patients' equal names, and the lookup's index dropped.
    cluster.primary.execute("DELETE FROM users WHERE id > 20", dbname=database)
    with pytest.raises(Exception, match="could not create unique index"):
        cluster.primary.execute("CREATE UNIQUE INDEX CONCURRENTLY patients_last_name_key ON patients (last_name)",
                                dbname=database)
    cluster.primary.execute("DROP INDEX lookups_code", dbname=database)
    run = validate_alone(pg, database, project, baseline,
                         validate_assertions=[{"name": "users kept", "sql": "SELECT count(*) FROM users", "expect": 50}])
    assert run.status == "failed"
    outcome = run.stats["validate_report"]
    problems = dict(p.split(": ", 1) for p in outcome["problems"])
    assert list(problems) == ["row_counts", "assertions", "performance", "invalid_indexes"], outcome["problems"]
    assert problems["row_counts"].startswith("public.users had 50 rows, now 20 (-60.0 %)"), problems["row_counts"]
    assert problems["assertions"] == "users kept: 20, expected 50."
    assert problems["performance"].startswith("lookup by code ") and "more than 50 % fails" in problems["performance"]
    assert "patients_last_name_key" in problems["invalid_indexes"]
    assert outcome["row_changes"][1:] == [{"table": "public.users", "before": 50, "after": 20, "change_pct": -60.0}]
    slowed = outcome["timings"][0]
    assert slowed["slowed"] is True and slowed["slowdown_pct"] > 50 and "Seq Scan on lookups" in slowed["plan"]
    message = run.result("Stop when the validation found a problem")["msg"]
    assert message.startswith("Post-migration validation: 4 problem(s). row_counts: public.users had 50 rows")


def test_declared_changes_are_exempt_and_a_rollback_compares_the_fingerprint(cluster, pg, database, project, tmp_path):
    baseline = baseline_then_migrate(pg, database, project, tmp_path)
    cluster.primary.execute("DELETE FROM users WHERE id > 40", dbname=database)
    run = validate_alone(pg, database, project, baseline, validate_expected_changes=["users"])
    assert run.status == "successful", run.stdout[-3000:]
    assert run.stats["validate_report"]["row_changes"][1:] == [
        {"table": "public.users", "before": 50, "after": 40, "change_pct": -20.0}]
    # As the rollback re-validates: the schema must be the baseline's, and the migration changed it.
    run = validate_alone(pg, database, project, baseline, validate_expected_changes=["users"],
                         validate_expect_schema_equal=True, validate_expect_no_pending=False)
    assert run.status == "failed"
    problems = run.stats["validate_report"]["problems"]
    assert len(problems) == 1 and problems[0].startswith("schema_equal: The schema fingerprint changed ("), problems
