# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the selected health checks over one read-only connection.

One statement gathers the shared context (versions, settings, extensions);
each check then sends at most one statement of its own, so the number of
statements does not depend on the number of tables (orphaned_records, opt-in,
is the documented exception: one anti-join per relationship).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

try:
    import psycopg2
    import psycopg2.extras
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import (
    CRITICAL, OK, SKIPPED, WARNING, Outcome, worst,
)
from ansible_collections.pgops.runbook.plugins.module_utils.health.registry import CHECKS

CONTEXT_SETTINGS = (
    "max_connections", "superuser_reserved_connections", "autovacuum_freeze_max_age",
    "autovacuum_multixact_freeze_max_age", "data_directory", "ssl", "password_encryption",
    "log_connections", "log_disconnections", "archive_mode", "block_size", "shared_preload_libraries",
    "listen_addresses", "wal_level", "statement_timeout", "max_locks_per_transaction", "max_prepared_transactions",
)

CONTEXT_SQL = """
SELECT current_setting('server_version_num')::int AS server_version_num,
       current_setting('server_version') AS server_version,
       pg_is_in_recovery() AS in_recovery,
       current_database() AS database,
       current_user AS login_role,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       pg_has_role(current_user, 'pg_monitor', 'MEMBER') AS monitor,
       pg_backend_pid() AS backend_pid,
       inet_server_addr()::text AS server_addr,
       (SELECT json_object_agg(name, setting) FROM pg_settings WHERE name = ANY(%(settings)s)) AS settings,
       (SELECT coalesce(json_object_agg(extname, extversion), '{}') FROM pg_extension) AS extensions
"""

# Server settings for the health session itself: never write, never queue
# behind a migration's ACCESS EXCLUSIVE lock, never run away.
SESSION_OPTIONS = dict(default_transaction_read_only="on", lock_timeout="2s", idle_in_transaction_session_timeout="60s")

_SKIP_CODES = {
    "42501": "the login role lacks the privilege",
    "42P01": "a relation it reads does not exist here",
    "42883": "a function it uses does not exist here",
    "55000": "a prerequisite is not in place",
}
_TIMEOUT_CODES = {"57014": "statement_timeout", "55P03": "lock_timeout"}


class HealthContext:
    """What every check may read: the context row, options, and a counted query()."""

    def __init__(self, conn, settings, options, connect_seconds):
        self.conn = conn
        self.connection_settings = settings
        self.options = options
        self.connect_seconds = connect_seconds
        self.statements = 0
        self.row = {}

    def query(self, sql, params=None):
        """Run one statement; rows as dicts. Every statement of a run goes through here."""
        self.statements += 1
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []

    def setting(self, name):
        return (self.row.get("settings") or {}).get(name)

    @property
    def server_version_num(self):
        return self.row["server_version_num"]

    @property
    def in_recovery(self):
        return self.row["in_recovery"]

    @property
    def extensions(self):
        return self.row.get("extensions") or {}

    def query_text(self):
        """SQL expression length for query texts (0 hides them; they may hold patient data)."""
        return int(self.options.get("query_text_length", 100))


def check_names():
    return [c.name for c in CHECKS]


def select_checks(checks, skip_checks):
    """The checks named by `checks` (names, 'default', 'all') minus `skip_checks`."""
    by_name = dict((c.name, c) for c in CHECKS)
    known = ", ".join(sorted(by_name))
    chosen = []
    for name in checks or ["default"]:
        if name == "all":
            names = list(by_name)
        elif name == "default":
            names = [c.name for c in CHECKS if not c.opt_in]
        elif name in by_name:
            names = [name]
        else:
            raise PgopsError("Option checks names an unknown check %r; known checks: default, all, %s." % (name, known))
        chosen.extend(n for n in names if n not in chosen)
    for name in skip_checks or []:
        if name not in by_name:
            raise PgopsError("Option skip_checks names an unknown check %r; known checks: %s." % (name, known))
    return [by_name[n] for n in [c.name for c in CHECKS] if n in chosen and n not in (skip_checks or [])]


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_thresholds(overrides):
    """Defaults merged with the user's `thresholds`, each key and type checked."""
    by_name = dict((c.name, c) for c in CHECKS)
    resolved = dict((c.name, dict(c.thresholds)) for c in CHECKS)
    for name, values in (overrides or {}).items():
        if name not in by_name:
            raise PgopsError("Option thresholds names an unknown check %r; known checks: %s."
                             % (name, ", ".join(sorted(by_name))))
        if not isinstance(values, dict):
            raise PgopsError("Option thresholds.%s must be a dictionary of threshold names to values." % name)
        defaults = by_name[name].thresholds
        for key, value in values.items():
            if key not in defaults:
                valid = ", ".join(sorted(defaults)) or "none"
                raise PgopsError("Option thresholds.%s has no threshold %r; valid: %s." % (name, key, valid))
            expected = defaults[key]
            if isinstance(expected, bool):
                ok = isinstance(value, bool)
                kind = "true or false"
            elif isinstance(expected, list):
                ok = isinstance(value, list)
                kind = "a list"
            else:  # numbers, None meaning an unset number
                if isinstance(value, str):
                    try:
                        value = float(value) if "." in value else int(value)
                    except ValueError:
                        pass
                ok = value is None or _is_number(value)
                kind = "a number"
            if not ok:
                raise PgopsError("Option thresholds.%s.%s must be %s, got %r." % (name, key, kind, value))
            resolved[name][key] = value
    return resolved


