"""migrate with Alembic projects through Ansible against the real server: the healthcare
fixture project run with the application's Python (a virtualenv with Alembic), status,
plan, target and downgrade, a revision failing half way, two runs at once, a revision
blocked behind a long transaction, conflicts (several heads, a revision the project no
longer has), bad input, and no credential on a command line or in the output."""

import os
import sys
import time
from urllib.parse import quote

import pytest

from tests.conftest import ROOT
from tests.harness import migrations
from tests.harness.migration_tools import alembic_python
from tests.harness.migrations import LockHolder, Reads, at_once, fingerprint, history_rows, tables
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "alembic")  # the `project` fixture copies it
TABLES = ["appointments", "patients", "plans", "providers", "subscriptions", "users"]

REVISION = '''"""{doc}"""

from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


@pytest.fixture(scope="module")
def python():
    """The application's Python: a virtualenv with Alembic, SQLAlchemy and psycopg2."""
    return alembic_python()


def add_revision(project, revision, down, upgrade, downgrade="    pass", doc="a test revision", name=None):
    path = project / "migrations" / "versions" / ("%s.py" % (name or revision))
    path.write_text(REVISION.format(doc=doc, revision=revision, down=down, upgrade=upgrade, downgrade=downgrade))
    return path


def migrate(pg, db, python, **options):
    """The migrate module run with the application's Python (unless the test names another executable)."""
    options.setdefault("executable", python)
    return migrations.migrate(pg, db, **options)


def recorded(cluster, db):
    """What alembic_version holds (None: no such table)."""
    rows = history_rows(cluster, db, "alembic_version", "version_num", "version_num")
    return None if rows is None else sorted(r[0] for r in rows)


def test_plan_apply_status_without_credentials_on_command_lines(cluster, pg, python, project, database):
    planned, dummy = migrate(pg, database, python, project_dir=str(project), check=True)
    assert not planned["failed"], planned.get("msg")
    assert planned["tool"] == "alembic" and planned["changed"] and planned["current"] is None
    assert [(m["version"], m["direction"]) for m in planned["planned"]] == [("0001", "up"), ("0002", "up"), ("0003", "up"),
                                                                            ("0004", "up")]
    assert "CREATE TABLE users" in planned["planned"][0]["sql"] and "CREATE VIEW upcoming_appointments" in planned["planned"][2]["sql"]
    assert "INSERT INTO alembic_version" in planned["planned"][0]["sql"]
    assert "UPDATE alembic_version SET version_num='0004'" in planned["planned"][3]["sql"]
    assert tables(cluster, database) == [] and recorded(cluster, database) is None  # check mode changed nothing

    password = pg["passwords"]["pgops_app"]
    with command_lines_seen() as seen:
        result, run = migrate(pg, database, python, project_dir=str(project), diff=True, verbosity=3)
    assert not result["failed"], result.get("msg")
    assert result["current"] is None and result["final"] == "0004" and result["changed"]
    assert [(m["version"], m["direction"]) for m in result["applied"]] == [("0001", "up"), ("0002", "up"), ("0003", "up"),
                                                                           ("0004", "up")]
    assert all(m["duration_s"] > 0 for m in result["applied"])
    assert result["msg"] == "Applied 4 migrations with alembic: version None -> 0004."
    assert "table public.subscriptions" in result["diff"]["after"]
    assert tables(cluster, database) == TABLES and recorded(cluster, database) == ["0004"]
    # The tool ran (its helper and `-m alembic upgrade`) with the URL in the environment only.
    assert any(b"alembic\0-c\0" in line and b"upgrade\x000003" in line for line in seen), "alembic never seen running"
    for secret in (password, quote(password, safe=""), "postgresql://pgops_app"):
        assert not any(secret.encode() in line for line in seen), "%s on a command line" % secret
        assert secret not in run.all_text, "%s in the output" % secret

    status, dummy = migrate(pg, database, python, project_dir=str(project), state="status")
    assert not status["failed"] and not status["changed"]
    assert status["current"] == "0004" and status["pending"] == [] and status["conflicts"] == []
    assert status["msg"] == "alembic: at version 0004, 0 pending."
    again, dummy = migrate(pg, database, python, project_dir=str(project))
    assert not again["failed"] and not again["changed"] and again["applied"] == []


def test_target_downgrade_and_back(cluster, pg, python, project, database):
    result, dummy = migrate(pg, database, python, project_dir=str(project), state="target", target="0002")
    assert not result["failed"] and result["final"] == "0002", result.get("msg")
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]
    status, dummy = migrate(pg, database, python, project_dir=str(project), state="status")
    assert status["current"] == "0002" and [m["version"] for m in status["pending"]] == ["0003", "0004"]
    assert "CREATE TABLE appointments" in status["pending"][0]["sql"]
    up, dummy = migrate(pg, database, python, project_dir=str(project))
    assert up["final"] == "0004" and [m["version"] for m in up["applied"]] == ["0003", "0004"]
    refused, dummy = migrate(pg, database, python, project_dir=str(project), state="target", target="0002")
    assert refused["failed"] and "set allow_downgrade" in refused["msg"], refused["msg"]
    plan, dummy = migrate(pg, database, python, project_dir=str(project), state="target", target="0002",
                          allow_downgrade=True, check=True)
    assert [(m["version"], m["direction"]) for m in plan["planned"]] == [("0004", "down"), ("0003", "down")]
    assert "DROP TABLE subscriptions" in plan["planned"][0]["sql"] and "DROP VIEW upcoming_appointments" in plan["planned"][1]["sql"]
    assert tables(cluster, database) == TABLES
    down, dummy = migrate(pg, database, python, project_dir=str(project), state="target", target="0002", allow_downgrade=True)
    assert not down["failed"], down.get("msg")
    assert [(m["version"], m["direction"]) for m in down["applied"]] == [("0004", "down"), ("0003", "down")]
    assert down["final"] == "0002" and recorded(cluster, database) == ["0002"]
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]
    again, dummy = migrate(pg, database, python, project_dir=str(project))
    assert [m["version"] for m in again["applied"]] == ["0003", "0004"]
    assert cluster.primary.execute("SELECT count(*) FROM upcoming_appointments", dbname=database) == [(0,)]


def test_a_revision_failing_half_way_leaves_the_schema_as_it_was(cluster, pg, python, project, database):
    migrate(pg, database, python, project_dir=str(project))
    before = fingerprint(pg, database)
    add_revision(project, "0005", "0004", "    op.create_table('notes', sa.Column('id', sa.BigInteger(), primary_key=True))\n"
                 "    op.add_column('patients', sa.Column('allergies', sa.Text()))\n"
                 "    op.execute('ALTER TABLE appointments ADD COLUMN broken nosuchtype')",
                 name="0005_notes")
    result, run = migrate(pg, database, python, project_dir=str(project))
    assert result["failed"], result
    assert result["msg"].startswith("Migration 0005 (0005_notes.py) failed: alembic upgrade 0005 exited with status 1: "), result["msg"]
    assert 'type "nosuchtype" does not exist (ProgrammingError at 0005_notes.py line 15)' in result["msg"]
    assert "statement: ALTER TABLE appointments ADD COLUMN broken nosuchtype" in result["msg"]
    assert result["msg"].endswith("The database is at version 0004 (the migration was rolled back whole).")
    assert "Traceback" not in result["msg"] and "\n" not in result["msg"]
    assert fingerprint(pg, database) == before
    assert recorded(cluster, database) == ["0004"] and "notes" not in tables(cluster, database)


def test_two_runs_at_once_apply_each_revision_once(cluster, pg, python, project, database):
    runs = at_once(lambda: migrate(pg, database, python, project_dir=str(project)),
                   lambda: migrate(pg, database, python, project_dir=str(project)))
    results = [result for result, dummy in runs]
    assert all(not r["failed"] for r in results), [r.get("msg") for r in results]
    assert sorted(len(r["applied"]) for r in results) == [0, 4]
    assert recorded(cluster, database) == ["0004"] and tables(cluster, database) == TABLES


def test_second_run_gives_up_after_lock_wait(cluster, pg, python, project, database):
    lock = "SELECT pg_advisory_lock(%s::int, hashtext(%s))"
    with LockHolder.advisory(pg, database, lock, (0x70676F6D, "alembic|" + database)):
        result, dummy = migrate(pg, database, python, project_dir=str(project), lock_wait="1s")
    assert result["failed"] and "Another migration of" in result["msg"] and "lock_wait" in result["msg"]
    assert tables(cluster, database) == [] and recorded(cluster, database) is None


def alter_patients_project(pg, database, python, project):
    """The database at 0002; the project's next revision (0003) alters patients."""
    migrate(pg, database, python, project_dir=str(project), state="target", target="0002")
    for name in ("0003_appointments.py", "0004_subscriptions.py"):
        (project / "migrations" / "versions" / name).unlink()
    add_revision(project, "0003", "0002", "    op.add_column('patients', sa.Column('allergies', sa.Text()))",
                 "    op.drop_column('patients', 'allergies')", name="0003_allergies")


def test_revision_behind_a_long_transaction_retries_then_succeeds(cluster, pg, python, project, database):
    alter_patients_project(pg, database, python, project)
    with LockHolder.table(pg, database, "patients", seconds=2.5, waited=1.0):  # a long transaction, as an application's
        started = time.monotonic()
        result, dummy = migrate(pg, database, python, project_dir=str(project), lock_timeout="500ms", lock_retries=8)
    assert not result["failed"], result.get("msg")
    assert result["final"] == "0003" and result["retries"] and result["retries"][0]["migration"] == "0003_allergies.py"
    assert time.monotonic() - started >= 2.0
    assert cluster.primary.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'allergies'",
                                   dbname=database) == [(1,)]


def test_revision_behind_a_long_transaction_fails_cleanly_without_stalling_traffic(cluster, pg, python, project, database):
    alter_patients_project(pg, database, python, project)
    # Another application's reads while the revision waits: none may wait longer than lock_timeout.
    with LockHolder.table(pg, database, "patients"), \
            Reads(cluster, database, "SELECT count(*) FROM patients", at_least=4) as reads:
        result, dummy = migrate(pg, database, python, project_dir=str(project), lock_timeout="500ms", lock_retries=1)
    assert result["failed"] and result["msg"].startswith("Migration 0003 (0003_allergies.py) failed: "), result["msg"]
    assert "canceling statement due to lock timeout" in result["msg"]
    assert "it waited lock_timeout 0.5s for a lock another session holds, 2 times" in result["msg"]
    assert "The database is at version 0002" in result["msg"]
    assert len(result["retries"]) == 1
    assert max(reads.waits) < 0.5 + 0.5, max(reads.waits)
    assert recorded(cluster, database) == ["0002"]


def test_several_heads_are_refused(cluster, pg, python, project, database):
    migrate(pg, database, python, project_dir=str(project), state="target", target="0003")
    for name in ("a", "b"):
        add_revision(project, "0005" + name, "0004", "    op.create_table('%s', sa.Column('id', sa.Integer(), primary_key=True))" % name,
                     "    op.drop_table('%s')" % name)
    result, dummy = migrate(pg, database, python, project_dir=str(project))
    assert result["failed"] and result["msg"].startswith("Refusing to migrate: The project has 2 heads ("), result["msg"]
    assert "merge them (alembic merge heads)" in result["msg"]
    assert [c["kind"] for c in result["conflicts"]] == ["multiple_heads"]
    assert recorded(cluster, database) == ["0003"] and "subscriptions" not in tables(cluster, database)
    status, dummy = migrate(pg, database, python, project_dir=str(project), state="status")
    assert not status["failed"] and status["conflicts"][0]["kind"] == "multiple_heads"
    # Once merged, the branches apply one revision at a time, then the merge.
    add_revision(project, "0006", ("0005a", "0005b"), "    pass")
    merged, dummy = migrate(pg, database, python, project_dir=str(project))
    assert not merged["failed"], merged.get("msg")
    assert [m["version"] for m in merged["applied"]][0] == "0004" and len(merged["applied"]) == 4
    assert recorded(cluster, database) == ["0006"]
    down, dummy = migrate(pg, database, python, project_dir=str(project), state="target", target="0004", allow_downgrade=True)
    assert not down["failed"], down.get("msg")
    assert [m["version"] for m in down["applied"]][0] == "0006" and len(down["applied"]) == 3
    assert recorded(cluster, database) == ["0004"] and tables(cluster, database) == TABLES


def test_a_revision_the_project_no_longer_has_is_refused(cluster, pg, python, project, database):
    migrate(pg, database, python, project_dir=str(project))
    (project / "migrations" / "versions" / "0004_subscriptions.py").unlink()
    result, dummy = migrate(pg, database, python, project_dir=str(project))
    assert result["failed"], result
    assert result["msg"] == ("Refusing to migrate: Revision 0004 is recorded in the database (alembic_version) but the "
                             "project no longer has it.")
    assert [(c["kind"], c["version"]) for c in result["conflicts"]] == [("missing", "0004")]
    status, dummy = migrate(pg, database, python, project_dir=str(project), state="status")
    assert not status["failed"] and status["current"] == "0004" and status["conflicts"][0]["kind"] == "missing"
    assert recorded(cluster, database) == ["0004"] and tables(cluster, database) == TABLES


@pytest.mark.parametrize("case, message", [
    ("no_ini", "Option project_dir: %(project_dir)s holds no alembic.ini"),
    ("no_target", "Option target: version 0009 is not a migration of the project (known: 0001, 0002, 0003, 0004)."),
    ("syntax_error", "Alembic cannot load the migrations of %(project_dir)s: SyntaxError in "
                     "migrations/versions/0005_broken.py, line 13: "),
    ("no_executable", "Option executable: /nonexistent/bin/python does not exist or cannot be run."),
    ("no_alembic", "cannot import Alembic (ModuleNotFoundError: No module named 'alembic')"),
    ("migrations_dir", "Option migrations_dir does not apply to alembic"),
])
def test_bad_input_is_one_sentence_and_applies_nothing(cluster, pg, python, project, database, tmp_path, case, message):
    options = dict(project_dir=str(project))
    if case == "no_ini":
        options.update(project_dir=str(tmp_path / "empty"), tool="alembic")
        os.makedirs(options["project_dir"])
    elif case == "no_target":
        options.update(state="target", target="0009")
    elif case == "syntax_error":
        add_revision(project, "0005", "0004", "    op.execute('SELECT 1'", name="0005_broken")
    elif case == "no_executable":
        options.update(executable="/nonexistent/bin/python")
    elif case == "no_alembic":
        options.update(executable=sys.executable)  # the test venv has no Alembic
    else:
        options.update(migrations_dir=str(project / "migrations"))
    result, run = migrate(pg, database, python, **options)
    assert result["failed"] and (message % options) in result["msg"], result.get("msg")
    assert "Traceback" not in result["msg"] and "\n" not in result["msg"]
    assert "Traceback" not in run.stdout
    assert tables(cluster, database) == [] and recorded(cluster, database) is None
