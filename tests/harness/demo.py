"""`make demo`: the main job on an embedded default.

Starts a throw-away PostgreSQL (primary with SSL and a streaming standby), creates the
example healthcare database (examples/healthcare: its first migration, then patients and
appointments as an application would write them), and runs the migration runbook exactly as
an operator would, with ansible-playbook and an inventory group `databases`:

    ansible-playbook playbooks/migrate.yml -e env=production -e release=v2.0

pre-migration checklist, verified backup, lint, the migrations, validation, the migration
record. It runs the runbook a second time, which finds nothing pending, prints where the
reports are (.build/demo/reports, kept), then stops and removes the server.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.harness.cluster import Cluster  # noqa: E402
from tests.harness.collection import ensure_collection_path  # noqa: E402

PROJECT = os.path.join(ROOT, "examples", "healthcare", "migrations")
REPORTS = os.path.join(ROOT, ".build", "demo", "reports")
DATABASE = "healthcare_db"
DATA = """
INSERT INTO appointment_types (code, name, duration_minutes) VALUES ('checkup', 'Check-up', 30);
INSERT INTO patients (mrn, first_name, last_name, date_of_birth)
  SELECT 'MRN' || g, 'First' || g, 'Last' || g, date '1950-01-01' + (g % 20000) FROM generate_series(1, 5000) g;
INSERT INTO providers (npi, full_name, specialty)
  SELECT lpad(g::text, 10, '0'), 'Dr. Provider ' || g, 'family medicine' FROM generate_series(1, 50) g;
INSERT INTO appointments (patient_id, provider_id, appointment_type_id, starts_at, ends_at)
  SELECT 1 + g % 5000, 1 + g % 50, 1, now() + make_interval(hours => g), now() + make_interval(hours => g, mins => 30)
    FROM generate_series(1, 20000) g;
ANALYZE;
"""


def write_private(path, data):
    """A 0600 JSON vars file: connection settings never go on a command line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)


def playbook(env, inventory, vars_file, title, *extra):
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
               os.path.join(ROOT, "playbooks", "migrate.yml"), "-e", "@" + vars_file] + list(extra)
    shown = " ".join(["ansible-playbook -i inventory.ini playbooks/migrate.yml"] + list(extra) + ["-e @settings.json"])
    print("\n== %s\n$ %s\n" % (title, shown), flush=True)
    return subprocess.call(command, env=env, cwd=ROOT)


def main():
    collections = ensure_collection_path()
    cluster = Cluster()
    workdir = tempfile.mkdtemp(prefix="pgops-demo-")
    os.makedirs(REPORTS, exist_ok=True)
    try:
        print("Starting a throw-away PostgreSQL (primary + streaming standby) ...", flush=True)
        cluster.start_primary()
        cluster.start_standby()
        cluster.primary.execute("CREATE DATABASE %s OWNER pgops_admin" % DATABASE)
        info = cluster.describe()
        backups, work = os.path.join(workdir, "backups"), os.path.join(workdir, "work")
        os.makedirs(backups)
        os.makedirs(work)
        vars_file = os.path.join(workdir, "settings.json")
        write_private(vars_file, {
            "pgops_connection": {"login_host": info["host"], "login_port": info["port"], "login_user": "pgops_admin",
                                 "login_password": info["passwords"]["pgops_admin"], "login_db": DATABASE,
                                 "ssl_mode": "verify-full", "ca_cert": info["ca_cert"]},
            "pgops_project_dir": PROJECT, "pgops_migration_tool": "sql", "backup_dest": backups,
            "pgops_work_dir": work, "report_dir": REPORTS,
            # The demo runs whenever you type make demo: outside any maintenance window, which
            # production requires; the override is recorded in the report.
            "preflight_override_window": True})
        inventory = os.path.join(workdir, "inventory.ini")
        with open(inventory, "w") as handle:
            handle.write("[databases]\ndemo-db ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        rc = playbook(env, inventory, vars_file, "The application's first release: its initial schema (version 1)",
                      "-e", "env=development", "-e", "target=1", "-e", "release=v1.0")
        if rc:
            return rc
        cluster.primary.execute(DATA, dbname=DATABASE)
        print("\n(the application has written 5,000 patients, 50 providers and 20,000 appointments)", flush=True)
        rc = playbook(env, inventory, vars_file, "Release v2.0 in production: the whole runbook",
                      "-e", "env=production", "-e", "release=v2.0")
        if rc:
            return rc
        rc = playbook(env, inventory, vars_file, "The same command again: nothing pending, nothing changes",
                      "-e", "env=production", "-e", "release=v2.0")
        reports = sorted(glob.glob(os.path.join(REPORTS, "**", "*.md"), recursive=True), key=os.path.getmtime)
        if reports:
            print("\nMigration records (Markdown and JSON) in %s; the release's: %s" % (REPORTS, reports[-2 if len(reports) > 1 else -1]))
        return rc
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("Throw-away PostgreSQL stopped and removed.")


if __name__ == "__main__":
    sys.exit(main())
