"""The report role through ansible-runner: the migration record as JSON and Markdown on the
controller and as set_stats, from the outcome facts of a real migrate run (with maintenance
mode) and from hand-made outcomes (a rollback, a failed preflight); never a secret in it."""

import glob
import json
import os
import sys

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.migrations import copy_project
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "sql")


def report_files(report_dir):
    md = glob.glob(os.path.join(str(report_dir), "*.md"))
    js = glob.glob(os.path.join(str(report_dir), "*.json"))
    assert len(md) == 1 and len(js) == 1, (md, js)
    with open(js[0]) as handle:
        record = json.load(handle)
    with open(md[0]) as handle:
        markdown = handle.read()
    return record, markdown, md[0], js[0]


def report_task(report_dir, **extra):
    role_vars = dict(report_dir=str(report_dir))
    role_vars.update(extra)
    return {"name": "report", "ansible.builtin.include_role": {"name": "pgops.runbook.report"}, "vars": role_vars}


def test_record_of_a_real_migration_run(cluster, pg, database, tmp_path):
    project = copy_project(FIXTURE, tmp_path)
    connection = connection_vars(pg, user="pgops_app", db=database)
    marker = str(tmp_path / "maintenance.log")
    command = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2])", marker]
    tasks = [
        {"name": "migrate", "ansible.builtin.include_role": {"name": "pgops.runbook.migrate"},
         "vars": {"migrate_project_dir": str(project), "migrate_maintenance_method": "command",
                  "migrate_maintenance_on_command": command + ["on"], "migrate_maintenance_off_command": command + ["off"]}},
        report_task(tmp_path / "reports"),
    ]
    run = run_play(tasks, play_vars={"pgops_connection": connection, "pgops_env": "staging", "pgops_release": "v2.4",
                                     "pgops_run_started": "2026-01-04T02:00:00Z", "awx_user_name": "alice.admin"})
    assert run.status == "successful", run.stdout[-3000:]
    record, markdown, md_path, json_path = report_files(tmp_path / "reports")
    name = os.path.basename(json_path)
    assert name.startswith("%s_staging_" % database) and name.endswith("Z.json")
    assert record["database"] == database and record["environment"] == "staging" and record["release"] == "v2.4"
    assert record["operator"] == "alice.admin" and record["result"] == "succeeded"
    assert record["started"] == "2026-01-04T02:00:00Z" and record["ended"] > record["started"]
    assert record["duration_s"] > 0
    migrations = record["migrations"]
    assert migrations["tool"] == "sql" and migrations["previous"] is None and migrations["final"] == "4"
    assert [m["version"] for m in migrations["applied"]] == ["1", "2", "3", "4", "views"]
    assert all(m["duration_s"] >= 0 and m["direction"] == "up" for m in migrations["applied"])
    assert record["maintenance"]["method"] == "command" and record["downtime_s"] == record["maintenance"]["seconds"] > 0
    assert any("public.appointments" in change for change in record["schema_changes"]), record["schema_changes"]
    assert record["rollback"] == {"needed": False} and record["problems"] == []
    assert "| Result | **succeeded** |" in markdown and "| Operator | alice.admin |" in markdown
    assert "| 3 | appointments | up |" in markdown
    assert "| Downtime (maintenance mode) | %s s (command) |" % record["downtime_s"] in markdown
    stats = run.stats["migration_report"]
    assert stats["files"] == [md_path, json_path]
    assert dict((k, v) for k, v in stats.items() if k != "files") == record
    assert pg["passwords"]["pgops_app"] not in run.all_text + markdown + json.dumps(record)


