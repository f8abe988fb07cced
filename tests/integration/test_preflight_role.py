"""The preflight role through ansible-runner against the real server: a healthy database with
pending migrations passes (listed, baseline saved, the backup destinations really probed);
then every unmet item at once - too little free disk, a session blocked by a real lock,
outside the maintenance window, a lint error, an unwritable backup directory and an S3
bucket that is not there - is listed in one failure, with nothing changed."""

import datetime
import os
import subprocess
import threading
import time

import boto3
import psycopg2
import pytest

from tests.conftest import ROOT, connection_vars
from tests.harness.migrations import copy_project, fingerprint, migrate
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "migrations", "sql")


def run_preflight(pg, db, project, baseline_dir, **role_vars):
    # pgops_admin may read the data directory's location (pg_monitor), so disk space is measured.
    variables = {"preflight_connection": connection_vars(pg, user="pgops_admin", db=db),
                 "preflight_project_dir": str(project), "preflight_baseline_dir": str(baseline_dir),
                 "preflight_release": "v2.4"}
    variables.update(role_vars)
    task = {"name": "preflight", "ansible.builtin.include_role": {"name": "pgops.runbook.preflight"}, "vars": variables}
    return run_play([task])


def window_including_now():
    return "00:00-24:00 UTC"


def window_excluding_now():
    other_day = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
    return "%s 00:00-24:00 UTC" % other_day.strftime("%a")


@pytest.fixture
def project(tmp_path, pg, database, cluster):
    """The healthcare SQL project applied up to version 2 (3, 4 and the views pending), with some rows."""
    target = copy_project(FIXTURE, tmp_path)
    result, dummy = migrate(pg, database, project_dir=str(target), state="target", target="2")
    assert not result["failed"], result["msg"]
    cluster.primary.execute("INSERT INTO users (email, password_hash) SELECT 'u' || g || '@x', 'h' "
                            "FROM generate_series(1, 50) g", dbname=database)
    return target


@pytest.fixture
def bucket(s3):
    client = boto3.client("s3", endpoint_url=s3["endpoint_url"], region_name=s3["region"],
                          aws_access_key_id=s3["access_key"], aws_secret_access_key=s3["secret_key"])
    name = "preflight-%d" % threading.get_ident()
    client.create_bucket(Bucket=name)
    yield name, client
    for item in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def s3_location(s3, bucket_name):
    return {"bucket": bucket_name, "prefix": "prod", "endpoint_url": s3["endpoint_url"], "region": s3["region"],
            "access_key": s3["access_key"], "secret_key": s3["secret_key"]}


