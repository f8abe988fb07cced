# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PAUSE, RESUME and SHOW of one database through PgBouncer's admin console.

PAUSE makes PgBouncer release the database's server connections and hold new
queries until RESUME, so clients wait instead of failing while a short migration
runs. The admin console answers PAUSE only once every server connection of the
database is released; `pause()` waits for that at most `timeout` seconds, and on
timeout resumes the database before failing, so the pool is never left paused by
a failed call.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import select
import time

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect, explain_connection_error
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

ADMIN_DATABASE = "pgbouncer"
APPLICATION_NAME = "pgops.runbook pgbouncer"


def admin_settings(settings):
    """The settings pointed at the admin console (database pgbouncer); another database is bad input."""
    dbname = settings.keywords.get("dbname")
    if dbname and dbname != ADMIN_DATABASE:
        raise PgopsError("Option login_db: PgBouncer's admin console is the database %s, got %s." % (ADMIN_DATABASE, dbname))
    return settings.with_database(ADMIN_DATABASE)


def quote_name(name):
    """A database name as the admin console's parser reads it: a plain word as it is (the parser's
    buffer leaves no room for quotes around a 63-character name), anything else quoted."""
    if re.match(r"^[a-z0-9_]+$", name):
        return name
    return '"%s"' % name.replace('"', '""')