def test_record_of_a_rolled_back_run_with_lint_findings_and_row_changes(tmp_path):
    password = "Sup3r-s3cret-pw"
    dsn = "postgresql://app:%s@db.internal:5432/healthcare_db" % password
    facts = {
        "preflight_outcome": {"passed": True, "problems": [], "lint": {
            "summary": {"error": 0, "warning": 1},
            "findings": [{"rule": "require-concurrent-index-creation", "severity": "warning", "file": "V3__idx.sql",
                          "line": 4, "statement": "CREATE INDEX i ON patients (mrn)", "why": "blocks | writes"}]}},
        "backup_outcome": {"backup_id": "healthcare_db-20260104T015900Z", "verified": True},
        "migrate_outcome": {"tool": "alembic", "previous": "0002", "final": "0003", "failed": False,
                            "applied": [{"version": "0003", "name": "appointments", "duration_s": 1.25, "direction": "up"}],
                            "schema_changes": ["Table public.appointments is new."],
                            "maintenance": {"method": "pgbouncer", "started": "2026-01-04T02:01:00.000000Z",
                                            "ended": "2026-01-04T02:01:03.500000Z", "seconds": 3.5}},
        "validate_outcome": {"passed": False, "problems": ["Table public.patients has 80 rows, 100 before (-20.00 %)."],
                             "row_changes": [{"table": "public.patients", "before": 100, "after": 80, "change_pct": -20.0}]},
        "rollback_outcome": {"needed": True, "strategy": "downgrade", "succeeded": True,
                             "message": "Rolled back by downgrade (the tool can undo 0003 down to version 0002).",
                             "undone": [{"version": "0003", "name": "appointments", "duration_s": 0.4, "direction": "down"}]},
    }
    run = run_play([
        {"name": "Record the run", "ansible.builtin.set_fact": facts},
        report_task(tmp_path / "reports", report_problems=["The runbook stopped: connection to %s failed." % dsn]),
    ], play_vars={"pgops_connection": {"dsn": dsn, "login_db": "healthcare_db"}, "pgops_env": "production",
                  "tower_user_name": "bob"})
    assert run.status == "successful", run.stdout[-3000:]
    record, markdown, dummy, dummy = report_files(tmp_path / "reports")
    assert record["result"] == "rolled back" and record["operator"] == "bob" and record["started"] is None
    assert record["duration_s"] is None and record["downtime_s"] == 3.5
    assert record["lint"]["findings"] == [{"rule": "require-concurrent-index-creation", "severity": "warning",
                                           "file": "V3__idx.sql", "line": 4, "table": None, "lock": None,
                                           "why": "blocks | writes", "fix": None}]
    assert record["row_changes"][0]["change_pct"] == -20.0
    assert record["problems"][0] == "Table public.patients has 80 rows, 100 before (-20.00 %)."
    assert record["problems"][1] == "The runbook stopped: connection to ******** failed."
    assert record["rollback"]["needed"] and record["rollback"]["strategy"] == "downgrade" and record["rollback"]["succeeded"]
    assert "| warning | require-concurrent-index-creation | V3__idx.sql:4 | blocks \\| writes |" in markdown
    assert "| public.patients | 100 | 80 | -20.0 |" in markdown
    assert "Needed: yes. Strategy: downgrade. Result: succeeded." in markdown
    assert "| Pre-migration backup | healthcare_db-20260104T015900Z (verified) |" in markdown
    for text in (run.all_text, markdown, json.dumps(record)):
        assert password not in text and dsn not in text


def test_record_after_a_failed_preflight_says_so(tmp_path):
    facts = {"preflight_outcome": {"passed": False, "problems": [
        "Free disk space on /var/lib/postgresql is 12 %, below 30 %.",
        "Now (Tue 14:05 UTC) is outside the maintenance window Sun 02:00-04:00 UTC."]}}
    run = run_play([{"name": "Record the run", "ansible.builtin.set_fact": facts}, report_task(tmp_path / "reports")],
                   play_vars={"pgops_connection": {"login_db": "healthcare_db", "login_password": "pw-never-shown"},
                              "pgops_env": "production"})
    assert run.status == "successful", run.stdout[-3000:]
    record, markdown, dummy, dummy = report_files(tmp_path / "reports")
    assert record["result"] == "stopped at preflight"
    assert record["migrations"] is None and record["downtime_s"] is None and record["backup"] is None
    assert record["problems"] == facts["preflight_outcome"]["problems"]
    assert "Not met:\n- Free disk space on /var/lib/postgresql is 12 %, below 30 %." in markdown
    assert "## Migrations applied\n\nNone." in markdown and "Needed: no." in markdown
    assert run.stats["migration_report"]["result"] == "stopped at preflight"
    assert "pw-never-shown" not in run.all_text + markdown
