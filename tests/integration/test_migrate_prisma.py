"""migrate with Prisma through Ansible against the real server: the real Prisma CLI
(6.19, JavaScript-engine mode, see tests/fixtures/migrations/README.md) and the native
path, each accepting what the other did; Prisma's lock; faults made real."""

import os
import subprocess
import time

import pytest

from tests.conftest import ROOT
from tests.harness.migration_tools import prisma_cli, prisma_environment, prisma_install
from tests.harness.migrations import LockHolder, at_once, fingerprint, history_rows, migrate
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "prisma")  # the `project` fixture copies it
NAMES = ["20260101000100_users_and_plans", "20260101000200_providers_and_patients", "20260101000300_appointments",
         "20260101000400_subscriptions"]


def url(pg, db):
    return "postgresql://pgops_app:%s@%s:%s/%s?sslmode=verify-full&sslrootcert=%s" % (
        pg["passwords"]["pgops_app"], pg["host"], pg["port"], db, pg["ca_cert"])


def cli_options():
    """The module options for the CLI path: the CLI and what JS-engine mode needs (not the URL: the module sets it)."""
    environment = prisma_environment("unused", inherit=False)
    environment.pop("DATABASE_URL")
    return dict(executable=os.path.join(prisma_install(), "node_modules", ".bin", "prisma"), environment=environment)


def cli(pg, db, project, *args):
    """The real Prisma CLI, run by hand as a developer would."""
    return subprocess.run(prisma_cli() + list(args), cwd=str(project), env=prisma_environment(url(pg, db)),
                          capture_output=True, text=True, timeout=120, check=False)


def rows(cluster, db):
    return history_rows(cluster, db, "_prisma_migrations", "migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL",
                        "started_at, migration_name")


def test_native_deploy_is_accepted_by_the_real_cli(cluster, pg, project, database):
    planned, dummy = migrate(pg, database, project_dir=str(project), check=True)
    assert not planned["failed"], planned.get("msg")
    assert [m["version"] for m in planned["planned"]] == NAMES and "CREATE TABLE" in planned["planned"][0]["sql"]
    result, dummy = migrate(pg, database, project_dir=str(project))
    assert not result["failed"], result.get("msg")
    assert result["tool"] == "prisma" and result["final"] == NAMES[-1] and len(result["applied"]) == 4
    status = cli(pg, database, project, "migrate", "status")
    assert status.returncode == 0 and "Database schema is up to date" in status.stdout, status.stdout + status.stderr
    deploy = cli(pg, database, project, "migrate", "deploy")
    assert deploy.returncode == 0 and "No pending migrations to apply" in deploy.stdout, deploy.stdout + deploy.stderr
    assert [r[0] for r in rows(cluster, database)] == NAMES


def test_cli_path_deploys_and_the_native_status_sees_it(cluster, pg, project, database):
    with command_lines_seen() as seen:
        result, run = migrate(pg, database, project_dir=str(project), verbosity=3, **cli_options())
    assert not result["failed"], result.get("msg")
    assert [m["version"] for m in result["applied"]] == NAMES and all(m["duration_s"] >= 0 for m in result["applied"])
    assert any(b"migrate\x00deploy" in c for c in seen)
    password = pg["passwords"]["pgops_app"].encode()
    assert not [c for c in seen if password in c]
    assert pg["passwords"]["pgops_app"] not in run.all_text
    status, dummy = migrate(pg, database, project_dir=str(project), state="status")
    assert status["current"] == NAMES[-1] and status["pending"] == [] and status["conflicts"] == []


def test_target_and_downgrade_with_down_sql_then_the_cli_applies_again(cluster, pg, project, database):
    up, dummy = migrate(pg, database, project_dir=str(project), state="target", target=NAMES[1])
    assert not up["failed"] and up["final"] == NAMES[1], up.get("msg")
    migrate(pg, database, project_dir=str(project))
    refused, dummy = migrate(pg, database, project_dir=str(project), state="target", target=NAMES[1])
    assert refused["failed"] and "set allow_downgrade" in refused["msg"]
    down, dummy = migrate(pg, database, project_dir=str(project), state="target", target=NAMES[1], allow_downgrade=True)
    assert not down["failed"], down.get("msg")
    assert [(m["version"], m["direction"]) for m in down["applied"]] == [(NAMES[3], "down"), (NAMES[2], "down")]
    assert cluster.primary.execute("SELECT to_regclass('appointments')", dbname=database) == [(None,)]
    again, dummy = migrate(pg, database, project_dir=str(project), **cli_options())
    assert not again["failed"], again.get("msg")
    assert [m["version"] for m in again["applied"]] == NAMES[2:]
    assert cluster.primary.execute("SELECT to_regclass('appointments') IS NOT NULL", dbname=database) == [(True,)]
    # Without down.sql the module cannot go below a migration: it says what to do instead.
    os.unlink(str(project / "prisma" / "migrations" / NAMES[3] / "down.sql"))
    no_down, dummy = migrate(pg, database, project_dir=str(project), state="target", target=NAMES[2], allow_downgrade=True)
    assert no_down["failed"] and "has no down.sql" in no_down["msg"] and "restore the pre-migration backup" in no_down["msg"]


def test_the_module_holds_prismas_own_lock(cluster, pg, project, database):
    with LockHolder.advisory(pg, database, "SELECT pg_advisory_lock(72707369)"):  # what the Prisma CLI holds while it migrates
        result, dummy = migrate(pg, database, project_dir=str(project), lock_wait="1s")
    assert result["failed"] and "Another migration of" in result["msg"]
    assert cluster.primary.execute("SELECT to_regclass('_prisma_migrations')", dbname=database) == [(None,)]


