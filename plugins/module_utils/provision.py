# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An application's login role and database: created when missing, brought to the
requested settings when they differ, never dropped.

Passwords leave this host only as a SCRAM-SHA-256 verifier computed by libpq
(PQencryptPasswordConn), inside the SQL over the module's connection; an existing
verifier is compared with the password here, so a second run changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata

try:
    import psycopg2
    import psycopg2.extensions
    from psycopg2 import sql
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None
    sql = None

from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

NAME_LIMIT = 63  # bytes in a PostgreSQL identifier
# pg_advisory_lock(class, 0): one provisioning run at a time on a server ("pgpv").
LOCK_CLASS = 0x70677076
_SCRAM_RE = re.compile(r"^SCRAM-SHA-256\$(?P<iterations>\d+):(?P<salt>[^$]+)\$(?P<stored>[^:]+):(?P<server>.+)$")


class ProvisionRequest:
    """The validated options of the database module."""

    def __init__(self, name, owner=None, encoding="UTF8", lc_collate=None, lc_ctype=None, template="template0",
                 extensions=None, role=None, role_password=None, role_connection_limit=-1,
                 update_password="always", check_mode=False):
        self.name = name
        self.owner = owner or role or None
        self.encoding = encoding
        self.lc_collate = lc_collate or None
        self.lc_ctype = lc_ctype or None
        self.template = template
        self.extensions = list(extensions or [])
        self.role = role or None
        self.role_password = role_password or None
        self.role_connection_limit = role_connection_limit
        self.update_password = update_password
        self.check_mode = check_mode
        self.validate()

    def validate(self):
        for option, value in (("name", self.name), ("owner", self.owner), ("role", self.role),
                              ("template", self.template)):
            if option in ("name", "template") or value is not None:
                _check_identifier(option, value)
        for extension in self.extensions:
            _check_identifier("extensions", extension)
        if self.role_password and not self.role:
            raise PgopsError("Option role_password needs option role, the role it is the password of.")
        if self.role_connection_limit < -1:
            raise PgopsError("Option role_connection_limit must be -1 (no limit) or more, got %d."
                             % self.role_connection_limit)
        if self.update_password not in ("always", "on_create"):
            raise PgopsError("Option update_password must be always or on_create.")
        if not self.encoding or not re.match(r"^[A-Za-z0-9_-]+$", self.encoding):
            raise PgopsError("Option encoding must be an encoding name such as UTF8.")


def _check_identifier(option, value):
    if not value or not isinstance(value, str) or not value.strip():
        raise PgopsError("Option %s must be a non-empty name." % option)
    if "\x00" in value:
        raise PgopsError("Option %s must not contain a NUL character." % option)
    if len(value.encode("utf-8")) > NAME_LIMIT:
        raise PgopsError("Option %s: %r is longer than PostgreSQL's %d-byte limit for names." % (option, value, NAME_LIMIT))


# --- passwords ----------------------------------------------------------------------------------

def saslprep(password):
    """The password as PostgreSQL prepares it for SCRAM (RFC 4013 SASLprep; the
    password unchanged when it is ASCII or when SASLprep rejects it, as the server does)."""
    if all(ord(ch) < 0x80 for ch in password):
        return password
    mapped = "".join(" " if stringprep.in_table_c12(ch) else ch for ch in password if not stringprep.in_table_b1(ch))
    normalized = unicodedata.normalize("NFKC", mapped)
    if not normalized:
        return password
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22, stringprep.in_table_c3,
                  stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
                  stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_a1)
    if any(check(ch) for ch in normalized for check in prohibited):
        return password
    if any(stringprep.in_table_d1(ch) for ch in normalized):
        if any(stringprep.in_table_d2(ch) for ch in normalized):
            return password
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            return password
    return normalized


