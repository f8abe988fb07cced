"""migrate with Django migrations through Ansible against the real server: the healthcare
fixture project run with its own manage.py in the Django virtualenv (the `executable`
option), status, check-mode plan with sqlmigrate's SQL, target and downgrade, several
apps, a migration failing half way, two runs at once, a migration blocked behind a long
transaction, conflicting leaves and missing migrations, bad input, and no secret on any
command line or in -vvv output."""

import os
import textwrap
import time

import pytest

from tests.conftest import ROOT
from tests.harness.migration_tools import django_python
from tests.harness.migrations import LockHolder, Reads, at_once, fingerprint, history_rows, migrate, tables
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "django")  # the `project` fixture copies it
TABLES = ["appointments", "patients", "plans", "providers", "subscriptions", "users"]
V1, V2, V3, V4 = ("clinic.0001_users_and_plans", "clinic.0002_providers_and_patients", "clinic.0003_appointments",
                  "clinic.0004_subscriptions")


@pytest.fixture(scope="module")
def python():
    """The Django virtualenv's python: what the application would run manage.py with."""
    return django_python()


def recorded(cluster, db):
    """django_migrations as app.name, in the order applied ([] before the table exists)."""
    rows = history_rows(cluster, db, "django_migrations", "app || '.' || name", "id")
    return [r[0] for r in rows or []]


def write_migration(project, app, name, depends_on, sql, reverse_sql="SELECT 1"):
    """A RunSQL migration file `<app>/migrations/<name>.py` depending on `depends_on` [(app, name)]."""
    (project / app / "migrations" / ("%s.py" % name)).write_text(textwrap.dedent('''\
        from django.db import migrations


        class Migration(migrations.Migration):

            dependencies = %r

            operations = [migrations.RunSQL(sql=%r, reverse_sql=%r)]
        ''') % (list(depends_on), sql, reverse_sql))


def test_apply_all_then_status_then_nothing_to_do(cluster, pg, python, project, database):
    planned, dummy = migrate(pg, database, project_dir=str(project), executable=python, check=True)
    assert not planned["failed"], planned.get("msg")
    assert planned["tool"] == "django" and planned["current"] is None
    assert [m["version"] for m in planned["planned"]] == [V1, V2, V3, V4]
    assert "CREATE TABLE users" in planned["planned"][0]["sql"] and "CREATE VIEW upcoming_appointments" in planned["planned"][2]["sql"]
    assert [m["version"] for m in planned["pending"]] == [V1, V2, V3, V4]
    assert tables(cluster, database) == [] and recorded(cluster, database) == []  # check mode applied nothing
    result, dummy = migrate(pg, database, project_dir=str(project), executable=python, diff=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and result["tool"] == "django" and result["current"] is None and result["final"] == V4
    assert [(m["version"], m["direction"]) for m in result["applied"]] == [(v, "up") for v in (V1, V2, V3, V4)]
    assert all(m["duration_s"] > 0 for m in result["applied"])
    assert result["msg"] == "Applied 4 migrations with django: version None -> %s." % V4
    assert tables(cluster, database) == TABLES and recorded(cluster, database) == [V1, V2, V3, V4]
    assert "table public.appointments" in result["diff"]["after"] and "table public.users" not in result["diff"]["before"]
    status, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="status")
    assert not status["failed"] and not status["changed"], status.get("msg")
    assert status["current"] == V4 and status["pending"] == [] and status["conflicts"] == []
    again, dummy = migrate(pg, database, project_dir=str(project), executable=python)
    assert not again["changed"] and again["applied"] == [] and "Nothing to apply" in again["msg"]


