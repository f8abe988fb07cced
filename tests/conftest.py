"""Shared fixtures: a throw-away PostgreSQL primary with a streaming standby, and
plays run through ansible-runner against it."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.harness.collection import ensure_collection_path  # noqa: E402

ensure_collection_path()

# The slowest groups (about a minute or more each), started first so that two pytest-xdist
# workers end together instead of one waiting for the other's last long file.
SLOW_FIRST = ("tests/integration/test_migrate_playbook.py", "tests/integration/test_backup.py",
              "tests/integration/test_restore.py", "tests/integration/test_migrate_alembic.py",
              "tests/integration/test_migrate_django.py", "tests/integration/test_awx_job.py")


def pytest_collection_modifyitems(config, items):
    """For `--dist loadgroup`: a file's tests stay in one process (its module fixtures are made
    once), unless a test names a group of its own (each molecule scenario: independent)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))

    def rank(item):
        path = item.nodeid.split("::")[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)
    items.sort(key=rank)  # stable: the order within a file and among the others is kept


@pytest.fixture(scope="session")
def cluster():
    """A running primary (SSL, scram, pg_stat_statements, archiving) and standby, one per
    test process (pytest-xdist worker). PGOPS_TEST_LOGS=DIR keeps the servers' logs there."""
    from tests.harness.cluster import Cluster
    cl = Cluster()
    try:
        cl.start_primary()
        cl.start_standby()
        yield cl
    finally:
        cl.stop(keep_logs=os.environ.get("PGOPS_TEST_LOGS"))


@pytest.fixture(scope="session")
def pg(cluster):
    """Connection facts of the primary."""
    return cluster.describe()


def connection_vars(pg, user="pgops_admin", db="appdb", port=None, **extra):
    """Module options for connecting as one of the harness roles over TCP + SSL."""
    opts = dict(login_host=pg["host"], login_port=port or pg["port"], login_user=user,
                login_password=pg["passwords"][user] if user in pg["passwords"] else pg["superuser_password"],
                login_db=db, ssl_mode="verify-full", ca_cert=pg["ca_cert"])
    opts.update(extra)
    return opts


@pytest.fixture
def database(cluster, request):
    """An empty database owned by pgops_app, named after the test (file and name), dropped after it."""
    from tests.harness.migrations import fresh_database
    with fresh_database(cluster, request) as name:
        yield name


@pytest.fixture
def project(tmp_path, request):
    """A copy of the test module's migration project (the directory its FIXTURE names), which the test may edit."""
    from tests.harness.migrations import copy_project
    return copy_project(request.module.FIXTURE, tmp_path)


@pytest.fixture
def conn_opts(pg):
    return connection_vars(pg)


@pytest.fixture(scope="session")
def s3():
    """A moto S3 server on loopback: endpoint_url, port, region and dummy access_key/secret_key."""
    from tests.harness.s3 import MotoServer
    server = MotoServer().start()
    try:
        yield server.facts()
    finally:
        server.stop()
