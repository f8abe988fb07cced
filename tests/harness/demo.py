"""`make demo`: the main job on an embedded default.

Starts a throw-away PostgreSQL (primary with SSL and a streaming standby), loads a
small clinic schema with data, runs playbooks/health.yml -e env=development
against it exactly as an operator would (ansible-playbook, inventory group
`databases`), then stops and removes the server.
"""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.harness.cluster import Cluster  # noqa: E402
from tests.harness.collection import ensure_collection_path  # noqa: E402

SCHEMA = """
CREATE TABLE patients (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, mrn text NOT NULL UNIQUE,
                       name text NOT NULL, born date NOT NULL);
CREATE TABLE appointments (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                           patient_id bigint NOT NULL REFERENCES patients (id),
                           starts_at timestamptz NOT NULL, status text NOT NULL DEFAULT 'booked');
CREATE INDEX appointments_patient_id ON appointments (patient_id);
CREATE INDEX appointments_starts_at ON appointments (starts_at);
INSERT INTO patients (mrn, name, born)
  SELECT 'MRN' || g, 'Patient ' || g, date '1950-01-01' + (g % 20000) FROM generate_series(1, 5000) g;
INSERT INTO appointments (patient_id, starts_at)
  SELECT 1 + g % 5000, now() + make_interval(hours => g) FROM generate_series(1, 20000) g;
ANALYZE;
"""


def main():
    collections = ensure_collection_path()
    cluster = Cluster()
    workdir = tempfile.mkdtemp(prefix="pgops-demo-")
    try:
        print("Starting a throw-away PostgreSQL (primary + streaming standby) ...", flush=True)
        cluster.start_primary()
        cluster.start_standby()
        cluster.primary.execute(SCHEMA, dbname="appdb")
        info = cluster.describe()
        # Connection settings go in a 0600 vars file, never on the command line.
        vars_file = os.path.join(workdir, "connection.json")
        fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"pgops_connection": {
                "login_host": info["host"], "login_port": info["port"], "login_user": "pgops_monitor",
                "login_password": info["passwords"]["pgops_monitor"], "login_db": "appdb",
                "ssl_mode": "verify-full", "ca_cert": info["ca_cert"]}}, handle)
        inventory = os.path.join(workdir, "inventory.ini")
        with open(inventory, "w") as handle:
            handle.write("[databases]\ndemo-db ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
                   os.path.join(ROOT, "playbooks", "health.yml"), "-e", "env=development", "-e", "@" + vars_file]
        print("\n$ ansible-playbook -i inventory.ini playbooks/health.yml -e env=development -e @connection.json\n",
              flush=True)
        return subprocess.call(command, env=env, cwd=ROOT)
    finally:
        cluster.stop()
        subprocess.call(["rm", "-rf", workdir])
        print("Throw-away PostgreSQL stopped and removed.")


if __name__ == "__main__":
    sys.exit(main())
