"""pgbouncer (PAUSE / RESUME through the admin console) through Ansible, against a real
PgBouncer in front of the real test server: idempotence, honest check mode, clients that
wait and then run, the timeout path that resumes, and bad input."""

import threading
import time

import psycopg2
import pytest

from tests.harness.pgbouncer import ADMIN_PASSWORD, PgBouncer
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

DATABASES = ["pgb_pause", "pgb_timeout", "pgb_check"]


@pytest.fixture(scope="module")
def bouncer(cluster, pg):
    for name in DATABASES:
        cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        cluster.primary.execute("CREATE DATABASE %s OWNER pgops_app" % name)
    server = PgBouncer(pg, databases=DATABASES).start()
    try:
        yield server
    finally:
        server.stop()


def pgbouncer(bouncer, check=False, name="pgbouncer", **options):
    run = run_play([{"name": name, "pgops.runbook.pgbouncer": dict(bouncer.admin_vars(), **options)}], check=check)
    return run.result(name), run


def client_query(bouncer, db, sql="SELECT 1"):
    conn = psycopg2.connect(**bouncer.client_keywords(db))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def wait_until(predicate, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def waiting_clients(bouncer, db):
    return sum(int(p["cl_waiting"]) for p in bouncer.admin_rows("SHOW POOLS") if p["database"] == db)


def test_pause_then_resume_is_idempotent_and_clients_wait_in_between(bouncer):
    assert client_query(bouncer, "pgb_pause") == [(1,)]
    paused, dummy = pgbouncer(bouncer, command="pause", database="pgb_pause")
    assert not paused["failed"], paused.get("msg")
    assert paused["changed"] and paused["paused"] and paused["database"]["paused"] == 1
    assert bouncer.paused("pgb_pause")
    again, dummy = pgbouncer(bouncer, command="pause", database="pgb_pause")
    assert not again["failed"] and not again["changed"] and "already paused" in again["msg"]

    # A client's query now waits in PgBouncer instead of failing.
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(rows=client_query(bouncer, "pgb_pause", "SELECT 42")))
    thread.start()
    assert wait_until(lambda: waiting_clients(bouncer, "pgb_pause") >= 1), bouncer.admin_rows("SHOW POOLS")
    assert thread.is_alive() and "rows" not in outcome

    would, dummy = pgbouncer(bouncer, check=True, command="resume", database="pgb_pause")
    assert would["changed"] and "Would resume" in would["msg"] and bouncer.paused("pgb_pause")
    resumed, dummy = pgbouncer(bouncer, command="resume", database="pgb_pause")
    assert resumed["changed"] and not resumed["paused"] and not bouncer.paused("pgb_pause")
    thread.join(30)
    assert outcome.get("rows") == [(42,)]
    once_more, dummy = pgbouncer(bouncer, command="resume", database="pgb_pause")
    assert not once_more["changed"] and "is not paused" in once_more["msg"]
    shown, dummy = pgbouncer(bouncer, command="show", database="pgb_pause")
    assert not shown["changed"] and shown["database"]["name"] == "pgb_pause" and not shown["paused"]
    assert sorted(d["name"] for d in shown["databases"] if d["name"] != "pgbouncer") == sorted(DATABASES)


def test_check_mode_pauses_nothing(bouncer):
    would, run = pgbouncer(bouncer, check=True, command="pause", database="pgb_check")
    assert would["changed"] and "Would pause pgb_check" in would["msg"]
    assert not bouncer.paused("pgb_check")
    assert client_query(bouncer, "pgb_check") == [(1,)]


def test_pause_that_cannot_finish_in_time_resumes_and_fails(bouncer):
    # A client inside a transaction keeps its server connection (transaction pool mode): PAUSE cannot finish.
    holder = psycopg2.connect(**bouncer.client_keywords("pgb_timeout"))
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1")  # BEGIN is implicit: the transaction stays open
        result, run = pgbouncer(bouncer, command="pause", database="pgb_timeout", timeout=1)
        assert result["failed"]
        assert result["msg"] == ("Option timeout: PAUSE pgb_timeout did not finish within 1s, 1 server connection was "
                                 "still busy (in session pool mode a client keeps its server connection until it "
                                 "disconnects); the database was resumed, nothing is paused."), result["msg"]
        assert not result["paused"]
        assert not bouncer.paused("pgb_timeout")
        assert "Traceback" not in run.all_text and ADMIN_PASSWORD not in run.all_text
        # The holder finishes its transaction and others keep working: nothing was left paused.
        with holder.cursor() as cur:
            cur.execute("SELECT 2")
            assert cur.fetchall() == [(2,)]
        holder.commit()
        assert client_query(bouncer, "pgb_timeout") == [(1,)]
    finally:
        holder.close()


@pytest.mark.parametrize("options, message", [
    (dict(command="pause"), "Option database is required with command pause."),
    (dict(command="resume"), "Option database is required with command resume."),
    (dict(command="pause", database="pgbouncer"),
     "Option database: pgbouncer is PgBouncer's admin console, which cannot be paused."),
    (dict(command="pause", database="pgb_pause", timeout=0), "Option timeout must be more than 0 seconds, got 0.0."),
    (dict(command="pause", database="nosuchdb"),
     "Option database: PgBouncer has no database nosuchdb (it has: pgb_check, pgb_pause, pgb_timeout)."),
    (dict(command="pause", database="pgb_pause", login_db="postgres"),
     "Option login_db: PgBouncer's admin console is the database pgbouncer, got postgres."),
    (dict(command="explode", database="pgb_pause"), "value of command must be one of: pause, resume, show, got: explode"),
])
def test_bad_input_is_one_sentence_and_pauses_nothing(bouncer, options, message):
    result, run = pgbouncer(bouncer, **options)
    assert result["failed"] and message in result["msg"], result["msg"]
    assert "Traceback" not in run.all_text
    assert not any(int(row["paused"]) for row in bouncer.admin_rows("SHOW DATABASES"))


def test_wrong_admin_password_is_one_sentence_without_the_password(bouncer):
    result, run = pgbouncer(bouncer, command="pause", database="pgb_pause", login_password="not-the-Secr3t")
    assert result["failed"] and "pgb_admin@127.0.0.1:%d/pgbouncer" % bouncer.port in result["msg"], result["msg"]
    assert "authentication failed" in result["msg"].lower() and "Traceback" not in run.all_text
    assert "not-the-Secr3t" not in run.all_text
    assert not bouncer.paused("pgb_pause")