def _run_one(check, context, thresholds):
    reason = check.unavailable(context) if check.unavailable else None
    if reason:
        return Outcome(SKIPPED, "Skipped: %s." % reason)
    try:
        if check.run is not None:
            return check.run(context, thresholds)
        sql, params = check.statement(context, thresholds)
        rows = context.query(sql, params) if sql else []
        return check.evaluate(rows, thresholds, context)
    except psycopg2.Error as exc:
        if context.conn.closed:
            raise PgopsError("The connection to the server was lost during check %s: %s"
                             % (check.name, str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"))
        code = getattr(exc, "pgcode", None)
        first_line = (getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)).strip()
        if code in _SKIP_CODES:
            return Outcome(SKIPPED, "Skipped: %s (%s)." % (_SKIP_CODES[code], first_line))
        if code in _TIMEOUT_CODES:
            return Outcome(WARNING, "Could not finish within %s: %s." % (_TIMEOUT_CODES[code], first_line))
        return Outcome(WARNING, "Could not run: %s." % first_line)


def summarize(results):
    counts = dict((s, 0) for s in (OK, WARNING, CRITICAL, SKIPPED))
    for item in results:
        counts[item["status"]] += 1

    def plural(n, word):
        return "%d %s%s" % (n, word, "" if n == 1 else "s")

    line = "%s passed, %s, %d failed" % (plural(counts[OK], "check"), plural(counts[WARNING], "warning"), counts[CRITICAL])
    if counts[SKIPPED]:
        line += ", %d skipped" % counts[SKIPPED]
    summary = dict(counts)
    summary.update(total=len(results), line=line)
    return summary


def run_health_checks(settings, checks=None, skip_checks=None, thresholds=None, options=None):
    """Connect once, run the selected checks, return the result dict."""
    selected = select_checks(checks, skip_checks)
    resolved = resolve_thresholds(thresholds)
    options = dict(options or {})
    session = dict(SESSION_OPTIONS)
    session["statement_timeout"] = "%ds" % int(options.get("statement_timeout", 30))
    started = time.monotonic()
    conn, connect_seconds = connect(settings, application_name="pgops.runbook health_check",
                                    session_options=session)
    try:
        context = HealthContext(conn, settings, options, connect_seconds)
        try:
            context.row = context.query(CONTEXT_SQL, dict(settings=list(CONTEXT_SETTINGS)))[0]
        except psycopg2.Error as exc:
            raise PgopsError("Cannot read the server's settings on %s: %s"
                             % (settings.describe(), str(exc).strip().splitlines()[0]))
        results = []
        for check in selected:
            outcome = _run_one(check, context, resolved[check.name])
            results.append(outcome.as_dict(check.name, resolved[check.name]))
    finally:
        conn.close()
    return dict(
        database=context.row["database"],
        server_version=context.row["server_version"],
        in_recovery=context.row["in_recovery"],
        checks=results,
        summary=summarize(results),
        status=worst(r["status"] for r in results) if any(r["status"] != SKIPPED for r in results) else SKIPPED,
        statements=context.statements,
        duration_s=round(time.monotonic() - started, 3),
    )


def failing_checks(results, fail_on):
    """Checks whose status fails the task under `fail_on` (critical|warning|never)."""
    if fail_on == "never":
        return []
    bad = (CRITICAL,) if fail_on == "critical" else (CRITICAL, WARNING)
    return [r for r in results if r["status"] in bad]
