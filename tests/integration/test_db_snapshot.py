"""db_snapshot through Ansible (ansible-runner) against the real server.

Each test makes its own database from the same small clinic schema, so it can
change it freely without touching appdb or the other tests.
"""

import json
import os
import stat
import sys
import textwrap
import threading
import time

import pytest

from tests.conftest import connection_vars
from tests.harness.network import free_port
from tests.harness.playbook import run_play

from ansible_collections.pgops.runbook.plugins.module_utils.client_tools import ClientTools
from ansible_collections.pgops.runbook.plugins.module_utils.connection import ConnectionSettings

pytestmark = pytest.mark.integration

MODULE = "pgops.runbook.db_snapshot"
# BEGIN (REPEATABLE READ READ ONLY), five catalog SELECTs, ROLLBACK.
SNAPSHOT_SELECTS = 5
SNAPSHOT_STATEMENTS = SNAPSHOT_SELECTS + 2

# A small clinic: identity and serial keys, an enum, a foreign key, a NOT VALID
# check (one old row breaks it), a partial index, a view, a trigger function and
# a table that a migration will drop. Autovacuum is off on the tables so the
# planner's estimates only move when a test runs ANALYZE.
CLINIC_SQL = """
CREATE TYPE public.appointment_status AS ENUM ('booked', 'attended', 'cancelled');
CREATE TABLE public.patients (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mrn text NOT NULL UNIQUE,
    full_name text NOT NULL,
    legacy_code text,
    born date CHECK (born > date '1900-01-01'),
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_enabled = false);
CREATE TABLE public.appointments (
    id serial PRIMARY KEY,
    patient_id bigint NOT NULL REFERENCES public.patients (id),
    starts_at timestamptz NOT NULL,
    status public.appointment_status NOT NULL DEFAULT 'booked',
    duration_min int NOT NULL DEFAULT 30
) WITH (autovacuum_enabled = false);
CREATE TABLE public.audit_log (id bigserial PRIMARY KEY, note text) WITH (autovacuum_enabled = false);
INSERT INTO public.patients (mrn, full_name, legacy_code, born)
    SELECT 'MRN' || g, 'Patient ' || g, 'L' || g, date '1950-01-01' + g FROM generate_series(1, 1200) g;
INSERT INTO public.appointments (patient_id, starts_at, status)
    SELECT 1 + g % 1200, timestamptz '2024-01-01 09:00+00' + g * interval '1 hour',
           (ARRAY['booked', 'attended', 'cancelled'])[1 + g % 3]::public.appointment_status
    FROM generate_series(1, 3000) g;
INSERT INTO public.appointments (patient_id, starts_at, duration_min) VALUES (1, now(), 0);
ALTER TABLE public.appointments ADD CONSTRAINT appointments_duration_positive CHECK (duration_min > 0) NOT VALID;
INSERT INTO public.audit_log (note) SELECT 'event ' || g FROM generate_series(1, 50) g;
CREATE INDEX appointments_booked_idx ON public.appointments (starts_at) WHERE status = 'booked';
CREATE INDEX appointments_patient_idx ON public.appointments (patient_id);
CREATE VIEW public.upcoming_appointments AS
    SELECT a.id, p.full_name, a.starts_at FROM public.appointments a JOIN public.patients p ON p.id = a.patient_id
    WHERE a.status = 'booked';
CREATE FUNCTION public.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER patients_touch BEFORE UPDATE ON public.patients
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();
"""

CLINIC_ROWS = {"public.patients": 1200, "public.appointments": 3001, "public.audit_log": 50}


@pytest.fixture(scope="module")
def make_db(cluster):
    """make_db(name, clinic=True): a fresh database owned by pgops_app, dropped at the end."""
    made = []

    def make(name, clinic=True, owner="pgops_app"):
        cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        cluster.primary.execute("CREATE DATABASE %s OWNER %s" % (name, owner))
        made.append(name)
        if clinic:
            cluster.primary.execute(CLINIC_SQL, dbname=name)
        return name

    yield make
    for name in made:
        cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def defaults(pg, db, **kwargs):
    return {"group/pgops.runbook.all": connection_vars(pg, db=db, **kwargs)}


