"""playbooks/backup.yml as operators run it: -e env=..., inventory group `databases`,
the report AWX shows (set_stats artifact data)."""

import os
import sys

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

PLAYBOOK = os.path.join(ROOT, "playbooks", "backup.yml")


def run_backup_playbook(pg, env, **extra):
    inventory = "[databases]\ndb1 ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
    extravars = dict(env=env, pgops_connection=connection_vars(pg))
    extravars.update(extra)
    return run_play(None, playbook=PLAYBOOK, inventory=inventory, extravars=extravars)


def test_production_backup_is_verified_by_restore_and_reported(cluster, pg, tmp_path):
    cluster.primary.execute("CREATE TABLE IF NOT EXISTS playbook_rows (id int)", dbname="appdb")
    cluster.primary.execute("INSERT INTO playbook_rows SELECT generate_series(1, 100)", dbname="appdb")
    run = run_backup_playbook(pg, "production", backup_dest=str(tmp_path), backup_label="nightly")
    assert run.status == "successful", run.stdout[-3000:]
    report = run.stats["backup_report"]
    assert report["verified"] is True or report["verified"] == "True"
    assert "restored into a scratch database" in report["verification"]
    assert report["locations"][0].startswith(str(tmp_path))
    assert os.path.exists(os.path.join(str(tmp_path), "appdb", report["backup_id"], "manifest.json"))
    assert pg["passwords"]["pgops_admin"] not in run.all_text


def test_a_backup_without_destination_is_refused(pg):
    run = run_backup_playbook(pg, "development")
    assert run.status == "failed"
    assert "Set backup_dest" in run.stdout