def password_matches(stored, password, role):
    """Whether the stored verifier (pg_authid.rolpassword: SCRAM-SHA-256 or md5) is one of `password`."""
    if not stored:
        return False
    match = _SCRAM_RE.match(stored)
    if match:
        try:
            salt = base64.b64decode(match.group("salt"))
            stored_key = base64.b64decode(match.group("stored"))
            server_key = base64.b64decode(match.group("server"))
        except (ValueError, TypeError):
            return False
        salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, int(match.group("iterations")))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return (hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)
                and hmac.compare_digest(hmac.new(salted, b"Server Key", hashlib.sha256).digest(), server_key))
    if stored.startswith("md5") and len(stored) == 35:
        expected = "md5" + hashlib.md5((password + role).encode("utf-8")).hexdigest()  # nosec - PostgreSQL's own format
        return hmac.compare_digest(expected, stored)
    return False


# --- the engine ---------------------------------------------------------------------------------

class _Plan:
    """The changes to make, each one described in a sentence, with its statement."""

    def __init__(self):
        self.actions = []  # (sentence, statement, params, database or None)
        self.warnings = []

    def add(self, sentence, statement, params=None, database=None):
        self.actions.append((sentence, statement, params, database))


def provision(settings, request):
    """Make sure the role and database of `request` exist as asked; the result dict."""
    if "dbname" not in settings.keywords and not os.environ.get("PGDATABASE"):
        settings = settings.with_database("postgres")  # the database to create may not exist yet
    conn, dummy = connect(settings, application_name="pgops.runbook.database")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, 0)", (LOCK_CLASS,))
            before = _read_state(cur, request)
            plan = _plan(cur, request, before, settings)
            if not request.check_mode:
                _apply(conn, cur, settings, request, plan)
    finally:
        conn.close()
    after = _expected_state(request, before, plan)
    changed = bool(plan.actions)
    result = dict(changed=changed, actions=[a[0] for a in plan.actions],
                  role=after["role"], database=after["database"], extensions=after["extensions"],
                  diff=dict(before=_describe(before), after=_describe(after),
                            before_header="server now", after_header="after this run"))
    result["msg"] = ("%s %s." % ("Would" if request.check_mode else "Did", "; ".join(result["actions"]))
                     if changed else "Role and database are as requested.")
    if plan.warnings:
        result["warnings"] = plan.warnings
    return result


def _read_state(cur, request):
    """What the server has now: the login user's powers, the role, the database and its extensions."""
    cur.execute("SELECT current_user, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
    user, superuser, createrole, createdb = cur.fetchone()
    state = dict(user=user, superuser=superuser, createrole=createrole, createdb=createdb, role=None, database=None,
                 extensions=[], owner_exists=True)
    if request.role:
        cur.execute("SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = %s", (request.role,))
        row = cur.fetchone()
        if row:
            state["role"] = dict(name=request.role, login=row[0], connection_limit=row[1], verifier=None)
            if superuser:
                cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (request.role,))
                state["role"]["verifier"] = cur.fetchone()[0]
    if request.owner and request.owner != request.role:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (request.owner,))
        if not cur.fetchone():
            raise PgopsError("Option owner: role %r does not exist (the database module creates only the role named "
                             "by option role)." % request.owner)
    cur.execute("SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, r.rolname, d.datallowconn "
                "FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = %s", (request.name,))
    row = cur.fetchone()
    if row:
        state["database"] = dict(name=request.name, encoding=row[0], lc_collate=row[1], lc_ctype=row[2], owner=row[3])
        if not row[4]:
            raise PgopsError("Option name: database %r exists but does not allow connections (datallowconn false)."
                             % request.name)
    return state