def test_a_migration_failing_half_way_changes_nothing(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target=NAMES[1])
    before = fingerprint(pg, database)
    broken = project / "prisma" / "migrations" / NAMES[2] / "migration.sql"
    broken.write_text(broken.read_text() + "\nALTER TABLE appointments ADD COLUMN broken nosuchtype;\n")
    result, dummy = migrate(pg, database, project_dir=str(project))
    assert result["failed"] and 'type "nosuchtype" does not exist' in result["msg"], result["msg"]
    assert "The database is at version %s" % NAMES[1] in result["msg"]
    assert fingerprint(pg, database) == before
    assert [r[0] for r in rows(cluster, database)] == NAMES[:2]


def test_failed_cli_migration_and_edited_migration_are_conflicts(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target=NAMES[1])
    edited = project / "prisma" / "migrations" / NAMES[0] / "migration.sql"
    original = edited.read_text()
    edited.write_text(original + "\n-- edited after it was applied\n")
    drift, dummy = migrate(pg, database, project_dir=str(project))
    assert drift["failed"] and "was edited after it was applied" in drift["msg"]
    assert [c["kind"] for c in drift["conflicts"]] == ["checksum"]
    edited.write_text(original)
    broken = project / "prisma" / "migrations" / NAMES[2] / "migration.sql"
    broken.write_text("CREATE TABLE appointments (id int);\nSELECT 1/0;\n")
    failed, dummy = migrate(pg, database, project_dir=str(project), **cli_options())
    assert failed["failed"] and "prisma migrate deploy failed" in failed["msg"], failed["msg"]
    status, dummy = migrate(pg, database, project_dir=str(project), state="status")
    assert [c["kind"] for c in status["conflicts"]] == ["failed"] and NAMES[2] in status["conflicts"][0]["message"]
    assert cluster.primary.execute("SELECT to_regclass('appointments')", dbname=database) == [(None,)]


def test_two_runs_at_once_apply_each_migration_once(cluster, pg, project, database):
    runs = at_once(lambda: migrate(pg, database, project_dir=str(project)), lambda: migrate(pg, database, project_dir=str(project)))
    results = [result for result, dummy in runs]
    assert all(not r["failed"] for r in results), [r.get("msg") for r in results]
    assert sorted(len(r["applied"]) for r in results) == [0, 4]
    assert [r[0] for r in rows(cluster, database)] == NAMES


def test_blocked_migration_retries_until_the_blocker_ends(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target=NAMES[2])
    # An application's write transaction: ROW EXCLUSIVE on users, which the foreign key of
    # subscriptions (SHARE ROW EXCLUSIVE on users) must wait for.
    with LockHolder.table(pg, database, "users", "ROW EXCLUSIVE", seconds=2.0, waited=1.0):
        started = time.monotonic()
        result, dummy = migrate(pg, database, project_dir=str(project), lock_timeout="400ms", lock_retries=8)
    assert not result["failed"], result.get("msg")
    assert result["retries"] and time.monotonic() - started >= 1.5
    assert result["final"] == NAMES[3]


def test_cli_path_honours_lock_timeout_and_retries(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target=NAMES[2])
    with LockHolder.table(pg, database, "users", "ROW EXCLUSIVE") as blocker:
        started = time.monotonic()
        failed, dummy = migrate(pg, database, project_dir=str(project), lock_timeout="500ms", lock_retries=0,
                                **cli_options())
        assert failed["failed"] and "lock timeout" in failed["msg"], failed["msg"]
        assert time.monotonic() - started < 30
        blocker.release_after(6.0, waited=1.0)  # the CLI itself takes ~2 s to start
        retried, dummy = migrate(pg, database, project_dir=str(project), lock_timeout="500ms", lock_retries=8,
                                 **cli_options())
    assert not retried["failed"], retried.get("msg")
    assert retried["retries"] and retried["final"] == NAMES[3]


def test_rehearse_with_the_real_cli_leaves_the_database_alone(cluster, pg, project, database):
    migrate(pg, database, project_dir=str(project), state="target", target=NAMES[1])
    before = fingerprint(pg, database)
    result, dummy = migrate(pg, database, project_dir=str(project), rehearse=True, user="pgops_admin", **cli_options())
    assert not result["failed"], result.get("msg")
    assert [m["version"] for m in result["rehearsal"]["applied"]] == NAMES[2:]
    assert fingerprint(pg, database) == before and [r[0] for r in rows(cluster, database)] == NAMES[:2]


@pytest.mark.parametrize("options, message", [
    (dict(EMPTY=True, tool="prisma"), "holds no prisma/schema.prisma or prisma/migrations"),
    (dict(executable="/nonexistent/prisma"), "Option executable: /nonexistent/prisma does not exist"),
    (dict(state="target", target="20990101000000_nothing"), "Option target: version 20990101000000_nothing is not a migration"),
])
def test_bad_input(cluster, pg, project, database, tmp_path, options, message):
    options = dict(options)
    options["project_dir"] = str(tmp_path) if options.pop("EMPTY", False) else str(project)
    result, run = migrate(pg, database, **options)
    assert result["failed"] and message in result["msg"], result.get("msg")
    assert "Traceback" not in run.all_text
    assert cluster.primary.execute("SELECT to_regclass('_prisma_migrations')", dbname=database) == [(None,)]
