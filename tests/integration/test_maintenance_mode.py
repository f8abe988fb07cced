"""The migrate role's maintenance mode through ansible-runner against the real server: a
command, an HTTP call (a real local HTTP server recording the calls) and a real PgBouncer
whose clients keep querying during the migration; maintenance mode is always left, also
after a failed migration, and the time in it is recorded."""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.migrations import copy_project, tables
from tests.harness.network import free_port
from tests.harness.pgbouncer import ADMIN_PASSWORD, PgBouncer
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "sql")
TABLES = ["appointments", "patients", "plans", "providers", "subscriptions", "users"]
RECORDER = "import sys, time; open(sys.argv[1], 'a').write('%s %.6f\\n' % (sys.argv[2], time.time()))"


@pytest.fixture
def project(tmp_path):
    return copy_project(FIXTURE, tmp_path)


def migrate_role(pg, database, project, **role_vars):
    role_vars.update(migrate_project_dir=str(project),
                     migrate_connection=connection_vars(pg, user="pgops_app", db=database))
    task = {"name": "migrate role", "ansible.builtin.include_role": {"name": "pgops.runbook.migrate"}, "vars": role_vars}
    return run_play([task])


def break_migration(project, version="V3__appointments.sql"):
    path = project / version
    path.write_text(path.read_text() + "\nALTER TABLE appointments ADD COLUMN broken nosuchtype;\n")


def applied_times(cluster, database):
    rows = cluster.primary.execute("SELECT extract(epoch FROM applied_at) FROM pgops_schema_history "
                                   "WHERE success ORDER BY installed_rank", dbname=database)
    return [float(r[0]) for r in rows]


def recorded(path):
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [(line.split()[0], float(line.split()[1])) for line in handle if line.strip()]


# --- command -----------------------------------------------------------------------------------------

def command_vars(marker, on_exit=0, off_exit=0):
    def argv(word, code):
        return [sys.executable, "-c", RECORDER + "; sys.exit(%d)" % code, str(marker), word]
    return dict(migrate_maintenance_method="command", migrate_maintenance_on_command=argv("on", on_exit),
                migrate_maintenance_off_command=argv("off", off_exit))


def test_command_maintenance_mode_surrounds_the_migrations_and_is_recorded(cluster, pg, project, database, tmp_path):
    marker = tmp_path / "maintenance.log"
    run = migrate_role(pg, database, project, **command_vars(marker))
    assert run.status == "successful", run.stdout[-3000:]
    calls = recorded(marker)
    assert [word for word, dummy in calls] == ["on", "off"]
    applied = applied_times(cluster, database)
    assert calls[0][1] <= applied[0] and applied[-1] <= calls[1][1]  # every migration ran in maintenance mode
    report = run.stats["migrate_report"]
    assert report["failed"] is False and report["final"] == "4"
    maintenance = report["maintenance"]
    assert maintenance["method"] == "command" and maintenance["left"] is True
    assert maintenance["started"].endswith("Z") and maintenance["ended"] > maintenance["started"]
    assert 0 < maintenance["seconds"] and maintenance["seconds"] >= calls[1][1] - calls[0][1] - 1
    # Nothing pending: a second run does not take the application down.
    again = migrate_role(pg, database, project, **command_vars(marker))
    assert again.status == "successful" and len(recorded(marker)) == 2
    assert again.stats["migrate_report"]["maintenance"]["started"] is None


def test_maintenance_mode_is_left_after_a_failed_migration(cluster, pg, project, database, tmp_path):
    marker = tmp_path / "maintenance.log"
    break_migration(project)
    run = migrate_role(pg, database, project, **command_vars(marker))
    assert run.status == "failed"
    assert [word for word, dummy in recorded(marker)] == ["on", "off"]
    report = run.stats["migrate_report"]
    assert report["failed"] is True and report["current"] is None and report["final"] == "2"
    assert [m["version"] for m in report["applied"]] == ["1", "2"]
    assert report["maintenance"]["left"] is True and report["maintenance"]["seconds"] > 0
    assert "Migration 3 (V3__appointments.sql) failed" in run.stdout
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]