def _plan(cur, request, before, settings):
    plan = _Plan()
    ident = sql.Identifier
    if request.role:
        role = before["role"]
        if role is None:
            plan.add("create role %s (LOGIN%s%s)" % (
                request.role, ", CONNECTION LIMIT %d" % request.role_connection_limit if request.role_connection_limit >= 0 else "",
                ", with a password" if request.role_password else ""),
                "create_role", None)
        else:
            if not role["login"]:
                plan.add("allow role %s to log in" % request.role,
                         sql.SQL("ALTER ROLE {} LOGIN").format(ident(request.role)))
            if role["connection_limit"] != request.role_connection_limit:
                plan.add("set the connection limit of role %s to %d (was %d)" % (
                    request.role, request.role_connection_limit, role["connection_limit"]),
                    sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                        ident(request.role), sql.Literal(request.role_connection_limit)))
            if request.role_password and request.update_password == "always":
                if before["superuser"]:
                    if not password_matches(role["verifier"], request.role_password, request.role):
                        plan.add("set a new password for role %s" % request.role, "set_password")
                else:
                    plan.warnings.append("The login user %s may not read stored passwords (it is not a superuser), so "
                                         "the password of role %s was set again; use update_password: on_create to "
                                         "leave an existing role's password alone." % (before["user"], request.role))
                    plan.add("set the password of role %s again" % request.role, "set_password")
    _check_template_and_encoding(cur, request, before)
    database = before["database"]
    if database is None:
        options = sql.SQL(" ").join(
            [sql.SQL("OWNER {}").format(ident(request.owner))] * bool(request.owner)
            + [sql.SQL("ENCODING {}").format(sql.Literal(request.encoding)),
               sql.SQL("TEMPLATE {}").format(ident(request.template))]
            + [sql.SQL("LC_COLLATE {}").format(sql.Literal(request.lc_collate))] * bool(request.lc_collate)
            + [sql.SQL("LC_CTYPE {}").format(sql.Literal(request.lc_ctype))] * bool(request.lc_ctype))
        plan.add("create database %s (owner %s, %s, template %s)" % (
            request.name, request.owner or before["user"], request.encoding, request.template),
            sql.SQL("CREATE DATABASE {} {}").format(ident(request.name), options))
    else:
        if request.owner and database["owner"] != request.owner:
            plan.add("make %s the owner of database %s (was %s)" % (request.owner, request.name, database["owner"]),
                     sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident(request.name), ident(request.owner)))
    _plan_extensions(cur, request, before, plan, settings)
    return plan


def _check_template_and_encoding(cur, request, before):
    cur.execute("SELECT pg_char_to_encoding(%s) >= 0, pg_encoding_to_char(pg_char_to_encoding(%s))",
                (request.encoding, request.encoding))
    known, canonical = cur.fetchone()
    if not known:
        raise PgopsError("Option encoding: %r is not an encoding PostgreSQL knows (for example UTF8)." % request.encoding)
    database = before["database"]
    if database is None:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (request.template,))
        if not cur.fetchone():
            raise PgopsError("Option template: database %r does not exist." % request.template)
        return
    # An existing database keeps its encoding and locale: say so rather than pretend.
    if database["encoding"] != canonical:
        raise PgopsError("Option encoding: database %s exists with encoding %s, not %s, and an encoding cannot be "
                         "changed (the module never re-creates a database)." % (request.name, database["encoding"], canonical))
    for option in ("lc_collate", "lc_ctype"):
        wanted = getattr(request, option)
        if wanted and database[option] != wanted:
            raise PgopsError("Option %s: database %s exists with %s %s, not %s, and it cannot be changed (the module "
                             "never re-creates a database)." % (option, request.name, option, database[option], wanted))


def _plan_extensions(cur, request, before, plan, settings):
    if not request.extensions:
        return
    cur.execute("SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", (request.extensions,))
    available = set(r[0] for r in cur.fetchall())
    missing = [e for e in request.extensions if e not in available]
    if missing:
        raise PgopsError("Option extensions: %s is not available on the server (pg_available_extensions)." % missing[0])
    present = set()
    if before["database"] is not None:
        present = set(_database_extensions(settings, request.name))
    before["extensions"] = sorted(present)
    for extension in request.extensions:
        if extension not in present:
            plan.add("create extension %s in database %s" % (extension, request.name),
                     sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)), database=request.name)