def snapshot_task(name, register=None, **options):
    task = {"name": name, MODULE: options}
    if register:
        task["register"] = register
    return task


def ok(run, name):
    result = run.result(name)
    assert not result["failed"], "task %r failed: %s" % (name, result.get("msg"))
    return result


def failed(run, name):
    result = run.result(name)
    assert result["failed"], "task %r should have failed" % name
    assert result["msg"] and "\n" not in result["msg"].strip(), "not one sentence: %r" % result.get("msg")
    assert "Traceback" not in run.all_text
    return result


def scalar(cluster, db, sql):
    return cluster.primary.execute(sql, dbname=db)[0][0]


def exact_counts(cluster, db, tables):
    return dict((t, scalar(cluster, db, "SELECT count(*) FROM %s" % t)) for t in tables)


def reltuples(cluster, db, tables):
    return dict((t, scalar(cluster, db, "SELECT reltuples::bigint FROM pg_class WHERE oid = '%s'::regclass" % t))
                for t in tables)


# -- 1. what a snapshot holds ---------------------------------------------------------------------

def test_snapshot_of_a_realistic_schema(cluster, pg, make_db):
    db = make_db("snap_schema")
    cluster.primary.execute("ANALYZE", dbname=db)
    # Rows the planner has not seen yet: exact counts must see them, estimates must not.
    cluster.primary.execute("INSERT INTO public.appointments (patient_id, starts_at) "
                            "SELECT 1, now() FROM generate_series(1, 500)", dbname=db)
    run = run_play([snapshot_task("estimated"), snapshot_task("exact", exact_counts=True)],
                   module_defaults=defaults(pg, db))
    estimated, exact = ok(run, "estimated"), ok(run, "exact")
    names = sorted(CLINIC_ROWS)

    counted = exact_counts(cluster, db, names)
    planner = reltuples(cluster, db, names)
    assert counted["public.appointments"] == 3501 and planner["public.appointments"] == 3001
    snap = exact["snapshot"]
    assert sorted(snap["tables"]) == names  # the view is not a table; nothing from pg_catalog
    assert snap["exact_counts"] is True
    assert dict((t, snap["tables"][t]["rows"]) for t in names) == counted
    assert dict((t, snap["tables"][t]["estimated_rows"]) for t in names) == planner
    est = estimated["snapshot"]
    assert est["exact_counts"] is False
    assert dict((t, est["tables"][t]["rows"]) for t in names) == planner

    for result in (estimated, exact):
        assert result["statements"] == SNAPSHOT_STATEMENTS
        assert result["changed"] is False
        assert result["fingerprint"] == result["snapshot"]["fingerprint"]
        assert len(result["fingerprint"]) == 64 and int(result["fingerprint"], 16) >= 0
        assert "differences" not in result and "matches" not in result
    assert estimated["fingerprint"] == exact["fingerprint"]

    assert snap["database"] == db and snap["owner"] == "pgops_app"
    assert snap["server_version"].startswith("15.") and snap["server_version_num"] // 10000 == 15
    for name in names:
        table = snap["tables"][name]
        assert table["kind"] == "r"
        assert table["table_bytes"] > 0 and table["index_bytes"] > 0
        assert table["total_bytes"] >= table["table_bytes"] + table["index_bytes"]
        assert table["total_bytes"] == scalar(cluster, db, "SELECT pg_total_relation_size('%s')" % name)
    assert snap["total_bytes"] == sum(t["total_bytes"] for t in snap["tables"].values())

    idx = snap["indexes"]
    assert set(idx) == {"public.patients_pkey", "public.patients_mrn_key", "public.appointments_pkey",
                        "public.appointments_booked_idx", "public.appointments_patient_idx", "public.audit_log_pkey"}
    assert idx["public.appointments_booked_idx"] == dict(
        idx["public.appointments_booked_idx"], table="public.appointments", valid=True, unique=False, primary=False)
    assert idx["public.appointments_booked_idx"]["definition"] == (
        "CREATE INDEX appointments_booked_idx ON public.appointments USING btree (starts_at) "
        "WHERE (status = 'booked'::public.appointment_status)")
    assert idx["public.patients_pkey"]["primary"] is True and idx["public.patients_pkey"]["unique"] is True
    assert idx["public.patients_mrn_key"]["unique"] is True and idx["public.patients_mrn_key"]["primary"] is False
    assert all(i["valid"] and i["bytes"] > 0 for i in idx.values())

    con = snap["constraints"]
    assert con["public.appointments.appointments_duration_positive"] == dict(
        type="check", definition="CHECK ((duration_min > 0)) NOT VALID", validated=False)
    assert con["public.appointments.appointments_patient_id_fkey"] == dict(
        type="foreign key", definition="FOREIGN KEY (patient_id) REFERENCES public.patients(id)", validated=True)
    assert con["public.patients.patients_pkey"]["type"] == "primary key"
    assert con["public.patients.patients_mrn_key"]["type"] == "unique"
    assert con["public.patients.patients_born_check"]["validated"] is True

    objects = snap["schema_objects"]
    for key in ("table public.patients", "table public.appointments", "view public.upcoming_appointments",
                "index public.appointments_booked_idx", "sequence public.patients_id_seq",
                "sequence public.appointments_id_seq", "function public.touch_updated_at()",
                "trigger public.patients.patients_touch", "type public.appointment_status",
                "constraint public.appointments.appointments_duration_positive", "extension plpgsql"):
        assert key in objects, "%s missing from schema_objects" % key
    assert all(len(h) == 16 for h in objects.values())


