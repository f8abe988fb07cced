"""playbooks/bootstrap.yml as operators run it (-e env=..., inventory group `databases`)
on a database name the cluster has never seen: role and database created, the example
healthcare migrations applied, reference rows loaded, health ok, the first backup taken;
a second run changes nothing; no password in any output at -vvv or on a command line.
And the example project lints clean with fail_on warning."""

import os
import sys

import pytest
from psycopg2 import sql

from tests.conftest import ROOT, connection_vars
from tests.harness.migrations import database_name, fresh_database
from tests.harness.playbook import run_play
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(ROOT, "playbooks", "bootstrap.yml")
EXAMPLE = os.path.join(ROOT, "examples", "healthcare")
REFERENCE = [dict(file="reference/appointment_types.csv", table="appointment_types", key=["code"])]


@pytest.fixture
def new_database(cluster, request):
    """A database and role name never used on the cluster; both dropped afterwards."""
    db = database_name(request, prefix="bootstrap")
    role = db[:55] + "_app"
    yield db, role
    conn = cluster.primary.connect()
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    conn.close()


def bootstrap(pg, db, role, password, env="development", check=False, verbosity=0, **extra):
    inventory = "[databases]\ndb1 ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
    extravars = dict(env=env, pgops_connection=connection_vars(pg, db=db), pgops_project_dir=EXAMPLE,
                     bootstrap_app_role=role, bootstrap_app_password=password, bootstrap_extensions=["pgcrypto"],
                     bootstrap_reference_data=REFERENCE)
    extravars.update(extra)
    return run_play(None, playbook=PLAYBOOK, inventory=inventory, extravars=extravars, check=check, verbosity=verbosity)


def changed_tasks(run):
    return [r["_task"] for r in run.results if r.get("changed")]


def test_bootstrap_sets_up_a_new_database_and_a_second_run_changes_nothing(cluster, pg, new_database, tmp_path):
    db, role = new_database
    password = "Boot-" + db[-8:] + "-Pa55word"
    planned = bootstrap(pg, db, role, password, check=True)
    assert planned.status == "successful", planned.stdout[-3000:]
    assert planned.result("Create the application role and database")["changed"]
    assert not cluster.primary.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))  # check mode

    with command_lines_seen() as seen:
        run = bootstrap(pg, db, role, password, env="production", verbosity=3, backup_dest=str(tmp_path))
    assert run.status == "successful", run.stdout[-5000:]
    report = run.stats["bootstrap_report"]
    assert report["provisioning"] == ["create role %s (LOGIN, with a password)" % role,
                                      "create database %s (owner %s, UTF8, template template0)" % (db, role),
                                      "create extension pgcrypto in database %s" % db]
    assert report["migrations_applied"] == ["1", "2", "3"] and report["health_status"] in ("ok", "warning")
    assert "10 inserted, 0 updated, 0 deleted, 0 unchanged" in report["reference_data"][0]
    assert cluster.primary.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (db,)) == [(role,)]
    assert cluster.primary.execute("SELECT count(*) FROM appointment_types", dbname=db) == [(10,)]
    assert cluster.primary.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'patients'", dbname=db) == [(role,)]
    assert cluster.primary.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                   "'appointments_status_starts_at_idx'::regclass", dbname=db) == [(True,)]
    backup_id = report["backup_id"]
    assert backup_id.endswith("-bootstrap") and run.stats["backup_report"]["verified"] in (True, "True")
    assert os.path.exists(os.path.join(str(tmp_path), db, backup_id, "manifest.json"))
    for secret in (password, pg["passwords"]["pgops_admin"]):
        assert secret not in run.all_text
        assert not any(secret.encode() in line for line in seen)

    again = bootstrap(pg, db, role, password, env="production", backup_dest=str(tmp_path))
    assert again.status == "successful", again.stdout[-3000:]
    assert changed_tasks(again) == []
    assert again.stats["bootstrap_report"]["backup_id"] == backup_id  # no second "first" backup
    assert "0 inserted, 0 updated, 0 deleted, 10 unchanged" in again.stats["bootstrap_report"]["reference_data"][0]
    assert sorted(os.listdir(os.path.join(str(tmp_path), db))) == [backup_id]


def test_bootstrap_without_a_project_is_refused_before_anything_changes(cluster, pg, new_database):
    db, role = new_database
    run = bootstrap(pg, db, role, "unused-Pa55", pgops_project_dir="")
    assert run.status == "failed" and "Set bootstrap_database" in run.stdout
    assert not cluster.primary.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))


def test_the_example_project_lints_clean_with_fail_on_warning(cluster, pg, request):
    with fresh_database(cluster, request, prefix="bootstrap_lint") as db:
        run = run_play([{"name": "lint", "pgops.runbook.migration_lint": dict(
            connection_vars(pg, user="pgops_app", db=db), project_dir=EXAMPLE, fail_on="warning")}])
    result = run.result("lint")
    assert not result["failed"], result.get("msg")
    assert result["summary"]["statements"] >= 9
    assert [f for f in result["findings"] if f["severity"] != "info"] == []