def test_target_downgrade_and_back(cluster, pg, python, project, database):
    # A target by number prefix, as Django's own migrate accepts.
    result, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="target", target="clinic.0002")
    assert not result["failed"] and result["final"] == V2, result.get("msg")
    assert [m["version"] for m in result["applied"]] == [V1, V2]
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]
    status, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="status")
    assert status["current"] == V2 and [m["version"] for m in status["pending"]] == [V3, V4]
    assert "CREATE TABLE appointments" in status["pending"][0]["sql"]
    up, dummy = migrate(pg, database, project_dir=str(project), executable=python)
    assert up["final"] == V4 and [m["version"] for m in up["applied"]] == [V3, V4]
    refused, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="target", target=V2)
    assert refused["failed"] and "below the current version %s; set allow_downgrade" % V4 in refused["msg"]
    plan, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="target", target=V2,
                          allow_downgrade=True, check=True)
    assert [(m["version"], m["direction"]) for m in plan["planned"]] == [(V4, "down"), (V3, "down")]
    assert "DROP TABLE subscriptions" in plan["planned"][0]["sql"] and "DROP VIEW upcoming_appointments" in plan["planned"][1]["sql"]
    assert tables(cluster, database) == TABLES
    down, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="target", target=V2,
                          allow_downgrade=True)
    assert not down["failed"], down.get("msg")
    assert [(m["version"], m["direction"]) for m in down["applied"]] == [(V4, "down"), (V3, "down")]
    assert down["final"] == V2 and tables(cluster, database) == ["patients", "plans", "providers", "users"]
    assert recorded(cluster, database) == [V1, V2]
    again, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="target", target="clinic.0004")
    assert not again["failed"] and [m["version"] for m in again["applied"]] == [V3, V4], again.get("msg")
    assert cluster.primary.execute("SELECT count(*) FROM upcoming_appointments", dbname=database) == [(0,)]


def test_several_apps_follow_djangos_plan(cluster, pg, python, project, database):
    """A second app whose first migration depends on clinic.0002: the plan interleaves the apps."""
    (project / "billing" / "migrations").mkdir(parents=True)
    (project / "billing" / "__init__.py").write_text("")
    (project / "billing" / "migrations" / "__init__.py").write_text("")
    write_migration(project, "billing", "0001_invoices", [("clinic", "0002_providers_and_patients")],
                    "CREATE TABLE invoices (id bigint PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients (id))",
                    "DROP TABLE invoices")
    settings = project / "clinic_site" / "settings.py"
    settings.write_text(settings.read_text().replace('INSTALLED_APPS = ["clinic"]', 'INSTALLED_APPS = ["clinic", "billing"]'))
    result, dummy = migrate(pg, database, project_dir=str(project), executable=python)
    assert not result["failed"], result.get("msg")
    assert [m["version"] for m in result["applied"]] == [V1, V2, "billing.0001_invoices", V3, V4]
    down, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="target", target=V2,
                          allow_downgrade=True)
    assert not down["failed"], down.get("msg")
    assert [m["version"] for m in down["applied"]] == [V4, V3, "billing.0001_invoices"]
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]
    up, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="target", target="billing.0001")
    assert not up["failed"] and [m["version"] for m in up["applied"]] == ["billing.0001_invoices"], up.get("msg")
    assert recorded(cluster, database) == [V1, V2, "billing.0001_invoices"]


def test_a_migration_failing_half_way_leaves_the_schema_as_it_was(cluster, pg, python, project, database):
    migrate(pg, database, project_dir=str(project), executable=python)
    before = fingerprint(pg, database)
    write_migration(project, "clinic", "0005_broken", [("clinic", "0004_subscriptions")],
                    ["CREATE TABLE audit_log (id bigint PRIMARY KEY, note text)",
                     "ALTER TABLE patients ADD COLUMN allergies text",
                     "ALTER TABLE appointments ADD COLUMN broken nosuchtype"])
    result, run = migrate(pg, database, project_dir=str(project), executable=python)
    assert result["failed"], result
    assert result["msg"].startswith("Migration clinic.0005_broken (0005_broken.py) failed: manage.py migrate clinic 0005_broken "
                                    "exited with status 1: django.db.utils.ProgrammingError: "), result["msg"]
    assert 'type "nosuchtype" does not exist' in result["msg"]
    assert "The database is at version %s (the migration was rolled back whole)." % V4 in result["msg"]
    assert "Traceback" not in run.all_text
    assert fingerprint(pg, database) == before
    assert recorded(cluster, database) == [V1, V2, V3, V4]