def test_exact_counts_with_an_unpopulated_materialized_view(cluster, pg, make_db):
    db = make_db("snap_matview")
    # Created empty, refreshed later by a job: common for reporting views.
    cluster.primary.execute("CREATE MATERIALIZED VIEW public.daily_load AS SELECT starts_at::date AS day, "
                            "count(*) AS n FROM public.appointments GROUP BY 1 WITH NO DATA", dbname=db)
    run = run_play([snapshot_task("exact", exact_counts=True)], module_defaults=defaults(pg, db))
    snap = ok(run, "exact")["snapshot"]
    assert dict((t, snap["tables"][t]["rows"]) for t in CLINIC_ROWS) == CLINIC_ROWS
    assert snap["tables"]["public.daily_load"]["rows"] in (None, 0)


# -- 2. a fixed number of statements, whatever the number of tables --------------------------------

def many_tables_sql(count):
    return textwrap.dedent("""
        DO $$
        BEGIN
            FOR i IN 1..%d LOOP
                EXECUTE format('CREATE TABLE public.t%%s (id int PRIMARY KEY, v text)', i);
                EXECUTE format('INSERT INTO public.t%%s SELECT g, g::text FROM generate_series(1, %%s) g', i, i);
            END LOOP;
        END
        $$;
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
        """ % count)