def _database_extensions(settings, dbname):
    """The extensions installed in `dbname` (read over a second connection to it)."""
    other, dummy = connect(settings.with_database(dbname), application_name="pgops.runbook.database")
    try:
        with other.cursor() as cur:
            cur.execute("SELECT extname FROM pg_extension")
            return [r[0] for r in cur.fetchall()]
    finally:
        other.close()


def _apply(conn, cur, settings, request, plan):
    for index, (sentence, statement, params, database) in enumerate(plan.actions):
        try:
            if statement == "create_role":
                _create_role(conn, cur, request)
            elif statement == "set_password":
                cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(request.role)),
                            (_verifier(conn, request),))
            elif database is not None:
                other, dummy = connect(settings.with_database(database), application_name="pgops.runbook.database")
                try:
                    with other.cursor() as other_cur:
                        other_cur.execute(statement, params)
                finally:
                    other.close()
            else:
                cur.execute(statement, params)
        except psycopg2.Error as exc:
            raise PgopsError(_explain(sentence, exc, request), details=dict(actions_done=[a[0] for a in plan.actions[:index]]))


def _create_role(conn, cur, request):
    parts = [sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(request.role))]
    params = []
    if request.role_connection_limit >= 0:
        parts.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(request.role_connection_limit)))
    if request.role_password:
        parts.append(sql.SQL("PASSWORD %s"))
        params.append(_verifier(conn, request))
    cur.execute(sql.SQL(" ").join(parts), params or None)


def _verifier(conn, request):
    """The SCRAM-SHA-256 verifier of the role's password, computed by libpq on this host."""
    return psycopg2.extensions.encrypt_password(request.role_password, request.role, scope=conn,
                                                algorithm="scram-sha-256")


def _explain(sentence, exc, request):
    detail = (str(getattr(exc, "pgerror", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
    detail = re.sub(r"^(ERROR|FATAL):\s+", "", detail)
    if request.role_password:
        detail = detail.replace(request.role_password, "********")
    code = getattr(exc, "pgcode", None)
    if code == "42501":
        return "Could not %s: permission denied (%s); the login role needs CREATEROLE and CREATEDB, or superuser." % (
            sentence, detail)
    if "locale" in detail:
        return "Option lc_collate / lc_ctype: could not %s: %s." % (sentence, detail)
    return "Could not %s: %s." % (sentence, detail)


def _expected_state(request, before, plan):
    """The state after the run (or after it would have run, in check mode)."""
    done = [a[0] for a in plan.actions]
    role = None
    if request.role:
        role = dict(name=request.role, login=True, connection_limit=request.role_connection_limit,
                    created=before["role"] is None,
                    password_changed=any(s.startswith("set a new password") or s.startswith("set the password")
                                         for s in done) or (before["role"] is None and bool(request.role_password)))
    db = before["database"]
    database = dict(name=request.name, created=db is None,
                    owner=request.owner or (db["owner"] if db else before["user"]),
                    encoding=db["encoding"] if db else request.encoding,
                    lc_collate=db["lc_collate"] if db else request.lc_collate,
                    lc_ctype=db["lc_ctype"] if db else request.lc_ctype)
    extensions = sorted(set(before["extensions"]) | set(request.extensions))
    return dict(role=role, database=database, extensions=extensions)


def _describe(state):
    """A readable, secret-free picture of a state for --diff."""
    role = state["role"]
    lines = []
    if role is None:
        lines.append("role: (none)")
    else:
        lines.append("role %s: login %s, connection limit %s%s" % (
            role["name"], "yes" if role["login"] else "no", role["connection_limit"],
            ", password changed" if role.get("password_changed") else ""))
    database = state["database"]
    if database is None:
        lines.append("database: (none)")
    else:
        lines.append("database %s: owner %s, encoding %s, lc_collate %s, lc_ctype %s" % (
            database["name"], database["owner"], database["encoding"], database["lc_collate"] or "(template's)",
            database["lc_ctype"] or "(template's)"))
    lines.append("extensions: %s" % (", ".join(state["extensions"]) or "(none)"))
    return "\n".join(lines) + "\n"
