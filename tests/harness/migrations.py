"""What the migrate tests share: a fresh database per test, a transaction of another
session holding a lock, an application reading while a migration waits, two plays
started at once, and reading a database's tables, history and fingerprint back.

    with fresh_database(cluster, request) as name: ...   # the `database` fixture (tests/conftest.py)
    with LockHolder.table(pg, db, "patients", seconds=2.5): migrate(...)
    with Reads(cluster, db, "SELECT count(*) FROM patients") as reads: migrate(...)
    first, second = at_once(run_a, run_b)
"""

import contextlib
import hashlib
import re
import shutil
import threading
import time

import psycopg2
from psycopg2 import sql

from tests.conftest import connection_vars
from tests.harness.playbook import run_play

# The tables in which each migration tool records what it applied.
HISTORY_TABLES = ("pgops_schema_history", "alembic_version", "django_migrations", "_prisma_migrations")
NAME_LIMIT = 63  # PostgreSQL's identifier length


def database_name(request, prefix=None):
    """A database name made from the test's file and name (e.g. `migrate_sql_test_target...`),
    at most 63 characters; a name that had to be shortened ends in a hash of the whole."""
    if prefix is None:
        prefix = request.module.__name__.rsplit(".", 1)[-1]
        prefix = prefix[len("test_"):] if prefix.startswith("test_") else prefix
    whole = re.sub(r"[^a-z0-9_]+", "_", ("%s_%s" % (prefix, request.node.name)).lower()).strip("_")
    if len(whole) <= NAME_LIMIT:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return whole[:NAME_LIMIT - len(digest) - 1] + "_" + digest


@contextlib.contextmanager
def fresh_database(cluster, request, owner="pgops_app", prefix=None):
    """An empty database owned by `owner` for one test, named after it; dropped afterwards
    (WITH FORCE: a session the test left open does not keep it)."""
    name = database_name(request, prefix)
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    conn = cluster.primary.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(drop)
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
    finally:
        conn.close()
    try:
        yield name
    finally:
        conn = cluster.primary.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(drop)
                # and what a restore over it kept (<name>__pre_restore_<time>) or left
                cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (name + "__",))
                for (kept,) in cur.fetchall():
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(kept)))
        finally:
            conn.close()


def copy_project(fixture_dir, tmp_path):
    """A copy of a migration fixture project (without __pycache__) under tmp_path, which the test may edit."""
    target = tmp_path / "project"
    shutil.copytree(str(fixture_dir), str(target), ignore=shutil.ignore_patterns("__pycache__"))
    return target


def migrate(pg, db, check=False, diff=False, verbosity=0, name="migrate", user="pgops_app", **options):
    """Run pgops.runbook.migrate on `db` as `user` in one play: (the task's result, the run)."""
    run = run_play([{"name": name, "pgops.runbook.migrate": dict(connection_vars(pg, user=user, db=db), **options)}],
                   check=check, diff=diff, verbosity=verbosity)
    return run.result(name), run


def snapshot(pg, db, exact_counts=False):
    """db_snapshot's snapshot of `db`, taken by its engine in this process: what a test checks
    a database against (db_snapshot itself is tested through Ansible in test_db_snapshot.py;
    here a play per check would only add a second of ansible-playbook start-up each time)."""
    from ansible_collections.pgops.runbook.plugins.module_utils.connection import ConnectionSettings, connection_argument_spec
    from ansible_collections.pgops.runbook.plugins.module_utils.snapshot import take_snapshot
    params = dict((name, None) for name in connection_argument_spec())
    params.update(connection_vars(pg, db=db))
    return take_snapshot(ConnectionSettings.from_params(params), exact_counts=exact_counts)[0]


def fingerprint(pg, db):
    """db_snapshot's schema fingerprint of `db`."""
    return snapshot(pg, db)["fingerprint"]


def tables(cluster, db):
    """The tables of the public schema, sorted, without the migration tools' history tables."""
    rows = cluster.primary.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                   "AND tablename <> ALL(%s) ORDER BY 1", (list(HISTORY_TABLES),), dbname=db) or []
    return [r[0] for r in rows]


def history_rows(cluster, db, table, columns, order_by):
    """`SELECT columns FROM table ORDER BY order_by` in `db`'s public schema as a list of
    tuples; None when there is no such table."""
    exists = cluster.primary.execute("SELECT to_regclass(%s) IS NOT NULL", ("public.%s" % table,), dbname=db)
    if not exists[0][0]:
        return None
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(sql.SQL(columns), sql.Identifier("public", table), sql.SQL(order_by))
    return cluster.primary.execute(query, dbname=db) or []