def test_two_runs_at_once_apply_each_migration_once(cluster, pg, python, project, database):
    runs = at_once(lambda: migrate(pg, database, project_dir=str(project), executable=python),
                   lambda: migrate(pg, database, project_dir=str(project), executable=python))
    results = [result for result, dummy in runs]
    assert all(not r["failed"] for r in results), [r.get("msg") for r in results]
    assert sorted(len(r["applied"]) for r in results) == [0, 4]
    assert recorded(cluster, database) == [V1, V2, V3, V4]


def alter_patients(project):
    """The project with 0003 replaced by a migration that needs an ACCESS EXCLUSIVE lock on patients."""
    for name in ("0003_appointments.py", "0004_subscriptions.py"):
        (project / "clinic" / "migrations" / name).unlink()
    write_migration(project, "clinic", "0003_allergies", [("clinic", "0002_providers_and_patients")],
                    "ALTER TABLE patients ADD COLUMN allergies text", "ALTER TABLE patients DROP COLUMN allergies")


def test_migration_behind_a_long_transaction_retries_then_succeeds(cluster, pg, python, project, database):
    migrate(pg, database, project_dir=str(project), executable=python, state="target", target=V2)
    alter_patients(project)
    with LockHolder.table(pg, database, "patients", seconds=3, waited=1.0):  # a long transaction, as an application's
        started = time.monotonic()
        result, dummy = migrate(pg, database, project_dir=str(project), executable=python, lock_timeout="500ms",
                                lock_retries=8)
    assert not result["failed"], result.get("msg")
    assert result["retries"] and result["retries"][0]["migration"] == "clinic.0003_allergies"
    assert time.monotonic() - started >= 2.5
    assert result["final"] == "clinic.0003_allergies"
    assert cluster.primary.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'allergies'",
                                   dbname=database) == [(1,)]


def test_migration_behind_a_long_transaction_fails_cleanly_without_stalling_traffic(cluster, pg, python, project, database):
    migrate(pg, database, project_dir=str(project), executable=python, state="target", target=V2)
    alter_patients(project)
    # Drop the URL's `options` parameter from the settings: the timeouts must reach Django's sessions through PGOPTIONS.
    settings = project / "clinic_site" / "settings.py"
    text = settings.read_text()
    assert '"OPTIONS": dict(parse_qsl(parts.query)),' in text
    settings.write_text(text.replace('"OPTIONS": dict(parse_qsl(parts.query)),',
                                     '"OPTIONS": dict(kv for kv in parse_qsl(parts.query) if kv[0] != "options"),'))
    # Another application's reads while the migration waits: none may wait longer than lock_timeout.
    with LockHolder.table(pg, database, "patients"), \
            Reads(cluster, database, "SELECT count(*) FROM patients") as reads:
        result, dummy = migrate(pg, database, project_dir=str(project), executable=python, lock_timeout="500ms",
                                lock_retries=1)
    assert result["failed"], result
    assert "canceling statement due to lock timeout" in result["msg"], result["msg"]
    assert "it waited lock_timeout 0.5s for a lock another session holds, 2 times" in result["msg"]
    assert "The database is at version %s" % V2 in result["msg"]
    assert len(result["retries"]) == 1
    assert len(reads.waits) > 20 and max(reads.waits) < 0.5 + 0.5, (len(reads.waits), max(reads.waits))
    assert recorded(cluster, database) == [V1, V2]


def test_conflicting_leaf_migrations_are_refused(cluster, pg, python, project, database):
    migrate(pg, database, project_dir=str(project), executable=python, state="target", target=V2)
    write_migration(project, "clinic", "0003_other_branch", [("clinic", "0002_providers_and_patients")],
                    "CREATE TABLE other_branch (id int)", "DROP TABLE other_branch")
    result, dummy = migrate(pg, database, project_dir=str(project), executable=python)
    assert result["failed"] and result["msg"].startswith("Refusing to migrate: App clinic has conflicting leaf migrations"), \
        result["msg"]
    assert "clinic.0003_other_branch" in result["msg"] and V4 in result["msg"] and "makemigrations --merge" in result["msg"]
    assert [c["kind"] for c in result["conflicts"]] == ["conflicting_leaves"]
    assert tables(cluster, database) == ["patients", "plans", "providers", "users"]
    status, dummy = migrate(pg, database, project_dir=str(project), executable=python, state="status")
    assert not status["failed"] and status["conflicts"][0]["kind"] == "conflicting_leaves"
    assert "1 conflicts" in status["msg"]


