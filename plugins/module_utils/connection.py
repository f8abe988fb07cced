# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way pgops connects to PostgreSQL.

`connection_argument_spec()` is shared by every module (documented once in the
`pgops.runbook.connection` doc fragment). `ConnectionSettings` turns the options
into libpq keywords plus a password kept apart, and `connect()` opens a psycopg2
connection, turning every failure into one sentence.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = exc

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError, redact

DEFAULT_CONNECT_TIMEOUT = 30

# Option name -> libpq keyword.
_OPTION_KEYWORDS = (
    ("login_port", "port"),
    ("login_user", "user"),
    ("login_db", "dbname"),
    ("ssl_mode", "sslmode"),
    ("ca_cert", "sslrootcert"),
    ("ssl_cert", "sslcert"),
    ("ssl_key", "sslkey"),
    ("connect_timeout", "connect_timeout"),
)

# libpq keywords that carry a secret or a whole connection string: they have
# their own options (login_password, dsn) so that Ansible masks them.
_FORBIDDEN_CONNECT_PARAMS = ("password", "sslpassword", "dsn", "passfile")


def connection_argument_spec():
    """The argument spec entries of the shared connection options."""
    return dict(
        login_host=dict(type="str", aliases=["host"]),
        login_unix_socket=dict(type="str", aliases=["unix_socket"]),
        login_port=dict(type="int", aliases=["port"]),
        login_user=dict(type="str", aliases=["login"]),
        login_password=dict(type="str", no_log=True),
        login_db=dict(type="str", aliases=["db"]),
        ssl_mode=dict(type="str", choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"]),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
        ssl_cert=dict(type="path"),
        ssl_key=dict(type="path"),
        connect_timeout=dict(type="int"),
        connect_params=dict(type="dict", default={}),
        dsn=dict(type="str", no_log=True),
    )


class ConnectionSettings:
    """libpq keywords (no secret among them) and the password, kept apart."""

    def __init__(self, keywords, password=None, secrets=()):
        self.keywords = dict(keywords)
        self.password = password
        # Everything that must never appear in a message or a result.
        self.secrets = tuple(s for s in (password,) + tuple(secrets) if s)

    @classmethod
    def from_params(cls, params, environ=None):
        """Build settings from module parameters; raises PgopsError on bad input."""
        environ = os.environ if environ is None else environ
        keywords = {}
        password = None
        secrets = []
        dsn = params.get("dsn")
        if dsn:
            secrets.append(dsn)
            if not HAS_PSYCOPG2:
                raise PgopsError("The psycopg2 Python library is required to read option dsn.")
            try:
                parsed = psycopg2.extensions.parse_dsn(dsn)
            except Exception:
                # The parser's message quotes the string, password included.
                raise PgopsError("Option dsn is not a valid libpq connection URI or key=value string.")
            password = parsed.pop("password", None)
            secrets.append(password)
            keywords.update(parsed)

        extra = params.get("connect_params") or {}
        for key in extra:
            if key in _FORBIDDEN_CONNECT_PARAMS:
                raise PgopsError("Option connect_params must not contain %r: use login_password or dsn, "
                                 "which are kept out of logs." % key)
        keywords.update(dict((k, v) for k, v in extra.items() if v is not None))

        host = params.get("login_host") or params.get("login_unix_socket")
        if host:
            keywords["host"] = host
            keywords.pop("hostaddr", None)
        for option, keyword in _OPTION_KEYWORDS:
            value = params.get(option)
            if value is not None and value != "":
                keywords[keyword] = value
        if params.get("login_password"):
            password = params["login_password"]
        if "connect_timeout" not in keywords and not environ.get("PGCONNECT_TIMEOUT"):
            keywords["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
        for key, value in list(keywords.items()):
            keywords[key] = str(value)
        return cls(keywords, password, secrets)

    def with_database(self, dbname):
        """The same settings pointed at another database."""
        copy = ConnectionSettings(self.keywords, self.password, self.secrets)
        copy.keywords["dbname"] = dbname
        return copy

    def effective(self, environ=None):
        """Keyword values as libpq will resolve them (options, then PG* variables, then defaults)."""
        environ = os.environ if environ is None else environ
        resolved = dict(self.keywords)
        resolved.setdefault("host", environ.get("PGHOST") or "local socket")
        resolved.setdefault("port", environ.get("PGPORT") or "5432")
        resolved.setdefault("user", environ.get("PGUSER") or _os_user())
        resolved.setdefault("dbname", environ.get("PGDATABASE") or resolved["user"])
        return resolved

    def describe(self):
        """`user@host:port/db`, for messages (never a password)."""
        e = self.effective()
        return "%s@%s:%s/%s" % (e["user"], e["host"], e["port"], e["dbname"])

    def redact(self, text):
        return redact(text, self.secrets)


def _os_user():
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except Exception:  # pragma: no cover
        return "unknown"


def server_major(conn):
    """The server's major version as an int (10 and later) from a connection."""
    return conn.server_version // 10000


def connect(settings, application_name="pgops.runbook", autocommit=True, session_options=None):
    """Open a psycopg2 connection; every failure becomes one PgopsError sentence.

    `session_options` are server settings applied at connect time through libpq's
    `options` keyword (no extra statement), e.g. {"statement_timeout": "30s"}.
    Returns (connection, seconds the connection took).
    """
    if not HAS_PSYCOPG2:
        raise PgopsError("The psycopg2 Python library is required on the host that runs this module "
                         "(pip install psycopg2-binary).")
    keywords = dict(settings.keywords)
    keywords.setdefault("application_name", application_name)
    if session_options:
        opts = " ".join("-c %s=%s" % (k, str(v).replace(" ", "\\ ")) for k, v in sorted(session_options.items()))
        keywords["options"] = (keywords.get("options", "") + " " + opts).strip()
    if settings.password:
        keywords["password"] = settings.password
    started = time.monotonic()
    try:
        conn = psycopg2.connect(**keywords)
    except psycopg2.Error as exc:
        raise PgopsError(explain_connection_error(exc, settings))
    except Exception as exc:  # invalid keyword, type errors from connect_params
        raise PgopsError(settings.redact("Cannot connect to %s: %s" % (settings.describe(), _first_line(exc))))
    elapsed = time.monotonic() - started
    conn.autocommit = autocommit
    return conn, elapsed


def _first_line(exc):
    text = str(exc).strip()
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    return text.splitlines()[0].strip() if text else exc.__class__.__name__


# (pattern in libpq's message, explanation). The first match wins; {target} is
# user@host:port/db and {detail} libpq's own first line.
_CONNECTION_ERRORS = (
    (r"password authentication failed|authentication failed for user|SASL authentication failed",
     "Authentication failed for {target}: the server rejected the password"),
    (r"no password supplied|fe_sendauth: no password",
     "Authentication failed for {target}: the server asks for a password and none was given "
     "(login_password, dsn, PGPASSWORD or a .pgpass file)"),
    (r"database \".*\" does not exist",
     "Database {dbname!r} does not exist on {hostport}"),
    (r"role \".*\" does not exist",
     "Authentication failed for {target}: role {user!r} does not exist"),
    (r"server does not support SSL, but SSL was required",
     "The server at {hostport} refuses SSL, but ssl_mode requires it"),
    (r"no pg_hba.conf entry .*(no encryption|SSL off)|rejects connection .*(no encryption|SSL off)",
     "The server at {hostport} requires SSL for {user!r} on {dbname!r}, and the connection did not use it "
     "(set ssl_mode to require or stricter)"),
    (r"no pg_hba.conf entry|pg_hba.conf rejects connection",
     "The server at {hostport} does not allow {user!r} to connect to {dbname!r} from here (pg_hba.conf)"),
    (r"certificate verify failed|root certificate file .* does not exist|could not read root certificate",
     "The server certificate of {hostport} could not be verified (check ca_cert and ssl_mode)"),
    (r"server certificate for .* does not match host name",
     "The server certificate of {hostport} does not match the host name (ssl_mode verify-full)"),
    (r"could not translate host name|Name or service not known|nodename nor servname",
     "Cannot reach PostgreSQL at {hostport}: the host name does not resolve"),
    (r"timeout expired",
     "Cannot reach PostgreSQL at {hostport}: no answer within the connect timeout"),
    (r"Connection refused|could not connect to server|No such file or directory",
     "Cannot reach PostgreSQL at {hostport}: connection refused (is the server running and listening there?)"),
    (r"too many connections|remaining connection slots are reserved",
     "The server at {hostport} refuses new connections: all connection slots are in use"),
    (r"the database system is (starting up|shutting down|in recovery mode)",
     "The server at {hostport} is not accepting connections right now (starting up, shutting down or recovering)"),
    (r"permission denied for database|not permitted to log in|must have CONNECT",
     "Role {user!r} may not connect to database {dbname!r} on {hostport}"),
)


def explain_connection_error(exc, settings):
    """One sentence for a failed connection, with libpq's own words after it."""
    text = str(exc)
    e = settings.effective()
    facts = dict(target=settings.describe(), hostport="%s:%s" % (e["host"], e["port"]),
                 user=e["user"], dbname=e["dbname"])
    detail = _first_line(exc)
    for pattern, template in _CONNECTION_ERRORS:
        if re.search(pattern, text, re.IGNORECASE):
            message = template.format(**facts)
            return settings.redact("%s. (libpq: %s)" % (message, detail))
    return settings.redact("Cannot connect to %s: %s." % (settings.describe(), detail))


def explain_query_error(exc, what):
    """One sentence for a failed catalog query (`what` names the query's purpose)."""
    code = getattr(exc, "pgcode", None)
    detail = _first_line(exc)
    if code == "42501":
        return "Permission denied while reading %s: %s" % (what, detail)
    if code == "57014":
        return "Reading %s was cancelled by statement_timeout: %s" % (what, detail)
    if code == "55P03":
        return "Reading %s gave up waiting for a lock another session holds (lock_timeout): %s" % (what, detail)
    return "Reading %s failed: %s" % (what, detail)