class LockHolder:
    """A transaction of another session, as an application's: it runs `statement` (which takes
    a lock) when the block starts and holds what it took until the block ends or, with
    `seconds`, until that time has passed -- and, with `waited` too, until another session
    has been waiting for the lock that long (so a migration that starts late under load
    still meets it, and a lock_timeout shorter than `waited` expires at least once)."""

    def __init__(self, pg, db, statement, params=None, seconds=None, waited=None, user="pgops_app"):
        self.pg, self.db, self.user = pg, db, user
        self.statement, self.params = statement, params
        self.seconds, self.waited = seconds, waited
        self.conn = None
        self.pid = None
        self.releaser = None
        self.ending = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()

    @classmethod
    def table(cls, pg, db, table, mode="ACCESS SHARE", seconds=None, waited=None):
        """A transaction holding a `mode` lock on `table` (ACCESS SHARE: what any SELECT takes)."""
        if mode not in ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
                        "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"):
            raise ValueError("not a table lock mode: %s" % mode)
        statement = sql.SQL("LOCK TABLE {} IN %s MODE" % mode).format(sql.Identifier(table))
        return cls(pg, db, statement, seconds=seconds, waited=waited)

    @classmethod
    def advisory(cls, pg, db, statement, params=None):
        """A session holding an advisory lock (`statement`: a pg_advisory_lock call) until the block ends."""
        return cls(pg, db, statement, params)

    def connect(self):
        return psycopg2.connect(host=self.pg["host"], port=self.pg["port"], user=self.user, dbname=self.db,
                                password=self.pg["passwords"][self.user], sslmode="require")

    def __enter__(self):
        self.conn = self.connect()
        self.pid = self.conn.get_backend_pid()
        with self.conn.cursor() as cur:
            cur.execute(self.statement, self.params)  # psycopg2 opens the transaction first
        if self.seconds is not None:
            self.release_after(self.seconds, self.waited)
        return self

    def release_after(self, seconds, waited=None):
        """Release what the transaction holds `seconds` from now or, with `waited`, once another
        session has also been waiting for it `waited` seconds, whichever is later."""
        self.releaser = threading.Thread(target=self._release_later, args=(time.monotonic() + seconds, waited))
        self.releaser.start()

    def _release_later(self, deadline, waited):
        try:
            if waited is not None:
                first_wait = self._first_waiter()
                if first_wait is not None:
                    deadline = max(deadline, first_wait + waited)
            self.ending.wait(max(0.0, deadline - time.monotonic()))
        finally:
            self.release()

    def _first_waiter(self):
        """When a session was first seen waiting for this one (None: the block ended first)."""
        monitor = self.connect()
        monitor.autocommit = True
        try:
            with monitor.cursor() as cur:
                while not self.ending.is_set():
                    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (self.pid,))
                    if cur.fetchone()[0]:
                        return time.monotonic()
                    self.ending.wait(0.02)
        finally:
            monitor.close()
        return None

    def release(self):
        """Roll the transaction back and close the session (once)."""
        with self.lock:
            if self.released.is_set():
                return
            self.released.set()
            try:
                self.conn.rollback()
            finally:
                self.conn.close()

    def __exit__(self, *exc_info):
        self.ending.set()
        if self.releaser is not None:
            self.releaser.join()
        self.release()


class Reads:
    """Another application's reads while the block runs: `query` every 50 ms in its own session,
    for the whole block and at least `at_least` seconds; `waits` holds how long each one took."""

    def __init__(self, cluster, db, query, at_least=0.0):
        self.cluster, self.db, self.query, self.at_least = cluster, db, query, at_least
        self.waits = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.read)
        self.error = None

    def read(self):
        end = time.monotonic() + self.at_least
        try:
            conn = self.cluster.primary.connect(dbname=self.db)
            try:
                with conn.cursor() as cur:
                    while not self.done.is_set() or time.monotonic() < end:
                        started = time.monotonic()
                        cur.execute(self.query)
                        self.waits.append(time.monotonic() - started)
                        time.sleep(0.05)
            finally:
                conn.close()
        except Exception as error:  # reported by __exit__, in the test's thread
            self.error = error

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.thread.join()
        if self.error is not None and exc_info[0] is None:
            raise self.error


def at_once(*calls):
    """Start every call (e.g. a play through ansible-runner) in its own thread at the same
    moment; their return values, in order. An exception in one is raised here."""
    results = [None] * len(calls)
    errors = []
    start = threading.Barrier(len(calls))

    def run(index, call):
        try:
            start.wait()
            results[index] = call()
        except Exception as error:  # raised again below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