def test_statement_count_does_not_grow_with_tables(cluster, pg, make_db):
    small = make_db("snap_10_tables", clinic=False)
    large = make_db("snap_300_tables", clinic=False)
    cluster.primary.execute(many_tables_sql(10), dbname=small)
    cluster.primary.execute(many_tables_sql(300), dbname=large)
    role, password = "snap_counter", "c0unter-Pa55word-xyz"
    cluster.primary.execute("DROP ROLE IF EXISTS %s" % role)
    cluster.primary.execute("CREATE ROLE %s LOGIN SUPERUSER PASSWORD %%s" % role, (password,))
    try:
        # Only this role's entries: other tests' statistics stay untouched.
        cluster.primary.execute("SELECT pg_stat_statements_reset('%s'::regrole, 0, 0)" % role, dbname=large)
        run = run_play([snapshot_task("small exact", exact_counts=True, login_db=small),
                        snapshot_task("large estimated", login_db=large),
                        snapshot_task("large exact", exact_counts=True, login_db=large)],
                       module_defaults=defaults(pg, small, user=role, login_password=password))
        names = ("small exact", "large estimated", "large exact")
        small_exact, large_estimated, large_exact = (ok(run, n) for n in names)
        assert len(small_exact["snapshot"]["tables"]) == 10 and len(large_exact["snapshot"]["tables"]) == 300
        assert large_exact["snapshot"]["tables"]["public.t300"]["rows"] == 300
        assert small_exact["statements"] == large_estimated["statements"] == large_exact["statements"] \
            == SNAPSHOT_STATEMENTS

        rows = cluster.primary.execute(
            "SELECT d.datname, s.query, s.calls, s.toplevel FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE s.userid = '%s'::regrole" % role, dbname=large)
    finally:
        cluster.primary.execute("DROP ROLE IF EXISTS %s" % role)

    # What pg_stat_statements counts (track = top, track_utility = on, the defaults):
    # per snapshot the 5 catalog SELECTs, plus the BEGIN that opens the
    # REPEATABLE READ READ ONLY transaction and the final ROLLBACK as utility
    # statements. The count(*) queries of exact_counts run nested inside one
    # SELECT (query_to_xml), so they are not top-level statements and are not
    # counted: that is exactly what keeps the count fixed.
    assert all(row[3] for row in rows)
    per_db = {}
    for datname, query, calls, dummy in rows:
        words = query.split()[0].upper()
        per_db.setdefault(datname, {}).setdefault(words, 0)
        per_db[datname][words] += calls
    assert per_db == {
        small: {"BEGIN": 1, "SELECT": SNAPSHOT_SELECTS, "ROLLBACK": 1},
        large: {"BEGIN": 2, "SELECT": 2 * SNAPSHOT_SELECTS, "ROLLBACK": 2},
    }, rows
    begins = set(row[1] for row in rows if row[1].upper().startswith("BEGIN"))
    assert begins == {"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"}
    total = dict((d, sum(row[2] for row in rows if row[0] == d)) for d in (small, large))
    assert total == {small: SNAPSHOT_STATEMENTS, large: 2 * SNAPSHOT_STATEMENTS}  # what the module reports


# -- 3. the fingerprint is stable, and survives a dump and restore ---------------------------------

def test_fingerprint_is_stable_and_survives_dump_and_restore(cluster, pg, make_db):
    source = make_db("snap_source")
    restored = make_db("snap_restored", clinic=False)
    cluster.primary.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
                            "ALTER TABLE public.patients DROP COLUMN legacy_code", dbname=source)
    gap = "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.patients'::regclass AND attisdropped"
    assert scalar(cluster, source, gap) == 1

    # The project's own runner: pg_dump -Fc streamed straight into pg_restore.
    tools = ClientTools(ConnectionSettings.from_params(connection_vars(pg, db=source)), server_major=15)
    dummy, stages = tools.run([["pg_dump", "-Fc"], ["pg_restore", "--exit-on-error", "-d", restored]])
    assert [(s["name"], s["returncode"]) for s in stages] == [("pg_dump", 0), ("pg_restore", 0)]
    assert scalar(cluster, restored, gap) == 0  # the restored table has no attnum gap

    run = run_play([snapshot_task("first", register="first", exact_counts=True),
                    snapshot_task("second", exact_counts=True, compare_to="{{ first.snapshot }}"),
                    snapshot_task("restored", exact_counts=True, login_db=restored,
                                  compare_to="{{ first.snapshot }}", row_tolerance_pct=0)],
                   module_defaults=defaults(pg, source))
    first, second, after_restore = ok(run, "first"), ok(run, "second"), ok(run, "restored")
    assert second["fingerprint"] == first["fingerprint"]
    assert second["matches"] is True and second["differences"] == []
    assert after_restore["snapshot"]["database"] == restored
    assert after_restore["fingerprint"] == first["fingerprint"]
    assert after_restore["snapshot"]["schema_objects"] == first["snapshot"]["schema_objects"]
    assert after_restore["differences"] == [] and after_restore["matches"] is True
    rows = dict((t, v["rows"]) for t, v in after_restore["snapshot"]["tables"].items())
    assert rows == dict((t, v["rows"]) for t, v in first["snapshot"]["tables"].items()) == CLINIC_ROWS
    # The NOT VALID check came back NOT VALID (the dump carries the row that breaks it).
    assert after_restore["snapshot"]["constraints"]["public.appointments.appointments_duration_positive"][
        "validated"] is False