def _first_line(exc):
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for prefix in ("ERROR:  ", "ERROR: ", "FATAL:  "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.rstrip(".")


class AdminConsole:
    """One connection to PgBouncer's admin console (simple queries, no transactions)."""

    def __init__(self, settings):
        self.settings = settings
        self.conn = connect(settings, application_name=APPLICATION_NAME, autocommit=True)[0]

    def rows(self, command):
        """The rows `command` (a SHOW) returns, as dicts."""
        with self.conn.cursor() as cur:
            cur.execute(command)
            names = [column[0] for column in cur.description or []]
            return [dict(zip(names, row)) for row in cur.fetchall()] if names else []

    def run(self, command):
        with self.conn.cursor() as cur:
            cur.execute(command)

    def databases(self):
        return self.rows("SHOW DATABASES")

    def pools(self, database):
        return [p for p in self.rows("SHOW POOLS") if p.get("database") == database]

    def close(self):
        self.conn.close()


def database_row(databases, name):
    """SHOW DATABASES' row for `name`; None when only the `*` fallback entry would serve it."""
    for row in databases:
        if row.get("name") == name:
            return row
    return None


def busy_server_connections(pools):
    """Server connections PAUSE has to wait for (active, or used but not yet reset)."""
    return sum(int(p.get("sv_active") or 0) + int(p.get("sv_used") or 0) + int(p.get("sv_login") or 0) for p in pools)


def run_pgbouncer(settings, command, database=None, timeout=30.0, check_mode=False):
    """Pause, resume or show `database`; returns the result dict."""
    if command in ("pause", "resume") and not database:
        raise PgopsError("Option database is required with command %s." % command)
    if database == ADMIN_DATABASE:
        raise PgopsError("Option database: %s is PgBouncer's admin console, which cannot be paused." % ADMIN_DATABASE)
    if timeout is None or timeout <= 0:
        raise PgopsError("Option timeout must be more than 0 seconds, got %s." % timeout)
    settings = admin_settings(settings)
    console = AdminConsole(settings)
    try:
        try:
            databases = console.databases()
        except psycopg2.Error as exc:
            raise PgopsError("PgBouncer at %s did not answer SHOW DATABASES (%s): is it the admin console, and is %s "
                             "one of its admin_users or stats_users?" % (_where(settings), _first_line(exc),
                                                                         settings.effective()["user"]))
        row = database_row(databases, database) if database else None
        if database and row is None and database_row(databases, "*") is None:
            raise PgopsError("Option database: PgBouncer has no database %s (it has: %s)." % (
                database, ", ".join(sorted(d["name"] for d in databases if d["name"] != ADMIN_DATABASE)) or "none"))
        result = dict(changed=False, database=row, databases=databases, paused=_is_paused(row), waited_s=0.0)
        if command == "show":
            result["msg"] = _show_text(databases, database, row)
            return result
        if command == "pause":
            return _pause(console, settings, database, row, timeout, check_mode, result)
        return _resume(console, database, row, check_mode, result)
    finally:
        console.close()


def _is_paused(row):
    return bool(row and int(row.get("paused") or 0))


def _where(settings):
    effective = settings.effective()
    return "%s:%s" % (effective["host"], effective["port"])


def _show_text(databases, database, row):
    if database:
        if row is None:
            return "%s is served by PgBouncer's * entry and has no pool yet." % database
        return "%s is %s." % (database, "paused" if _is_paused(row) else "not paused")
    paused = [d["name"] for d in databases if _is_paused(d)]
    return "%d databases, paused: %s." % (len(databases), ", ".join(paused) or "none")


def _pause(console, settings, database, row, timeout, check_mode, result):
    if _is_paused(row):
        result["msg"] = "%s is already paused." % database
        return result
    busy = busy_server_connections(console.pools(database))
    if check_mode:
        result.update(changed=True, msg="Would pause %s (PAUSE waits for its %d busy server connection%s)." % (
            database, busy, "" if busy == 1 else "s"))
        return result
    started = time.monotonic()
    finished = _pause_within(settings, database, timeout)
    waited = round(time.monotonic() - started, 3)
    if not finished:
        busy = busy_server_connections(console.pools(database))
        try:
            console.run("RESUME %s" % quote_name(database))
        except psycopg2.Error as exc:
            if "is not paused" not in str(exc):
                raise PgopsError("PAUSE %s did not finish within timeout %gs, and RESUME failed (%s): run RESUME %s on "
                                 "PgBouncer's admin console now, its clients are waiting." % (
                                     database, timeout, _first_line(exc), database))
        raise PgopsError("Option timeout: PAUSE %s did not finish within %gs, %d server connection%s still busy (in "
                         "session pool mode a client keeps its server connection until it disconnects); the database "
                         "was resumed, nothing is paused." % (database, timeout, busy, " was" if busy == 1 else "s were"),
                         details=dict(waited_s=waited, paused=False))
    after = database_row(console.databases(), database)
    result.update(changed=True, database=after, databases=console.databases(), paused=True, waited_s=waited,
                  msg="Paused %s in %.3fs: its server connections are released and its clients wait until RESUME." % (
                      database, waited))
    return result


def _pause_within(settings, database, timeout):
    """Send PAUSE on a connection of its own; True once PgBouncer confirms it, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    keywords = dict(settings.keywords)
    keywords.setdefault("application_name", APPLICATION_NAME)
    if settings.password:
        keywords["password"] = settings.password
    try:
        conn = psycopg2.connect(async_=1, **keywords)
    except psycopg2.Error as exc:
        raise PgopsError(explain_connection_error(exc, settings))
    try:
        try:
            if not _wait(conn, deadline):
                raise PgopsError("Cannot connect to PgBouncer's admin console at %s within timeout %gs." % (
                    _where(settings), timeout))
        except psycopg2.Error as exc:
            raise PgopsError(explain_connection_error(exc, settings))
        cur = conn.cursor()
        cur.execute("PAUSE %s" % quote_name(database))
        try:
            return _wait(conn, deadline)
        except psycopg2.Error as exc:
            raise PgopsError("PgBouncer refused PAUSE %s: %s." % (database, _first_line(exc)))
    finally:
        conn.close()


def _wait(conn, deadline):
    """Drive an asynchronous connection until its operation is done (True) or the deadline passes (False)."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if state == psycopg2.extensions.POLL_READ:
            select.select([conn.fileno()], [], [], remaining)
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [conn.fileno()], [], remaining)


def _resume(console, database, row, check_mode, result):
    if not _is_paused(row):
        result["msg"] = "%s is not paused." % database
        return result
    if check_mode:
        result.update(changed=True, msg="Would resume %s." % database)
        return result
    try:
        console.run("RESUME %s" % quote_name(database))
    except psycopg2.Error as exc:
        raise PgopsError("PgBouncer refused RESUME %s: %s." % (database, _first_line(exc)))
    after = database_row(console.databases(), database)
    result.update(changed=True, database=after, databases=console.databases(), paused=_is_paused(after),
                  msg="Resumed %s: its clients' queries run again." % database)
    return result