def test_a_healthy_database_passes_lists_pending_migrations_and_saves_the_baseline(pg, database, project, tmp_path, s3, bucket):
    backups = tmp_path / "backups"
    backups.mkdir()
    baseline_dir = tmp_path / "work" / "baselines"
    run = run_preflight(pg, database, project, baseline_dir, preflight_env="production",
                        preflight_maintenance_window=window_including_now(), preflight_backup_required=True,
                        preflight_backup_dest=str(backups), preflight_backup_s3=s3_location(s3, bucket[0]),
                        preflight_performance_queries=[{"name": "users by email",
                                                        "sql": "SELECT id FROM users WHERE email = 'u7@x'"}])
    assert run.status == "successful", run.stdout[-4000:]
    outcome = run.stats["preflight_report"]
    assert outcome["passed"] is True and outcome["problems"] == []
    items = dict((c["item"], c) for c in outcome["checks"])
    assert list(items) == ["connection", "server_version", "client_tools", "long_running_queries",
                           "idle_in_transaction", "blocking_locks", "replication", "backup_destination", "disk_space",
                           "maintenance_window", "pending_migrations", "migration_lint", "performance_baseline", "baseline"]
    assert all(c["ok"] for c in outcome["checks"])
    assert "inside the maintenance window" in items["maintenance_window"]["message"]
    assert str(backups) in items["backup_destination"]["message"] and "s3://%s/prod" % bucket[0] in items["backup_destination"]["message"]
    assert [p["version"] for p in outcome["pending"]] == ["3", "4", "views"]
    assert outcome["lint"]["policy"] == "error" and outcome["lint"]["summary"]["error"] == 0
    # The baseline: the snapshot and the timings, in a directory made 0700.
    baseline = outcome["baseline"]
    assert baseline["path"].startswith(str(baseline_dir) + "/%s-v2.4-" % database) and os.path.isfile(baseline["path"])
    assert baseline["fingerprint"] == fingerprint(pg, database)
    assert os.path.isfile(baseline["timings_path"]) and baseline["timings"][0]["name"] == "users by email"
    assert oct(os.stat(str(baseline_dir)).st_mode & 0o777) == "0o700"
    # The probes were written and deleted: nothing is left in either backup location.
    assert os.listdir(str(backups)) == []
    assert bucket[1].list_objects_v2(Bucket=bucket[0]).get("KeyCount", 0) == 0
    assert pg["passwords"]["pgops_admin"] not in run.all_text and s3["secret_key"] not in run.all_text


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory on a read-only bind mount: not writable, even by root."""
    path = tmp_path / "readonly-backups"
    path.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(path), str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


class BlockedSession:
    """One real session holding a row lock in an open transaction, and another waiting for it."""

    def __init__(self, pg, db):
        self.pg, self.db = pg, db

    def connect(self):
        return psycopg2.connect(host=self.pg["host"], port=self.pg["port"], user="pgops_app", dbname=self.db,
                                password=self.pg["passwords"]["pgops_app"], sslmode="require")

    def __enter__(self):
        self.holder = self.connect()
        with self.holder.cursor() as cur:
            cur.execute("UPDATE users SET password_hash = 'held' WHERE id = 1")
        self.waiter = self.connect()
        self.thread = threading.Thread(target=self._wait)
        self.thread.start()
        return self

    def _wait(self):
        with self.waiter.cursor() as cur:
            cur.execute("UPDATE users SET password_hash = 'waiting' WHERE id = 1")
        self.waiter.rollback()

    def __exit__(self, *exc):
        self.holder.rollback()
        self.thread.join(30)
        self.holder.close()
        self.waiter.close()


def test_every_unmet_item_is_listed_at_once_and_nothing_changes(cluster, pg, database, project, tmp_path, s3, read_only_dir):
    # A pending migration that lint must block: CREATE INDEX without CONCURRENTLY on a table made large.
    cluster.primary.execute("INSERT INTO patients (first_name, last_name, date_of_birth, mrn) "
                            "SELECT 'f', 'l' || g, date '1980-01-01', 'mrn' || g FROM generate_series(1, 5000) g",
                            dbname=database)
    cluster.primary.execute("ANALYZE patients", dbname=database)
    (project / "V5__patient_names.sql").write_text("CREATE INDEX patients_last_name ON patients (last_name);\n")
    before = fingerprint(pg, database)
    baseline_dir = tmp_path / "baselines"
    s3_missing = s3_location(s3, "no-such-bucket-for-preflight")
    with BlockedSession(pg, database):
        time.sleep(1.5)  # the waiting session has waited longer than preflight_max_lock_wait_seconds
        run = run_preflight(pg, database, project, baseline_dir, preflight_env="production",
                            preflight_min_free_disk_pct=100, preflight_max_lock_wait_seconds=1,
                            preflight_maintenance_window=window_excluding_now(),
                            preflight_lint_thresholds={"small_table_rows": 10, "small_table_bytes": 1024, "large_table_rows": 1000},
                            preflight_backup_required=True, preflight_backup_dest=str(read_only_dir),
                            preflight_backup_s3=s3_missing)
    assert run.status == "failed"
    outcome = run.stats.get("preflight_report") or run.result("Stop when an item of the checklist is not met")
    failed_task = run.result("Stop when an item of the checklist is not met")
    problems = [p.split(":", 1)[0] for p in (outcome["problems"] if "problems" in outcome else [])]
    assert problems == ["blocking_locks", "backup_destination", "disk_space", "maintenance_window", "migration_lint"], \
        failed_task["msg"]
    message = failed_task["msg"]
    assert message.startswith("Pre-migration checklist: 5 item(s) not met. blocking_locks: ")
    assert "waits for ShareLock" in message or "blocked by a lock" in message
    assert "Read-only file system" in message and "no-such-bucket-for-preflight" in message
    assert "outside the maintenance window" in message
    assert "require-concurrent-index-creation in V5__patient_names.sql line 1" in message
    # Nothing changed: no migration applied, no baseline, no probe left behind.
    assert fingerprint(pg, database) == before
    assert not baseline_dir.exists()
    assert os.listdir(str(read_only_dir)) == []
    assert pg["passwords"]["pgops_admin"] not in run.all_text and s3["secret_key"] not in run.all_text


def test_an_overridden_window_is_reported_and_a_bad_window_is_a_problem(pg, database, project, tmp_path):
    run = run_preflight(pg, database, project, tmp_path / "b", preflight_env="production",
                        preflight_maintenance_window=window_excluding_now(), preflight_override_window=True)
    assert run.status == "successful", run.stdout[-3000:]
    window = [c for c in run.stats["preflight_report"]["checks"] if c["item"] == "maintenance_window"][0]
    assert window["ok"] and window["overridden"] and window["message"].endswith("Overridden by preflight_override_window.")
    run = run_preflight(pg, database, project, tmp_path / "c", preflight_env="production",
                        preflight_maintenance_window="Sundays at two", preflight_override_window=True)
    assert run.status == "failed"
    assert run.stats["preflight_report"]["problems"] == [
        "maintenance_window: Maintenance window 'Sundays at two' is not understood: it does not have the form of a window; "
        "write \"always\" or \"[days] HH:MM-HH:MM <time zone>\", for example \"Sun 02:00-04:00 UTC\"."]


def test_an_unreachable_database_is_one_problem_and_skips_what_needs_it(pg, database, project, tmp_path):
    run = run_preflight(pg, database, project, tmp_path / "b",
                        preflight_connection=connection_vars(pg, user="pgops_admin", db=database, login_password="wrong"))
    assert run.status == "failed"
    problems = run.stats["preflight_report"]["problems"]
    assert len(problems) == 1 and problems[0].startswith("connection: Authentication failed for pgops_admin@"), problems
    assert "wrong" not in run.all_text.replace("wrong password", "")