# -- 4. a migration's changes are found and named ------------------------------------------------

MIGRATION = """
import psycopg2
conn = psycopg2.connect(host=%(socket)r, port=%(port)d, user="postgres", dbname=%(db)r)
conn.autocommit = True
cur = conn.cursor()
cur.execute("ALTER TABLE public.patients ADD COLUMN email text")
cur.execute("DROP INDEX public.appointments_patient_idx")
cur.execute("INSERT INTO public.appointments (patient_id, starts_at) SELECT 1 + g %% 1200, now() "
            "FROM generate_series(1, 1500) g")
cur.execute("DROP TABLE public.audit_log")
cur.execute("CREATE TABLE public.invoices (id bigint PRIMARY KEY, appointment_id int NOT NULL, amount numeric(10, 2))")
cur.execute("INSERT INTO public.invoices VALUES (1, 999999, 10.00)")
cur.execute("ALTER TABLE public.invoices ADD CONSTRAINT invoices_appointment_fk FOREIGN KEY (appointment_id) "
            "REFERENCES public.appointments (id) NOT VALID")
try:  # patients have many appointments: the unique build fails and leaves an invalid index
    cur.execute("CREATE UNIQUE INDEX CONCURRENTLY appointments_one_per_patient ON public.appointments (patient_id)")
except psycopg2.errors.UniqueViolation:
    pass
else:
    raise SystemExit("the unique index was built")
"""


def test_migration_changes_are_detected(cluster, pg, make_db, tmp_path):
    db = make_db("snap_migration")
    baseline_file = str(tmp_path / "baseline.json")
    script = tmp_path / "migrate.py"
    script.write_text(MIGRATION % dict(socket=pg["socket_dir"], port=pg["port"], db=db))
    compare = dict(exact_counts=True, compare_to="{{ baseline.snapshot }}")
    run = run_play([
        snapshot_task("baseline", register="baseline", exact_counts=True, dest=baseline_file),
        {"name": "migrate", "ansible.builtin.command": {"argv": [sys.executable, str(script)]}},
        snapshot_task("against registered", **compare),
        snapshot_task("against file", exact_counts=True, compare_to=baseline_file),
        snapshot_task("tolerant", exact_counts=True, compare_to=baseline_file, row_tolerance_pct=60),
        dict(snapshot_task("no diff mode", **compare), diff=False),
        dict(snapshot_task("fail on difference", fail_on_difference=True, **compare), ignore_errors=True),
    ], module_defaults=defaults(pg, db), diff=True)
    ok(run, "migrate")
    baseline = ok(run, "baseline")["snapshot"]
    registered, from_file = ok(run, "against registered"), ok(run, "against file")

    for result in (registered, from_file):
        assert result["matches"] is False
        found = set((d["kind"], d["object"]) for d in result["differences"])
        assert found == {
            ("table_removed", "public.audit_log"),
            ("table_added", "public.invoices"),
            ("rows_changed", "public.appointments"),
            ("index_lost", "public.appointments_patient_idx"),
            ("index_lost", "public.audit_log_pkey"),
            ("index_invalid", "public.appointments_one_per_patient"),
            ("constraint_lost", "public.audit_log.audit_log_pkey"),
            ("constraint_not_valid", "public.invoices.invoices_appointment_fk"),
            ("fingerprint_changed", "schema"),
            ("schema_object_changed", "table public.patients"),
            ("schema_object_removed", "table public.audit_log"),
            ("schema_object_removed", "index public.audit_log_pkey"),
            ("schema_object_removed", "constraint public.audit_log.audit_log_pkey"),
            ("schema_object_removed", "sequence public.audit_log_id_seq"),
            ("schema_object_removed", "index public.appointments_patient_idx"),
            ("schema_object_added", "table public.invoices"),
            ("schema_object_added", "index public.invoices_pkey"),
            ("schema_object_added", "constraint public.invoices.invoices_pkey"),
            ("schema_object_added", "constraint public.invoices.invoices_appointment_fk"),
            ("schema_object_added", "index public.appointments_one_per_patient"),
        }, sorted(found)
        by_kind = dict((d["kind"], d) for d in result["differences"])
        rows = by_kind["rows_changed"]
        assert (rows["before"], rows["after"]) == (3001, 4501)
        assert "4501" in rows["message"] and "3001" in rows["message"]
        assert by_kind["fingerprint_changed"]["before"] == baseline["fingerprint"]
        assert by_kind["fingerprint_changed"]["after"] == result["fingerprint"] != baseline["fingerprint"]
    assert registered["differences"] == from_file["differences"]

    tolerant = ok(run, "tolerant")
    assert "rows_changed" not in [d["kind"] for d in tolerant["differences"]]
    assert len(tolerant["differences"]) == len(registered["differences"]) - 1

    assert "diff" not in ok(run, "no diff mode")
    diff = registered["diff"]
    assert "index_lost public.appointments_patient_idx: CREATE INDEX appointments_patient_idx" in diff["before"]
    assert "rows_changed public.appointments: 3001\n" in diff["before"]
    assert "rows_changed public.appointments: 4501\n" in diff["after"]
    assert "table_added public.invoices: 1\n" in diff["after"]
    assert "public.invoices" not in diff["before"]

    failure = failed(run, "fail on difference")
    assert failure["msg"].startswith("%d differences from the baseline: " % len(registered["differences"]))
    assert "Table public.audit_log is gone." in failure["msg"]
    assert "Index public.appointments_one_per_patient is invalid." in failure["msg"]
    assert failure["differences"] == registered["differences"]
    assert run.status == "successful"  # only the ignored task failed


