"""What the external migration tools are given: the database URL built from the
connection options (secrets percent-encoded, SSL and socket settings kept, the run's
timeouts as options), and Prisma's checksums and project layout."""

import hashlib

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.external import database_url, tail
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.tools.prisma import checksums, read_project

try:
    from urllib.parse import parse_qs, unquote, urlsplit
except ImportError:  # pragma: no cover
    pass


def settings(**params):
    base = dict(login_host="db.example.internal", login_port=6432, login_user="app", login_password="p@ss:/w?rd#1",
                login_db="clinic", ssl_mode="verify-full", ca_cert="/etc/ssl/ca.pem")
    base.update(params)
    return ConnectionSettings.from_params(base, environ={})


def test_url_carries_every_connection_setting_with_the_password_encoded():
    url = database_url(settings(), "-c lock_timeout=5000ms -c statement_timeout=0ms")
    parts = urlsplit(url)
    assert parts.scheme == "postgresql" and parts.hostname == "db.example.internal" and parts.port == 6432
    assert unquote(parts.username) == "app" and unquote(parts.password) == "p@ss:/w?rd#1"
    assert parts.path == "/clinic"
    query = parse_qs(parts.query)
    assert query["sslmode"] == ["verify-full"] and query["sslrootcert"] == ["/etc/ssl/ca.pem"]
    assert query["options"] == ["-c lock_timeout=5000ms -c statement_timeout=0ms"]


def test_url_for_a_unix_socket_and_without_password():
    url = database_url(settings(login_host="/var/run/postgresql", login_password=None, ssl_mode=None, ca_cert=None))
    parts = urlsplit(url)
    assert parts.hostname is None and parse_qs(parts.query)["host"] == ["/var/run/postgresql"]
    assert parts.password is None and ":" not in parts.netloc.split("@")[0]


def test_tail_prefers_the_error_line():
    text = "Applying migration\nError: P3018 A migration failed\n  at foo\ndone\n"
    assert tail(text) == "Error: P3018 A migration failed"
    assert tail("") == "no output"


def test_prisma_accepts_the_checksum_of_either_line_ending():
    lf = b"CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
    crlf = lf.replace(b"\n", b"\r\n")
    assert hashlib.sha256(crlf).hexdigest() in checksums(lf)
    assert hashlib.sha256(lf).hexdigest() in checksums(crlf)


def test_prisma_project_layout(tmp_path):
    root = tmp_path / "migrations"
    for name in ("20260102000000_b", "20260101000000_a"):
        (root / name).mkdir(parents=True)
        (root / name / "migration.sql").write_text("SELECT 1;")
    (root / "20260101000000_a" / "down.sql").write_text("SELECT 0;")
    (root / "migration_lock.toml").write_text('provider = "postgresql"')
    migrations = read_project(str(root))
    assert [m.version for m in migrations] == ["20260101000000_a", "20260102000000_b"]
    assert migrations[0].undo is not None and migrations[1].undo is None
    assert migrations[0].checksum == hashlib.sha256(b"SELECT 1;").hexdigest()
    (root / "20260103000000_c").mkdir()
    with pytest.raises(PgopsError, match="20260103000000_c has no migration.sql"):
        read_project(str(root))
