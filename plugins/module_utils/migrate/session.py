# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration session: one connection holding the run's advisory lock, the timeouts
every migration statement runs under, and retries of a migration that lost a lock
race (SQLSTATE 55P03) with jittered backoff."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import random
import time

try:
    import psycopg2
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"


def parse_duration(value, option):
    """Seconds from an int or a PostgreSQL-style duration ('5s', '500ms', '2min'); PgopsError naming `option`."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        units = (("ms", 0.001), ("min", 60.0), ("s", 1.0), ("h", 3600.0))
        for suffix, factor in units:
            if text.endswith(suffix) and text[:-len(suffix)].strip().replace(".", "", 1).isdigit():
                seconds = float(text[:-len(suffix)]) * factor
                break
        else:
            if not text.replace(".", "", 1).isdigit():
                raise PgopsError("Option %s must be a duration such as 5s, 500ms or 2min, got %r." % (option, value))
            seconds = float(text)
    if seconds < 0:
        raise PgopsError("Option %s must not be negative, got %r." % (option, value))
    return seconds


def as_setting(seconds):
    """A duration for SET: whole milliseconds ('0' disables)."""
    return "%dms" % int(round(seconds * 1000))


class MigrationSession:
    """A connection to the database being migrated, in autocommit: migrations open their own transactions."""

    def __init__(self, settings, lock_wait, lock_timeout, statement_timeout, lock_retries, application_name):
        self.settings = settings
        self.lock_wait = lock_wait
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        self.lock_retries = lock_retries
        self.conn, dummy = connect(settings, application_name=application_name, autocommit=True)
        self.locked = False
        self.retries = []

    def close(self):
        if self.conn is not None and not self.conn.closed:
            self.conn.close()

    def cursor(self):
        return self.conn.cursor()

    def lock(self, key, what):
        """Take the run's advisory lock `key` ((bigint,) or (class, text)), waiting up to lock_wait
        seconds for another run."""
        with self.conn.cursor() as cur:
            cur.execute("SET lock_timeout = %s", (as_setting(self.lock_wait),))
            try:
                if len(key) == 1:
                    cur.execute("SELECT pg_advisory_lock(%s)", key)
                else:
                    cur.execute("SELECT pg_advisory_lock(%s::int, hashtext(%s))", key)
            except psycopg2.Error as exc:
                if getattr(exc, "pgcode", None) == LOCK_NOT_AVAILABLE:
                    raise PgopsError("Another migration of %s is running (%s); gave up waiting after %g s (option lock_wait)."
                                     % (self.settings.describe(), what, self.lock_wait))
                raise
            finally:
                cur.execute("RESET lock_timeout")
        self.locked = True

    def apply_timeouts(self, cur, local=True):
        """lock_timeout / statement_timeout for the statements that follow (SET LOCAL inside a transaction)."""
        scope = "SET LOCAL" if local else "SET"
        cur.execute("%s lock_timeout = %%s" % scope, (as_setting(self.lock_timeout or 0),))
        cur.execute("%s statement_timeout = %%s" % scope, (as_setting(self.statement_timeout or 0),))

    @contextlib.contextmanager
    def transaction(self):
        """A cursor inside BEGIN, with the migration timeouts set for it; ROLLBACK when the block
        raises (the block ends the transaction itself, e.g. with its history row and COMMIT)."""
        with self.conn.cursor() as cur:
            self.begin_with_timeouts(cur)
            try:
                yield cur
            except BaseException:
                if not self.conn.closed:
                    try:
                        cur.execute("ROLLBACK")
                    except psycopg2.Error:
                        pass
                raise

    def begin_with_timeouts(self, cur):
        """BEGIN and the timeouts of the migration's statements, in one round trip."""
        cur.execute("BEGIN; SET LOCAL lock_timeout = %s; SET LOCAL statement_timeout = %s",
                    (as_setting(self.lock_timeout or 0), as_setting(self.statement_timeout or 0)))

    def reset_timeouts(self, cur):
        cur.execute("RESET lock_timeout")
        cur.execute("RESET statement_timeout")

    def with_retries(self, label, attempt):
        """Run attempt(); when it fails on a lock timeout, wait (jittered, growing) and run it
        again, up to lock_retries times. attempt() must leave nothing behind when it fails."""
        tries = 0
        while True:
            try:
                return attempt()
            except Exception as exc:  # a server error, or a tool that reported one (MigrationFailed)
                lost_lock = getattr(exc, "pgcode", None) == LOCK_NOT_AVAILABLE or getattr(exc, "lock_timeout", False)
                if not lost_lock or tries >= self.lock_retries:
                    raise
                tries += 1
                delay = min(30.0, 0.5 * (2 ** (tries - 1))) * random.uniform(0.5, 1.5)
                self.retries.append(dict(migration=label, attempt=tries, waited_s=round(delay, 3)))
                time.sleep(delay)
