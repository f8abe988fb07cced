"""pgops.runbook.database through Ansible against the real server: the application role and
database created once and left alone afterwards, check mode and --diff, password rotation
(compared with the stored SCRAM verifier, never sent or shown in clear), bad input."""

import psycopg2
import pytest
from psycopg2 import sql

from tests.conftest import connection_vars
from tests.harness.migrations import database_name
from tests.harness.playbook import run_play
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration


@pytest.fixture
def names(cluster, request):
    """(database, role) names for the test; both dropped afterwards."""
    db = database_name(request, prefix="dbmod")
    role = (db[:55] + "_app")
    yield db, role
    conn = cluster.primary.connect()
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    conn.close()


def admin(pg):
    opts = connection_vars(pg)
    opts.pop("login_db")  # the module connects to postgres: the database may not exist yet
    return opts


def provision(pg, check=False, diff=False, verbosity=0, **options):
    run = run_play([{"name": "database", "pgops.runbook.database": dict(admin(pg), **options)}],
                   check=check, diff=diff, verbosity=verbosity)
    return run.result("database"), run


def can_log_in(pg, db, role, password):
    try:
        psycopg2.connect(host=pg["host"], port=pg["port"], dbname=db, user=role, password=password,
                         sslmode="require").close()
        return True
    except psycopg2.OperationalError as exc:
        assert "password authentication failed" in str(exc)
        return False


def role_facts(cluster, role):
    rows = cluster.primary.execute("SELECT rolcanlogin, rolconnlimit, rolpassword FROM pg_authid WHERE rolname = %s", (role,))
    return rows[0] if rows else None


def db_facts(cluster, db):
    rows = cluster.primary.execute("SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database "
                                   "WHERE datname = %s", (db,))
    return rows[0] if rows else None


def test_creates_role_and_database_once_and_never_shows_the_password(cluster, pg, names):
    db, role = names
    password = "Rx-" + db[-6:] + "-secret-Pa55"
    options = dict(name=db, role=role, role_password=password, role_connection_limit=20, extensions=["pgcrypto"])
    planned, dummy = provision(pg, check=True, diff=True, **options)
    assert not planned["failed"] and planned["changed"], planned.get("msg")
    assert planned["actions"] == ["create role %s (LOGIN, CONNECTION LIMIT 20, with a password)" % role,
                                  "create database %s (owner %s, UTF8, template template0)" % (db, role),
                                  "create extension pgcrypto in database %s" % db]
    assert "database: (none)" in planned["diff"]["before"] and "database %s: owner %s" % (db, role) in planned["diff"]["after"]
    assert role_facts(cluster, role) is None and db_facts(cluster, db) is None  # check mode changed nothing

    with command_lines_seen() as seen:
        created, run = provision(pg, diff=True, verbosity=3, **options)
    assert not created["failed"] and created["changed"], created.get("msg")
    assert created["role"]["created"] and created["database"]["created"] and created["extensions"] == ["pgcrypto"]
    login, limit, verifier = role_facts(cluster, role)
    assert login and limit == 20 and verifier.startswith("SCRAM-SHA-256$")
    assert db_facts(cluster, db) == (role, "UTF8")
    assert cluster.primary.execute("SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'", dbname=db)
    assert can_log_in(pg, db, role, password)
    for secret in (password, verifier, pg["passwords"]["pgops_admin"]):
        assert secret not in run.all_text
        assert not any(secret.encode() in line for line in seen)

    again, run = provision(pg, diff=True, **options)
    assert not again["failed"] and not again["changed"] and again["actions"] == [], again.get("msg")
    assert role_facts(cluster, role)[2] == verifier  # not even re-salted


def test_password_rotation_and_on_create(cluster, pg, names):
    db, role = names
    provision(pg, name=db, role=role, role_password="first-Pa55word")
    kept, dummy = provision(pg, name=db, role=role, role_password="second-Pa55word", update_password="on_create")
    assert not kept["changed"] and can_log_in(pg, db, role, "first-Pa55word")
    rotated, run = provision(pg, name=db, role=role, role_password="second-Pa55word", diff=True)
    assert rotated["changed"] and rotated["actions"] == ["set a new password for role %s" % role]
    assert rotated["role"]["password_changed"] and "password changed" in rotated["diff"]["after"]
    assert can_log_in(pg, db, role, "second-Pa55word") and not can_log_in(pg, db, role, "first-Pa55word")
    assert "second-Pa55word" not in run.all_text
    # SASLprep: a non-ASCII password compares equal to the verifier libpq made of it.
    provision(pg, name=db, role=role, role_password="Päss\u00a0wörd-\u2163")
    same, dummy = provision(pg, name=db, role=role, role_password="Päss\u00a0wörd-\u2163")
    assert not same["changed"] and can_log_in(pg, db, role, "Päss\u00a0wörd-\u2163")


def test_existing_role_and_database_are_brought_to_the_settings_and_nothing_is_dropped(cluster, pg, names):
    db, role = names
    cluster.primary.execute(sql.SQL("CREATE ROLE {} NOLOGIN CONNECTION LIMIT 3").format(sql.Identifier(role)))
    cluster.primary.execute(sql.SQL("CREATE DATABASE {} OWNER pgops_app").format(sql.Identifier(db)))
    cluster.primary.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)", dbname=db)
    result, dummy = provision(pg, name=db, role=role)
    assert result["changed"] and result["actions"] == [
        "allow role %s to log in" % role, "set the connection limit of role %s to -1 (was 3)" % role,
        "make %s the owner of database %s (was pgops_app)" % (role, db)]
    assert role_facts(cluster, role)[:2] == (True, -1) and db_facts(cluster, db)[0] == role
    assert cluster.primary.execute("SELECT count(*) FROM kept", dbname=db) == [(1,)]


@pytest.mark.parametrize("options, message", [
    (dict(role_password="x", role=None), "Option role_password needs option role"),
    (dict(role_connection_limit=-2), "Option role_connection_limit must be -1 (no limit) or more, got -2."),
    (dict(encoding="NO_SUCH_ENCODING"), "Option encoding: 'NO_SUCH_ENCODING' is not an encoding PostgreSQL knows"),
    (dict(template="no_such_template"), "Option template: database 'no_such_template' does not exist."),
    (dict(extensions=["no_such_extension"]), "Option extensions: no_such_extension is not available on the server"),
    (dict(owner="no_such_owner"), "Option owner: role 'no_such_owner' does not exist"),
    (dict(name="x" * 64), "Option name: "),
    (dict(EXISTING=True, encoding="LATIN1"), "Option encoding: database %s exists with encoding UTF8, not LATIN1"),
])
def test_bad_input_is_one_sentence_and_changes_nothing(cluster, pg, names, options, message):
    db, role = names
    options = dict(options)
    if options.pop("EXISTING", False):
        cluster.primary.execute(sql.SQL("CREATE DATABASE {} OWNER pgops_app").format(sql.Identifier(db)))
    request = dict(name=db, role=role, role_password="bad-input-Pa55")
    request.update(options)
    request = dict((k, v) for k, v in request.items() if v is not None)
    result, run = provision(pg, **request)
    assert result["failed"] and (message % db if "%s" in message else message) in result["msg"], result.get("msg")
    assert "Traceback" not in run.all_text and "bad-input-Pa55" not in run.all_text
    assert role_facts(cluster, role) is None
    if "exists with encoding" not in message:
        assert db_facts(cluster, db) is None
