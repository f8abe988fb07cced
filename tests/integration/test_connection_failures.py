"""Bad input and connection faults through Ansible: one clear sentence naming the
problem, no traceback, and no password in any output, even with -vvv."""

import os
import subprocess

import pytest

from tests.conftest import connection_vars
from tests.harness.network import free_port
from tests.harness.playbook import run_play
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "Wr0ng-But-Secret-Pa55"


def attempt(options, verbosity=0, module="pgops.runbook.health_check", envvars=None):
    run = run_play([{"name": "try", module: options}], verbosity=verbosity, envvars=envvars)
    return run.result("try"), run


def assert_clear_failure(result, run, *fragments):
    assert result["failed"], result
    msg = result["msg"]
    for fragment in fragments:
        assert fragment in msg, msg
    assert "\n" not in msg.strip(), msg
    assert "Traceback" not in run.all_text
    return msg


def assert_no_secret(run, *secrets):
    for secret in secrets:
        assert secret not in run.all_text, "secret leaked into output"


@pytest.mark.parametrize("module", ["pgops.runbook.health_check", "pgops.runbook.db_snapshot"])
def test_unreachable_host(pg, module):
    port = free_port()
    result, run = attempt(connection_vars(pg, port=port), module=module)
    assert_clear_failure(result, run, "Cannot reach PostgreSQL at 127.0.0.1:%d" % port, "connection refused")


def test_unresolvable_host(pg):
    result, run = attempt(connection_vars(pg, login_host="db.does-not-exist.invalid", ssl_mode="prefer", ca_cert=None))
    assert_clear_failure(result, run, "db.does-not-exist.invalid", "does not resolve")


def test_wrong_password_is_explained_and_never_shown_even_with_vvv(pg):
    result, run = attempt(connection_vars(pg, login_password=WRONG_PASSWORD), verbosity=3)
    assert_clear_failure(result, run, "Authentication failed for pgops_admin@127.0.0.1", "rejected the password")
    assert_no_secret(run, WRONG_PASSWORD, pg["passwords"]["pgops_admin"])


def test_right_password_never_shown_with_vvv(pg):
    result, run = attempt(connection_vars(pg, checks=["connection"]), verbosity=3)
    assert not result["failed"], result
    assert_no_secret(run, pg["passwords"]["pgops_admin"])


def test_missing_database(pg):
    result, run = attempt(connection_vars(pg, db="no_such_db"))
    assert_clear_failure(result, run, "Database 'no_such_db' does not exist on 127.0.0.1:%s" % pg["port"])


def test_server_requires_ssl(pg):
    result, run = attempt(connection_vars(pg, user="pgops_ssl_only", ssl_mode="disable", checks=["connection"]))
    assert_clear_failure(result, run, "requires SSL", "pgops_ssl_only")
    result, run = attempt(connection_vars(pg, user="pgops_ssl_only", checks=["connection"]))
    assert not result["failed"], result


def test_server_refuses_ssl(pg):
    # The standby runs with ssl = off.
    result, run = attempt(connection_vars(pg, port=pg["standby_port"], ssl_mode="require", ca_cert=None))
    assert_clear_failure(result, run, "refuses SSL", "ssl_mode")


def test_wrong_certificate_authority(pg, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other CA",
                    "-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "other-ca.crt")], check=True, capture_output=True)
    result, run = attempt(connection_vars(pg, ca_cert=str(tmp_path / "other-ca.crt")))
    assert_clear_failure(result, run, "could not be verified", "ca_cert")


def test_dsn_like_database_url_works_and_its_password_stays_hidden(pg):
    password = pg["passwords"]["pgops_admin"]
    dsn = "postgresql://pgops_admin:%s@127.0.0.1:%s/appdb?sslmode=verify-full&sslrootcert=%s" % (
        password, pg["port"], pg["ca_cert"])
    result, run = attempt(dict(dsn=dsn, checks=["connection"]), verbosity=3)
    assert not result["failed"], result.get("msg")
    assert result["database"] == "appdb"
    assert_no_secret(run, password, dsn)
    # login_db overrides the DSN's database
    result, run = attempt(dict(dsn=dsn, login_db="postgres", checks=["connection"]))
    assert result["database"] == "postgres"


def test_bad_dsn_is_refused_without_echoing_it(pg):
    dsn = "host=127.0.0.1 password=Sup3r-Secret-In-Dsn = broken"
    result, run = attempt(dict(dsn=dsn), verbosity=3)
    assert_clear_failure(result, run, "Option dsn is not a valid")
    assert_no_secret(run, "Sup3r-Secret-In-Dsn")


def test_password_in_connect_params_is_refused(pg):
    opts = connection_vars(pg, connect_params=dict(password="Leaky-Pa55"))
    result, run = attempt(opts)
    assert_clear_failure(result, run, "connect_params", "login_password")


def test_libpq_environment_variables_apply_to_unset_options(pg):
    env = dict(PGHOST="127.0.0.1", PGPORT=str(pg["port"]), PGUSER="pgops_monitor", PGDATABASE="appdb",
               PGPASSWORD=pg["passwords"]["pgops_monitor"], PGSSLMODE="verify-full", PGSSLROOTCERT=pg["ca_cert"])
    result, run = attempt(dict(checks=["connection"]), envvars=env)
    assert not result["failed"], result.get("msg")
    assert "pgops_monitor" in result["checks"][0]["message"]


@pytest.mark.parametrize("options, fragments", [
    (dict(checks=["connection", "no_such_check"]), ["Option checks names an unknown check 'no_such_check'"]),
    (dict(skip_checks=["nope"]), ["Option skip_checks names an unknown check 'nope'"]),
    (dict(thresholds={"connections": {"warning_pct": "lots"}}),
     ["Option thresholds.connections.warning_pct must be a number, got 'lots'"]),
    (dict(thresholds={"connections": {"warn": 5}}), ["Option thresholds.connections has no threshold 'warn'"]),
    (dict(thresholds={"not_a_check": {}}), ["Option thresholds names an unknown check 'not_a_check'"]),
    (dict(thresholds={"archiver": {"require_archiving": "maybe"}}), ["thresholds.archiver.require_archiving must be true or false"]),
    (dict(fail_on="sometimes"), ["fail_on"]),
    (dict(relationships=[dict(child_table="a")]), ["child_column"]),
])
def test_bad_options_fail_with_one_sentence_naming_the_option(pg, options, fragments):
    result, run = attempt(connection_vars(pg, **options))
    assert_clear_failure(result, run, *fragments)


def test_no_password_on_any_command_line_while_modules_run(pg, cluster):
    """Scan every process's command line while health_check and db_snapshot run."""
    password = pg["passwords"]["pgops_admin"]
    with command_lines_seen() as seen:
        run = run_play([
            {"name": "health", "pgops.runbook.health_check": connection_vars(pg, fail_on="never")},
            {"name": "snapshot", "pgops.runbook.db_snapshot": connection_vars(pg, exact_counts=True)},
        ], verbosity=3)
    assert not run.result("health")["failed"] and not run.result("snapshot")["failed"]
    assert any(b"ansible" in cmdline for cmdline in seen)  # the scan did see the run
    assert not [c for c in seen if password.encode() in c]
    assert_no_secret(run, password)
    assert os.path.exists(pg["ca_cert"])
