"""ConnectionSettings: options -> libpq keywords with the password kept apart; and
the one-sentence explanation of a failed connection."""

import re

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.connection import ConnectionSettings, explain_connection_error
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError, redact

URI = "postgresql://user:secret@host:5433/db?sslmode=require"


def settings_from(environ=None, **params):
    return ConnectionSettings.from_params(params, environ={} if environ is None else environ)


# --- from_params ---------------------------------------------------------------------------------

def test_dsn_uri_gives_keywords_and_a_separate_password():
    s = settings_from(dsn=URI)
    assert s.keywords == dict(user="user", host="host", port="5433", dbname="db", sslmode="require",
                              connect_timeout="30")
    assert s.password == "secret"
    assert "secret" not in repr(s.keywords)
    assert "secret" in s.secrets


def test_dsn_key_value_string_is_read_too():
    s = settings_from(dsn="host=db.example port=5434 dbname=app user=ops password=kv-secret")
    assert s.keywords["host"] == "db.example" and s.keywords["port"] == "5434" and s.keywords["dbname"] == "app"
    assert "password" not in s.keywords
    assert s.password == "kv-secret"


def test_explicit_options_override_the_dsn_parts():
    s = settings_from(dsn=URI, login_host="other.example", login_port=6432, login_user="ops", login_password="pw2",
                      login_db="app2", ssl_mode="verify-full", ca_cert="/etc/pki/ca.pem", ssl_cert="/c.crt",
                      ssl_key="/c.key")
    assert s.keywords == dict(host="other.example", port="6432", user="ops", dbname="app2", sslmode="verify-full",
                              sslrootcert="/etc/pki/ca.pem", sslcert="/c.crt", sslkey="/c.key", connect_timeout="30")
    assert s.password == "pw2"


def test_empty_login_password_does_not_override_the_dsn_password():
    assert settings_from(dsn=URI, login_password="").password == "secret"


def test_login_host_replaces_a_hostaddr_from_the_dsn():
    s = settings_from(dsn="hostaddr=10.0.0.9 host=a.example dbname=app", login_host="b.example")
    assert s.keywords["host"] == "b.example"
    assert "hostaddr" not in s.keywords


def test_unix_socket_is_the_host_when_login_host_is_unset():
    assert settings_from(login_unix_socket="/var/run/postgresql").keywords["host"] == "/var/run/postgresql"


def test_login_host_wins_over_unix_socket():
    s = settings_from(login_host="db.example", login_unix_socket="/var/run/postgresql")
    assert s.keywords["host"] == "db.example"


def test_connect_timeout_defaults_to_30_seconds():
    assert settings_from().keywords["connect_timeout"] == "30"


def test_pgconnect_timeout_in_the_environment_is_left_to_libpq():
    s = settings_from(environ={"PGCONNECT_TIMEOUT": "5"})
    assert "connect_timeout" not in s.keywords


def test_an_explicit_connect_timeout_wins_over_the_environment():
    assert settings_from(environ={"PGCONNECT_TIMEOUT": "5"}, connect_timeout=7).keywords["connect_timeout"] == "7"


def test_connect_timeout_from_the_dsn_is_kept():
    assert settings_from(dsn="host=h connect_timeout=12").keywords["connect_timeout"] == "12"


def test_connect_params_are_passed_and_none_values_dropped():
    s = settings_from(connect_params=dict(application_name="nightly", target_session_attrs="read-write", options=None))
    assert s.keywords["application_name"] == "nightly"
    assert s.keywords["target_session_attrs"] == "read-write"
    assert "options" not in s.keywords


@pytest.mark.parametrize("key", ["password", "sslpassword", "dsn", "passfile"])
def test_connect_params_refuse_secrets_and_connection_strings(key):
    with pytest.raises(PgopsError) as caught:
        settings_from(connect_params={key: "leaky-value-123"})
    message = str(caught.value)
    assert "connect_params" in message
    assert repr(key) in message
    assert "leaky-value-123" not in message


@pytest.mark.parametrize("dsn", [
    "host=x password=topsecret = =",
    "postgresql://u:topsecret@[bad",
    "host=x password='topsecret",
    "postgresql://u:topsecret@h/db?bogus=1",
])
def test_an_invalid_dsn_is_named_without_quoting_it(dsn):
    with pytest.raises(PgopsError) as caught:
        settings_from(dsn=dsn)
    message = str(caught.value)
    assert re.search(r"\bdsn\b", message)
    assert "topsecret" not in message
    assert "\n" not in message


def test_describe_never_contains_the_password():
    s = settings_from(dsn=URI, login_password="pw-override")
    text = s.describe()
    assert text == "user@host:5433/db"
    assert "secret" not in text and "pw-override" not in text