# -- 5. dest --------------------------------------------------------------------------------------

def test_dest_file_and_check_mode(cluster, pg, make_db, tmp_path):
    db = make_db("snap_dest")
    dest = tmp_path / "snapshot.json"
    dest.write_text("an older file, readable by all")
    dest.chmod(0o644)
    run = run_play([snapshot_task("write", dest=str(dest))], module_defaults=defaults(pg, db))
    written = ok(run, "write")
    assert written["changed"] is True and written["dest"] == str(dest)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    with open(dest) as handle:
        assert json.load(handle) == written["snapshot"]
    assert not [n for n in os.listdir(tmp_path) if n != "snapshot.json"], "a temporary file was left behind"

    never = tmp_path / "check-mode.json"
    run = run_play([snapshot_task("would write", dest=str(never))], module_defaults=defaults(pg, db), check=True)
    would = ok(run, "would write")
    assert would["changed"] is True and would["dest"] == str(never)
    assert would["snapshot"]["tables"].keys() == written["snapshot"]["tables"].keys()
    assert would["fingerprint"] == written["fingerprint"]
    assert not never.exists()


# -- 6. faults ------------------------------------------------------------------------------------

def test_held_lock_fails_fast_with_a_clear_message(cluster, pg, make_db):
    db = make_db("snap_locked")
    holder = cluster.primary.connect(db)
    holder.autocommit = False
    # Should the snapshot wait for ever, end the lock holder so the test fails instead of hanging.
    rescue = threading.Timer(25, cluster.primary.execute,
                             ("SELECT pg_terminate_backend(%d)" % holder.get_backend_pid(),))
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE public.appointments IN ACCESS EXCLUSIVE MODE")
        rescue.start()
        started = time.monotonic()
        run = run_play([snapshot_task("blocked", lock_timeout=1)], module_defaults=defaults(pg, db))
        elapsed = time.monotonic() - started
    finally:
        rescue.cancel()
        if not holder.closed:
            try:
                holder.rollback()
            except Exception:  # terminated by the rescue
                pass
            holder.close()
    result = failed(run, "blocked")
    # The default lock_timeout is 30 s: giving up well before shows the option worked.
    assert elapsed < 20, "the snapshot waited %.1f s for the lock" % elapsed
    msg = result["msg"]
    assert "lock" in msg.lower() and "lock_timeout" in msg
    assert "\n" not in msg
    assert "Traceback" not in run.all_text
    # Nothing of the snapshot is left waiting on the server (a backend may need a moment to exit).
    deadline = time.monotonic() + 10
    while scalar(cluster, db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND application_name LIKE 'pgops.runbook%'"):
        assert time.monotonic() < deadline, "the snapshot's session is still on the server"
        time.sleep(0.1)


@pytest.mark.parametrize("verbosity", [0, 3])
def test_bad_input_and_connection_faults(cluster, pg, make_db, tmp_path, verbosity):
    db = make_db("snap_faults", clinic=False)
    right = pg["passwords"]["pgops_admin"]
    wrong = "Wr0ng-Pa55word-qrs"
    missing = str(tmp_path / "no-such-baseline.json")
    run = run_play([
        snapshot_task("works"),
        dict(snapshot_task("missing file", compare_to=missing), ignore_errors=True),
        dict(snapshot_task("not a snapshot", compare_to={"tables": {}, "taken_at": "yesterday"}),
             ignore_errors=True),
        dict(snapshot_task("negative tolerance", row_tolerance_pct=-1), ignore_errors=True),
        dict(snapshot_task("closed port", login_port=free_port()), ignore_errors=True),
        dict(snapshot_task("wrong password", login_password=wrong), ignore_errors=True),
    ], module_defaults=defaults(pg, db), verbosity=verbosity)
    ok(run, "works")

    msg = failed(run, "missing file")["msg"]
    assert "compare_to" in msg and missing in msg and "No such file" in msg
    msg = failed(run, "not a snapshot")["msg"]
    assert msg.startswith("Option compare_to must be a snapshot made by db_snapshot")
    msg = failed(run, "negative tolerance")["msg"]
    assert "row_tolerance_pct" in msg and "-1" in msg
    msg = failed(run, "closed port")["msg"]
    assert msg.startswith("Cannot reach PostgreSQL at 127.0.0.1:")
    msg = failed(run, "wrong password")["msg"]
    assert msg.startswith("Authentication failed for pgops_admin@127.0.0.1:%d/%s" % (pg["port"], db))

    assert right not in run.all_text
    assert wrong not in run.all_text
    if verbosity:
        assert "<127.0.0.1>" in run.stdout or "ESTABLISH LOCAL CONNECTION" in run.stdout  # -vvv really was on


# -- 7. a non-superuser owner --------------------------------------------------------------------

def test_database_owner_without_superuser_can_snapshot(cluster, pg, make_db):
    own = make_db("snap_owned", clinic=False)
    mixed = make_db("snap_owned_mixed", clinic=False)
    for db in (own, mixed):
        cluster.primary.execute("SET ROLE pgops_app; " + CLINIC_SQL, dbname=db)
    # A table the owner of the database may not read.
    cluster.primary.execute("CREATE TABLE public.payroll (id int PRIMARY KEY, salary numeric);"
                            "INSERT INTO public.payroll VALUES (1, 1000)", dbname=mixed)
    run = run_play([
        snapshot_task("estimated"),
        snapshot_task("exact", exact_counts=True),
        snapshot_task("estimated, unreadable table", login_db=mixed),
        dict(snapshot_task("exact, unreadable table", login_db=mixed, exact_counts=True), ignore_errors=True),
    ], module_defaults=defaults(pg, own, user="pgops_app"))
    estimated, exact = ok(run, "estimated"), ok(run, "exact")
    assert dict((t, v["rows"]) for t, v in exact["snapshot"]["tables"].items()) == CLINIC_ROWS
    assert exact["fingerprint"] == estimated["fingerprint"]
    assert exact["snapshot"]["constraints"]["public.appointments.appointments_duration_positive"]["validated"] is False
    assert "function public.touch_updated_at()" in exact["snapshot"]["schema_objects"]

    # Estimates and sizes need no privilege on the table...
    payroll = ok(run, "estimated, unreadable table")["snapshot"]["tables"]["public.payroll"]
    assert payroll["total_bytes"] > 0
    # ...counting its rows does, and the failure says so in one sentence.
    msg = failed(run, "exact, unreadable table")["msg"]
    assert msg.startswith("Permission denied while reading tables") and "payroll" in msg
