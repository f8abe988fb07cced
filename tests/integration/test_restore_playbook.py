"""playbooks/restore.yml and the restore role as operators and the migrate rollback run them."""

import os
import sys

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(ROOT, "playbooks", "restore.yml")


def run_restore_playbook(pg, **extra):
    inventory = "[databases]\ndb1 ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
    extravars = dict(env="staging", pgops_connection=connection_vars(pg))
    extravars.update(extra)
    return run_play(None, playbook=PLAYBOOK, inventory=inventory, extravars=extravars)


@pytest.fixture(scope="module")
def stored(cluster, pg, tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("restore-playbook"))
    cluster.primary.execute("CREATE DATABASE pharmacy OWNER pgops_app")
    cluster.primary.execute("CREATE TABLE drugs (id int PRIMARY KEY, name text);"
                            "INSERT INTO drugs SELECT g, 'drug ' || g FROM generate_series(1, 250) g", dbname="pharmacy")
    options = dict(connection_vars(pg, db="pharmacy"), dest=dest, label="nightly")
    run = run_play([{"name": "backup", "pgops.runbook.backup": options}])
    result = run.result("backup")
    assert not result["failed"], result.get("msg")
    return dict(dest=dest, backup_id=result["backup_id"])


def test_latest_backup_into_a_new_database_is_reported(cluster, pg, stored):
    run = run_restore_playbook(pg, backup_dest=stored["dest"], latest=True, database="pharmacy", target_db="pharmacy_check")
    assert run.status == "successful", run.stdout[-3000:]
    report = run.stats["restore_report"]
    assert report["backup_id"] == stored["backup_id"] and report["validation"] == "passed"
    assert cluster.primary.execute("SELECT count(*) FROM drugs", dbname="pharmacy_check") == [(250,)]
    assert pg["passwords"]["pgops_admin"] not in run.all_text


def test_replace_needs_the_typed_confirmation(cluster, pg, stored):
    run = run_restore_playbook(pg, backup_dest=stored["dest"], backup_id=stored["backup_id"], target_db="pharmacy",
                               mode="replace")
    assert run.status == "failed" and "Option confirm must equal target_db (pharmacy)" in run.stdout
    run = run_restore_playbook(pg, backup_dest=stored["dest"], backup_id=stored["backup_id"], target_db="pharmacy",
                               mode="replace", confirm="pharmacy")
    assert run.status == "successful", run.stdout[-3000:]
    assert run.stats["restore_report"]["previous_db"].startswith("pharmacy__pre_restore_")


def test_rollback_entry_point_restores_over_the_database(cluster, pg, stored):
    cluster.primary.execute("INSERT INTO drugs VALUES (9999, 'added by a bad migration')", dbname="pharmacy")
    task = {"name": "rollback", "ansible.builtin.include_role": {"name": "pgops.runbook.restore", "tasks_from": "over"},
            "vars": {"restore_backup_id": stored["backup_id"], "restore_target_db": "pharmacy",
                     "restore_dest": stored["dest"], "restore_connection": connection_vars(pg)}}
    run = run_play([task])
    assert run.status == "successful", run.stdout[-3000:]
    assert cluster.primary.execute("SELECT count(*) FROM drugs WHERE id = 9999", dbname="pharmacy") == [(0,)]


def test_no_backup_named_is_refused(pg, stored):
    run = run_restore_playbook(pg, backup_dest=stored["dest"], target_db="pharmacy_x")
    assert run.status == "failed" and "Set exactly one of restore_src, restore_backup_id and restore_latest" in run.stdout