def test_describe_falls_back_to_libpq_environment_defaults(monkeypatch):
    monkeypatch.setenv("PGHOST", "envhost")
    monkeypatch.setenv("PGPORT", "5555")
    monkeypatch.setenv("PGUSER", "envuser")
    s = settings_from(login_password="pw")
    assert s.describe() == "envuser@envhost:5555/envuser"


def test_redact_replaces_the_dsn_and_its_password():
    s = settings_from(dsn=URI)
    text = s.redact("tried secret with %s" % URI)
    assert "secret" not in text
    assert text.startswith("tried ******** with ")


def test_redact_replaces_the_login_password():
    s = settings_from(dsn=URI, login_password="pw-override")
    text = s.redact("tried pw-override with %s" % URI)
    assert "pw-override" not in text and URI not in text


def test_redact_helper_handles_none_and_empty_secrets():
    assert redact(None, ["x"]) == ""
    assert redact("keep me", ["", None]) == "keep me"
    assert redact("a-b-a", ["a"]) == "********-b-********"


def test_with_database_keeps_the_password_and_leaves_the_original_alone():
    s = settings_from(login_db="one", login_password="pw")
    other = s.with_database("two")
    assert other.keywords["dbname"] == "two" and other.password == "pw"
    assert s.keywords["dbname"] == "one"


# --- explain_connection_error ----------------------------------------------------------------------

class OperationalError(Exception):
    """Stands for psycopg2.OperationalError: only its text matters to the explanation."""


PASSWORD = "hunter2-Pw"


@pytest.fixture
def target():
    return settings_from(login_host="127.0.0.1", login_port=1, login_user="bob", login_db="nope",
                         login_password=PASSWORD)


LIBPQ_MESSAGES = [
    ('connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
     '\tIs the server running on that host and accepting TCP/IP connections?\n',
     ["Cannot reach PostgreSQL at 127.0.0.1:1", "connection refused"]),
    ('connection to server at "127.0.0.1", port 1 failed: FATAL:  password authentication failed for user "bob"\n',
     ["Authentication failed for bob@127.0.0.1:1/nope", "rejected the password"]),
    ('FATAL:  database "nope" does not exist\n', ["Database 'nope' does not exist on 127.0.0.1:1"]),
    ("server does not support SSL, but SSL was required\n", ["refuses SSL", "ssl_mode"]),
    ('FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "x", database "y", no encryption\n',
     ["requires SSL", "ssl_mode"]),
    ('FATAL:  no pg_hba.conf entry for host "10.1.2.3", user "bob", database "nope", SSL encryption\n',
     ["does not allow 'bob' to connect to 'nope'", "pg_hba.conf"]),
    ('could not translate host name "nohost.invalid" to address: Name or service not known\n',
     ["Cannot reach PostgreSQL at 127.0.0.1:1", "does not resolve"]),
    ("timeout expired\n", ["Cannot reach PostgreSQL at 127.0.0.1:1", "connect timeout"]),
    ('FATAL:  role "bob" does not exist\n', ["role 'bob' does not exist"]),
    ("fe_sendauth: no password supplied\n", ["asks for a password and none was given"]),
    ("FATAL:  sorry, too many clients already\nFATAL:  remaining connection slots are reserved for roles "
     "with the SUPERUSER attribute\n", ["connection slots are in use"]),
]


@pytest.mark.parametrize("libpq_text, expected", LIBPQ_MESSAGES, ids=[m[1][-1] for m in LIBPQ_MESSAGES])
def test_connection_errors_become_one_sentence(target, libpq_text, expected):
    message = explain_connection_error(OperationalError(libpq_text), target)
    for words in expected:
        assert words in message
    assert "\n" not in message and "\t" not in message
    assert "FATAL:" not in message.split("(libpq:")[0]
    # libpq's own first line is kept for the reader, without a leading FATAL: prefix.
    first = re.sub(r"^FATAL:\s+", "", libpq_text.strip().splitlines()[0])
    assert message.endswith("(libpq: %s)" % first)


def test_an_unknown_error_keeps_libpqs_first_line(target):
    message = explain_connection_error(OperationalError("SSL SYSCALL error: EOF detected\nmore"), target)
    assert message == "Cannot connect to bob@127.0.0.1:1/nope: SSL SYSCALL error: EOF detected."


@pytest.mark.parametrize("libpq_text", [
    'FATAL:  password authentication failed for user "bob" with password "%s"' % PASSWORD,
    "server said something odd about %s" % PASSWORD,
    "timeout expired (%s)" % PASSWORD,
])
def test_the_password_never_appears_in_the_explanation(target, libpq_text):
    message = explain_connection_error(OperationalError(libpq_text), target)
    assert PASSWORD not in message
    assert "********" in message


def test_the_dsn_password_never_appears_in_the_explanation():
    s = settings_from(dsn="postgresql://bob:dsn-Secret-9@127.0.0.1:1/nope")
    message = explain_connection_error(OperationalError("timeout expired: dsn-Secret-9"), s)
    assert "dsn-Secret-9" not in message