def test_a_failing_on_command_applies_nothing_and_still_switches_off(cluster, pg, project, database, tmp_path):
    marker = tmp_path / "maintenance.log"
    run = migrate_role(pg, database, project, **command_vars(marker, on_exit=3))
    assert run.status == "failed"
    assert "The command to enter maintenance mode (%s) failed with exit status 3" % sys.executable in run.stdout
    assert [word for word, dummy in recorded(marker)] == ["on", "off"]
    assert tables(cluster, database) == []


def test_a_failing_off_command_fails_the_run_loudly(cluster, pg, project, database, tmp_path):
    marker = tmp_path / "maintenance.log"
    run = migrate_role(pg, database, project, **command_vars(marker, off_exit=4))
    assert run.status == "failed"
    assert "Maintenance mode is still on (command)" in run.stdout
    assert "The command to leave maintenance mode (%s) failed with exit status 4" % sys.executable in run.stdout
    assert tables(cluster, database) == TABLES  # the migrations themselves succeeded
    report = run.stats["migrate_report"]
    assert report["failed"] is False and report["maintenance"]["left"] is False


def test_bad_maintenance_settings_are_refused_before_anything_runs(cluster, pg, project, database):
    run = migrate_role(pg, database, project, migrate_maintenance_method="command",
                       migrate_maintenance_on_command="/usr/bin/app-maintenance on")
    assert run.status == "failed" and "each a list of arguments (run without a shell)" in run.stdout
    assert tables(cluster, database) == []
    run = migrate_role(pg, database, project, migrate_maintenance_method="pgbouncer",
                       migrate_maintenance_pgbouncer=dict(login_host=pg["host"], login_port=pg["port"]))
    assert run.status == "failed" and "must reach PostgreSQL directly, not through the PgBouncer" in run.stdout
    assert tables(cluster, database) == []


# --- http ---------------------------------------------------------------------------------------------

