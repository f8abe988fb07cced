"""Unit-test helpers: pure logic only, no PostgreSQL server and no stand-in for one."""

import signal

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.pgops.runbook.plugins.module_utils.health.engine import HealthContext


def make_context(settings=None, in_recovery=False, server_version_num=160004, extensions=None, options=None,
                 connect_seconds=0.012, host="db1.example.internal", **row):
    """The real HealthContext without a connection (a check that tried to query would fail loudly),
    its context row filled in as CONTEXT_SQL returns it."""
    connection = ConnectionSettings(dict(host=host, port="5432", user="monitor", dbname="appdb"), password="pw-ctx")
    context = HealthContext(None, connection, dict(options or {}), connect_seconds)
    context.row = dict(server_version_num=server_version_num, server_version="16.4", in_recovery=in_recovery,
                       database="appdb", login_role="monitor", superuser=False, monitor=True,
                       settings=dict(settings or {}), extensions=dict(extensions or {}))
    context.row.update(row)
    return context


@pytest.fixture
def context_factory():
    return make_context


@pytest.fixture
def deadline():
    """Fail (instead of hanging the suite) when the test body takes longer than 10 s."""
    def expired(signum, frame):
        raise RuntimeError("the test did not finish within 10 s: a process was left running")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch):
    """libpq variables of the developer's shell must not change what the tests see."""
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE",
                 "PGPASSFILE", "PGCONNECT_TIMEOUT", "PGSSLMODE"):
        monkeypatch.delenv(name, raising=False)
