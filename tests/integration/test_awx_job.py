"""The playbooks as AWX runs them (tests/harness/awx.py makes the private data directory the
way AWX does): the example AWX project (examples/awx-project) with the collection installed
from its built artifact, the surveys and credential types of docs/awx/, at -vvv. Checked:
the final status, the events, the report in the artifact data (set_stats), and that no
secret appears in anything the job publishes or on any command line while it runs."""

import os
import secrets
import shutil
import sys

import pytest

from tests.conftest import ROOT
from tests.harness.awx import AwxJob, SurveyError, load_json, survey_answers
from tests.harness.collection import build_artifact
from tests.harness.migrations import fingerprint, history_rows, migrate
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration
# The three jobs are independent groups for pytest-xdist (see tests/conftest.py): they spread over the
# workers, each building the artifact once.

PROJECT = os.path.join(ROOT, "examples", "awx-project")
MIGRATIONS = os.path.join(ROOT, "examples", "healthcare", "migrations")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return build_artifact(str(tmp_path_factory.mktemp("galaxy")))


@pytest.fixture
def bucket(s3):
    from tests.harness.s3 import client_for
    name = "awx-%s" % secrets.token_hex(4)
    client_for(s3).create_bucket(Bucket=name)
    return name


@pytest.fixture
def job(tmp_path, artifact):
    made = []

    def make():
        made.append(AwxJob(str(tmp_path), PROJECT, artifact))
        return made[-1]
    yield make
    for each in made:
        each.remove()


def database_credential(pg, db):
    with open(pg["ca_cert"]) as handle:
        ca_pem = handle.read()
    return dict(host=pg["host"], port=str(pg["port"]), username="pgops_admin", password=pg["passwords"]["pgops_admin"],
                database=db, ssl_mode="verify-full", ca_cert=ca_pem)


def storage_credential(s3, bucket):
    # moto takes any key: a secret of this test's own, to look for afterwards.
    return dict(bucket=bucket, prefix="awx", region=s3["region"], endpoint_url=s3["endpoint_url"],
                access_key=s3["access_key"], secret_key="s3-Secret-" + secrets.token_hex(12))


def attach(job, pg, db, s3, bucket):
    """The job template's credentials; returns the secrets they carry."""
    storage = storage_credential(s3, bucket)
    passphrase = "gpg-Passphrase-" + secrets.token_hex(12)
    job.credential("postgresql.json", database_credential(pg, db))
    job.credential("s3_backup_storage.json", storage)
    job.credential("backup_passphrase.json", dict(passphrase=passphrase))
    return [pg["passwords"]["pgops_admin"], storage["secret_key"], passphrase]


def run_watched(job, playbook):
    """Run at -vvv, collecting the command line of every process the job starts."""
    with command_lines_seen() as seen:
        run = job.run(playbook, verbosity=3)
    return run, seen


def assert_nothing_secret_published(job, run, seen, secret_values):
    published = job.published_text() + run.all_text
    for value in secret_values:
        assert value not in published
        assert not [line for line in seen if value.encode() in line]
    assert len(seen) > 5  # the watch did see the job's processes


def object_keys(s3, bucket):
    from tests.harness.s3 import client_for
    listing = client_for(s3).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def migrate_job(job, pg, database, s3, bucket, answers, extra_vars=None, extra_migrations=None):
    made = job()
    shutil.copytree(MIGRATIONS, os.path.join(made.project, "app", "migrations"))
    for name, text in (extra_migrations or {}).items():
        with open(os.path.join(made.project, "app", "migrations", name), "w") as handle:
            handle.write(text)
    made.inventory("databases", {"db1": dict(
        ansible_connection="local", ansible_python_interpreter=sys.executable,
        pgops_project_dir=os.path.join(made.project, "app", "migrations"), pgops_migration_tool="sql",
        report_dir=os.path.join(made.dir, "reports"), pgops_work_dir=os.path.join(made.dir, "work"))})
    made.template(extra_vars=extra_vars, survey="migrate.json", answers=answers, user="alice", name="PostgreSQL migrate")
    secret_values = attach(made, pg, database, s3, bucket)
    return made, secret_values


def test_the_surveys_refuse_what_awx_would_refuse():
    migrate = load_json("surveys", "migrate.json")
    assert survey_answers(migrate, dict(env="production", release="v2.4")) == dict(
        env="production", release="v2.4", preflight_override_window="false")
    for answers in (dict(env="production"), dict(env="prod", release="v1"), dict(release="v1", target="x" * 200)):
        with pytest.raises(SurveyError):
            survey_answers(migrate, answers)
    restore = load_json("surveys", "restore.json")
    assert survey_answers(restore, dict(backup_id="b1", target_db="copy"))["mode"] == "new"
    with pytest.raises(SurveyError):
        survey_answers(restore, dict(backup_id="b1", target_db="copy", mode="drop"))