class Recorder(BaseHTTPRequestHandler):
    """Records every call; /fail answers 500."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server.calls.append(dict(method="POST", path=self.path, body=body, time=time.time(),
                                      authorization=self.headers.get("Authorization")))
        status = 500 if self.path.startswith("/fail") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": %s}' % (b"false" if status == 500 else b"true"))

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Recorder)
    server.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


TOKEN = "Bearer mm-t0ken-" + "x" * 12


def http_vars(server, off_path="/maintenance/off"):
    base = "http://127.0.0.1:%d" % server.server_address[1]
    return dict(migrate_maintenance_method="http",
                migrate_maintenance_on_request=dict(url=base + "/maintenance/on", body={"reason": "migration"},
                                                    headers={"Authorization": TOKEN}),
                migrate_maintenance_off_request=dict(url=base + off_path, method="POST", headers={"Authorization": TOKEN},
                                                     status=200))


def test_http_maintenance_mode_calls_on_then_off(cluster, pg, project, database, http_server):
    run = migrate_role(pg, database, project, **http_vars(http_server))
    assert run.status == "successful", run.stdout[-3000:]
    calls = http_server.calls
    assert [c["path"] for c in calls] == ["/maintenance/on", "/maintenance/off"]
    assert json.loads(calls[0]["body"]) == {"reason": "migration"}
    assert all(c["authorization"] == TOKEN for c in calls)
    applied = applied_times(cluster, database)
    assert calls[0]["time"] <= applied[0] and applied[-1] <= calls[1]["time"]
    assert run.stats["migrate_report"]["maintenance"]["method"] == "http"
    assert TOKEN not in run.all_text


def test_http_off_call_failing_after_a_failed_migration_is_reported_without_the_token(
        cluster, pg, project, database, http_server):
    break_migration(project)
    run = migrate_role(pg, database, project, **http_vars(http_server, off_path="/fail/off?token=abc"))
    assert run.status == "failed"
    assert [c["path"] for c in http_server.calls] == ["/maintenance/on", "/fail/off?token=abc"]
    port = http_server.server_address[1]
    assert "The request to leave maintenance mode (POST http://127.0.0.1:%d/fail/off) answered 500" % port in run.stdout
    assert "The migrations had failed too: Apply the migrations failed: Migration 3" in run.stdout
    assert TOKEN not in run.all_text and "token=abc" not in run.stdout


# --- pgbouncer ------------------------------------------------------------------------------------------

class BouncerClient:
    """An application going through PgBouncer: `SELECT` in a loop (a new transaction each time,
    one connection kept), recording when each query started and how long it took, and any error."""

    def __init__(self, bouncer, database):
        self.bouncer, self.database = bouncer, database
        self.latencies = []
        self.errors = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop)

    def loop(self):
        try:
            conn = psycopg2.connect(**self.bouncer.client_keywords(self.database))
            conn.autocommit = True
        except psycopg2.Error as exc:
            self.errors.append(str(exc))
            return
        try:
            while not self.done.is_set():
                started = time.monotonic()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT count(*) FROM pg_class")
                        cur.fetchall()
                except psycopg2.Error as exc:
                    self.errors.append(str(exc))
                    return
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.02)
        finally:
            conn.close()

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.latencies and not self.errors and time.time() < deadline:
            time.sleep(0.05)
        assert self.latencies, "the client never got an answer through PgBouncer: %s" % self.errors
        return self

    def __exit__(self, *exc_info):
        time.sleep(0.3)  # a few queries after the run
        self.done.set()
        self.thread.join(30)


@pytest.fixture
def bouncer(pg):
    server = PgBouncer(pg, pool_mode="transaction").start()
    try:
        yield server
    finally:
        server.stop()


def slow_migration(project, seconds, fail=False):
    """V5: a migration that holds the database for `seconds` (and then fails, with fail)."""
    sql = "SELECT pg_sleep(%s);\nCREATE TABLE audit_log (id bigint PRIMARY KEY);\n" % seconds
    if fail:
        sql += "ALTER TABLE audit_log ADD COLUMN broken nosuchtype;\n"
    (project / "V5__audit_log.sql").write_text(sql)


def pgbouncer_vars(bouncer, database):
    return dict(migrate_maintenance_method="pgbouncer",
                migrate_maintenance_pgbouncer=bouncer.admin_vars(),
                migrate_maintenance_pgbouncer_database=database,
                migrate_maintenance_pause_timeout=10)


def test_pgbouncer_clients_wait_during_the_migration_and_none_fails(cluster, pg, project, database, bouncer):
    slow_migration(project, 2)
    with BouncerClient(bouncer, database) as client:
        run = migrate_role(pg, database, project, **pgbouncer_vars(bouncer, database))
    assert run.status == "successful", run.stdout[-3000:]
    assert client.errors == []
    report = run.stats["migrate_report"]
    slow = [m for m in report["applied"] if m["version"] == "5"][0]
    assert slow["duration_s"] >= 2
    # The client's queries waited through the migration instead of failing.
    assert max(client.latencies) >= slow["duration_s"], sorted(client.latencies)[-5:]
    assert report["maintenance"]["method"] == "pgbouncer" and report["maintenance"]["seconds"] >= slow["duration_s"]
    assert not bouncer.paused(database)
    assert ADMIN_PASSWORD not in run.all_text and pg["passwords"]["pgops_app"] not in run.all_text


def test_pgbouncer_is_resumed_after_a_failed_migration(cluster, pg, project, database, bouncer):
    slow_migration(project, 1, fail=True)
    with BouncerClient(bouncer, database) as client:
        run = migrate_role(pg, database, project, **pgbouncer_vars(bouncer, database))
    assert run.status == "failed"
    assert "Migration 5 (V5__audit_log.sql) failed" in run.stdout
    assert not bouncer.paused(database)
    assert client.errors == []
    assert max(client.latencies) >= 1
    assert run.stats["migrate_report"]["maintenance"]["left"] is True
