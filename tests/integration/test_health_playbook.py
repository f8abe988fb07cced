"""playbooks/health.yml as operators run it: inventory group `databases`, -e env=..., and
the report AWX shows (set_stats artifact data)."""

import os
import sys

import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def no_slow_statements_from_other_files(cluster):
    """Statements other test files ran earlier on this server (a lock wait, a pg_sleep) stay in
    pg_stat_statements and would make slow_queries fail here: start this file with none."""
    cluster.primary.execute("SELECT pg_stat_statements_reset()", dbname="appdb")


PLAYBOOK = os.path.join(ROOT, "playbooks", "health.yml")


def inventory():
    return ("[databases]\ndb1 ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)


def run_health(pg, env, **extra):
    extravars = dict(env=env, pgops_connection=connection_vars(pg))
    extravars.update(extra)
    return run_play(None, playbook=PLAYBOOK, inventory=inventory(), extravars=extravars)


def test_health_playbook_publishes_its_report(pg):
    run = run_health(pg, "development")
    assert run.status == "successful", run.stdout[-3000:]
    report = run.stats["health_report"]
    assert report["database"] == "appdb"
    assert report["summary"]["total"] == 29
    assert "checks passed" in report["summary"]["line"]
    assert "appdb: " in run.stdout
    assert pg["passwords"]["pgops_admin"] not in run.all_text


def test_production_policy_fails_the_play_on_a_critical_check(pg):
    # A threshold no server meets makes server_version critical.
    run = run_health(pg, "production", health_thresholds={"server_version": {"critical_below": 99}})
    assert run.status == "failed"
    failed = [r for r in run.results if r["failed"]]
    assert failed and "server_version failed the critical policy" in failed[-1]["msg"]
    assert run.stats["health_report"]["status"] == "critical"


def test_unknown_environment_is_refused(pg):
    run = run_health(pg, "prod")
    assert run.status == "failed"
    assert "env must be development, staging or production, got prod" in run.stdout