@pytest.mark.xdist_group("awx-migrate")
def test_a_migrate_job_runs_the_runbook_and_publishes_its_record(job, cluster, pg, database, s3, bucket):
    made, secret_values = migrate_job(job, pg, database, s3, bucket, dict(env="staging", release="v2.4"))
    run, seen = run_watched(made, "migrate.yml")
    assert run.status == "successful" and run.rc == 0, run.stdout[-6000:]
    report = run.stats["migration_report"]
    assert report["result"] == "succeeded"
    assert report["operator"] == "alice"
    assert report["migrations"]["final"] == "3"
    assert report["backup"]["verified"] in (True, "True")
    # The backup went to the credential's bucket, encrypted with its passphrase.
    keys = object_keys(s3, bucket)
    assert [k for k in keys if k.startswith("awx/%s/" % database) and k.endswith("manifest.json")], keys
    assert len(history_rows(cluster, database, "pgops_schema_history", "version", "installed_rank")) == 3
    # The roles that ran are those of the collection AWX installed for the project.
    paths = set(e["event_data"].get("task_path", "").split(":")[0] for e in run.events if e.get("event") == "runner_on_ok")
    assert os.path.join(made.collections, "ansible_collections", "pgops", "runbook", "roles", "migrate", "tasks", "main.yml") in paths
    assert not [p for p in paths if p.startswith(ROOT + os.sep)]
    assert not [e for e in run.events if e.get("event") == "runner_on_failed" and not e["event_data"].get("ignore_errors")]
    assert_nothing_secret_published(made, run, seen, secret_values)


@pytest.mark.xdist_group("awx-rollback")
def test_a_failed_migrate_job_is_rolled_back_from_the_encrypted_backup_and_says_so(job, cluster, pg, database, s3, bucket):
    # The database at V1 with rows; V2, V3 and a V4 that fails half-way are pending.
    migrate(pg, database, project_dir=MIGRATIONS, tool="sql", state="target", target="1")
    cluster.primary.execute("INSERT INTO patients (mrn, first_name, last_name, date_of_birth) "
                            "SELECT 'MRN' || i, 'Pat', 'Ient' || i, DATE '1980-01-01' + i FROM generate_series(1, 50) i", dbname=database)
    before = fingerprint(pg, database)
    made, secret_values = migrate_job(
        job, pg, database, s3, bucket, dict(env="staging", release="v2.5"),
        extra_vars=dict(pgops_rollback_strategy="restore"),
        extra_migrations={"V4__broken.sql": "ALTER TABLE patients ADD COLUMN nickname text;\nSELECT 1 / 0;\n"})
    run, seen = run_watched(made, "migrate.yml")
    # AWX marks the job failed (its failure notifications fire); the record says what happened.
    assert run.status == "failed" and run.rc != 0
    report = run.stats["migration_report"]
    assert report["result"] == "rolled back", report
    assert report["rollback"]["strategy"] == "restore"
    assert fingerprint(pg, database) == before
    assert cluster.primary.execute("SELECT count(*) FROM patients", dbname=database)[0][0] == 50
    assert_nothing_secret_published(made, run, seen, secret_values)


@pytest.mark.xdist_group("awx-backup")
def test_a_nightly_backup_job_stores_a_verified_encrypted_backup(job, cluster, pg, s3, bucket):
    made = job()
    made.inventory("databases", {"db1": dict(ansible_connection="local", ansible_python_interpreter=sys.executable)})
    made.template(survey="backup.json", answers=dict(env="production"), name="PostgreSQL backup")
    secret_values = attach(made, pg, "appdb", s3, bucket)
    run, seen = run_watched(made, "backup.yml")
    assert run.status == "successful" and run.rc == 0, run.stdout[-6000:]
    report = run.stats["backup_report"]
    assert report["verified"] in (True, "True")
    assert "restored into a scratch database" in report["verification"]
    keys = object_keys(s3, bucket)
    assert "awx/appdb/%s/manifest.json" % report["backup_id"] in keys
    assert [k for k in keys if k.startswith("awx/appdb/%s/" % report["backup_id"]) and k.endswith(".gpg")], keys
    assert_nothing_secret_published(made, run, seen, secret_values)


def test_a_job_whose_inventory_lacks_the_database_hosts_fails(job):
    # Otherwise a scheduled backup with the wrong inventory would stay green, having done nothing.
    made = job()
    made.inventory("webservers", {"web1": dict(ansible_connection="local", ansible_python_interpreter=sys.executable)})
    made.template(survey="backup.json", answers=dict(env="production"), name="PostgreSQL backup")
    run = made.run("backup.yml")
    assert run.status == "failed" and run.rc != 0
    assert "No host of the inventory matches 'databases'" in run.stdout