def test_applied_migration_missing_from_the_project_is_refused(cluster, pg, python, project, database):
    migrate(pg, database, project_dir=str(project), executable=python)
    (project / "clinic" / "migrations" / "0004_subscriptions.py").unlink()
    write_migration(project, "clinic", "0004_renamed", [("clinic", "0003_appointments")], "CREATE TABLE renamed (id int)")
    result, dummy = migrate(pg, database, project_dir=str(project), executable=python)
    assert result["failed"], result
    assert ("Refusing to migrate: Migration %s is recorded as applied in django_migrations but the project no longer has it."
            % V4) in result["msg"]
    assert result["conflicts"] == [dict(kind="missing", version=V4, message=result["msg"][len("Refusing to migrate: "):])]
    assert "renamed" not in tables(cluster, database)
    plan, dummy = migrate(pg, database, project_dir=str(project), executable=python, check=True)
    assert plan["failed"] and "Refusing to migrate" in plan["msg"]


@pytest.mark.parametrize("case", ["no_manage_py", "unknown_target", "ambiguous_target", "syntax_error",
                                  "missing_executable", "python_without_django", "migrations_dir"])
def test_bad_input_is_one_sentence_and_applies_nothing(cluster, pg, python, project, database, tmp_path, case):
    options = dict(project_dir=str(project), executable=python)
    if case == "no_manage_py":
        (tmp_path / "empty").mkdir()
        options.update(project_dir=str(tmp_path / "empty"), tool="django")
        message = "Option project_dir: %s holds no manage.py" % (tmp_path / "empty")
    elif case == "unknown_target":
        options.update(state="target", target="clinic.0009")
        message = "Option target: version clinic.0009 is not a migration of the project (known: %s" % V1
    elif case == "ambiguous_target":
        options.update(state="target", target="clinic.000")
        message = "Option target: clinic.000 matches more than one migration"
    elif case == "syntax_error":
        broken = "from django.db import migrations\n\nclass Migration(migrations.Migration)\n"  # no colon
        (project / "clinic" / "migrations" / "0005_broken.py").write_text(broken)
        message = "Django could not load the project's migrations: SyntaxError: "
    elif case == "missing_executable":
        options.update(executable="/nonexistent/venv/bin/python")
        message = "Option executable: /nonexistent/venv/bin/python does not exist or cannot be run."
    elif case == "python_without_django":
        options.pop("executable")  # the module's own python, which has no Django
        message = "cannot import Django; it must be the Python of the application's environment"
    else:
        options.update(migrations_dir=str(project / "clinic" / "migrations"))
        message = "Option migrations_dir does not apply to Django"
    result, run = migrate(pg, database, **options)
    assert result["failed"] and message in result["msg"], result.get("msg")
    if case == "syntax_error":
        assert "(clinic/migrations/0005_broken.py line 3)" in result["msg"], result["msg"]
    if case == "python_without_django":
        assert result["msg"].startswith("Option executable: ")
    assert "Traceback" not in run.all_text
    assert tables(cluster, database) == [] and recorded(cluster, database) == []


def test_no_password_or_url_on_a_command_line_or_in_verbose_output(cluster, pg, python, project, database):
    password = pg["passwords"]["pgops_app"]
    with command_lines_seen() as seen:
        result, run = migrate(pg, database, project_dir=str(project), executable=python, verbosity=3)
    assert not result["failed"], result.get("msg")
    assert [m["version"] for m in result["applied"]] == [V1, V2, V3, V4]
    assert any(b"manage.py\0migrate\0" in c for c in seen) and any(b"manage.py\0shell\0" in c for c in seen)
    for secret in (password, "postgresql://pgops_app:", "postgresql://"):
        assert not [c for c in seen if secret.encode() in c], secret
        assert secret not in run.all_text, secret
