"""query_check through Ansible against the real server: assertions that hold and fail, a write
refused, timings against a baseline (a dropped index makes a query really slower), a held lock
making a timed query hit statement_timeout, ANALYZE, check mode, and bad input."""

import threading

import psycopg2
import pytest

from tests.conftest import connection_vars
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

LOOKUP = "SELECT id FROM qc_patients WHERE email = 'p4242@example.org'"


def query_check(pg, db, check=False, name="qc", **options):
    run = run_play([{"name": name, "pgops.runbook.query_check": dict(connection_vars(pg, user="pgops_app", db=db), **options)}],
                   check=check)
    return run.result(name), run


@pytest.fixture
def patients(cluster, database):
    """A table big enough that a lookup without its index is a slow sequential scan."""
    for statement in (
        "CREATE TABLE qc_patients (id bigint PRIMARY KEY, email text NOT NULL, note text)",
        "INSERT INTO qc_patients SELECT g, 'p' || g || '@example.org', repeat('x', 200) FROM generate_series(1, 200000) g",
        "CREATE INDEX qc_patients_email ON qc_patients (email)",
        "ALTER TABLE qc_patients OWNER TO pgops_app",
        "CREATE SEQUENCE qc_numbers", "ALTER SEQUENCE qc_numbers OWNER TO pgops_app",
        "ANALYZE qc_patients",
    ):
        cluster.primary.execute(statement, dbname=database)
    return database


def test_assertions_hold_or_fail_each_with_its_value(pg, patients):
    assertions = [
        {"name": "no patient without email", "sql": "SELECT count(*) = 0 FROM qc_patients WHERE email IS NULL"},
        {"name": "patient count", "sql": "SELECT count(*) FROM qc_patients", "expect": 200000},
        {"name": "no duplicate emails", "sql": "SELECT email FROM qc_patients GROUP BY email HAVING count(*) > 1",
         "rows": 0},
        {"name": "first email", "sql": "SELECT email FROM qc_patients WHERE id = 1", "expect": "p1@example.org"},
    ]
    result, dummy = query_check(pg, patients, assertions=assertions)
    assert not result["failed"], result["msg"]
    assert [(a["name"], a["ok"], a["value"]) for a in result["assertions"]] == [
        ("no patient without email", True, True), ("patient count", True, 200000), ("no duplicate emails", True, 0),
        ("first email", True, "p1@example.org")]
    assert result["changed"] is False
    failing = [
        {"name": "too few", "sql": "SELECT count(*) FROM qc_patients", "expect": 5},
        {"name": "holds", "sql": "SELECT true"},
        {"name": "rows", "sql": "SELECT id FROM qc_patients WHERE id <= 3", "rows": 0},
        {"name": "two columns", "sql": "SELECT 1, 2"},
    ]
    result, dummy = query_check(pg, patients, assertions=failing)
    assert result["failed"]
    assert [a["ok"] for a in result["assertions"]] == [False, True, False, False]
    assert result["msg"] == ("3 of 4 assertions failed: too few: 200000, expected 5; rows: 3 rows, 0 expected; two columns: "
                             "returned 1 rows of 2 columns; an assertion with expect must return one value.")


def test_a_write_attempt_is_refused_naming_the_assertion_and_changes_nothing(cluster, pg, patients):
    for sql in ("DELETE FROM qc_patients WHERE id < 10", "SELECT nextval('qc_numbers') > 0",
                "WITH gone AS (DELETE FROM qc_patients WHERE id = 1 RETURNING id) SELECT count(*) = 1 FROM gone"):
        result, run = query_check(pg, patients, assertions=[{"name": "sneaky", "sql": sql}])
        assert result["failed"], sql
        assert result["msg"].startswith("Option assertions: assertion 'sneaky' tries to change the database"), result["msg"]
        assert "query_check only reads" in result["msg"] and "Traceback" not in run.all_text
    assert cluster.primary.execute("SELECT count(*) FROM qc_patients", dbname=patients) == [(200000,)]
    # A second statement could end the read-only transaction: refused before anything runs.
    result, dummy = query_check(pg, patients, assertions=[{"name": "two", "sql": "ROLLBACK; DELETE FROM qc_patients"}])
    assert result["failed"] and result["msg"] == "Option assertions: 'two' must be exactly one SQL statement, got 2."
    assert cluster.primary.execute("SELECT count(*) FROM qc_patients", dbname=patients) == [(200000,)]


def test_a_dropped_index_makes_the_query_slower_than_the_baseline(cluster, pg, patients):
    timings = [{"name": "lookup", "sql": LOOKUP}, {"name": "count", "sql": "SELECT count(*) FROM qc_patients WHERE id < 100"}]
    before, dummy = query_check(pg, patients, timings=timings, repeat=3)
    assert not before["failed"], before["msg"]
    lookup = before["timings"][0]
    assert lookup["name"] == "lookup" and len(lookup["runs_ms"]) == 3 and lookup["slowdown_pct"] is None
    assert lookup["plan"] == ["Index Scan on qc_patients"] or lookup["plan"] == ["Bitmap Index Scan", "Bitmap Heap Scan on qc_patients"] \
        or "Index" in " ".join(lookup["plan"]), lookup["plan"]
    same, dummy = query_check(pg, patients, timings=timings, repeat=3, baseline=before, max_slowdown_pct=50, min_slowdown_ms=5)
    assert not same["failed"], same["msg"]
    assert same["timings"][0]["before_ms"] == lookup["median_ms"] and same["timings"][0]["slowed"] is False

    cluster.primary.execute("DROP INDEX qc_patients_email", dbname=patients)
    after, dummy = query_check(pg, patients, timings=timings, repeat=3, baseline=before["timings"], max_slowdown_pct=50)
    assert after["failed"]
    slowed = after["timings"][0]
    assert slowed["slowed"] is True and slowed["slowdown_pct"] > 50 and any("Seq Scan on qc_patients" in p for p in slowed["plan"])
    assert after["timings"][1]["slowed"] is False
    assert after["msg"].startswith("1 of 2 queries are more than 50 % slower than the baseline: lookup "), after["msg"]
    assert "Seq Scan on qc_patients" in after["msg"]


def test_a_held_lock_makes_a_timed_query_fail_at_statement_timeout(cluster, pg, patients):
    holder = psycopg2.connect(host=pg["host"], port=pg["port"], user="pgops_app", dbname=patients,
                              password=pg["passwords"]["pgops_app"], sslmode="require")
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE qc_patients IN ACCESS EXCLUSIVE MODE")
        finished = []
        worker = threading.Thread(target=lambda: finished.append(
            query_check(pg, patients, timings=[{"name": "lookup", "sql": LOOKUP}], statement_timeout=1, repeat=1)))
        worker.start()
        worker.join(120)
        assert finished, "query_check did not return while the lock was held"
        result, run = finished[0]
        assert result["failed"]
        assert result["msg"] == ("The timing 'lookup' was cancelled after statement_timeout (1 s) - a slow query or a lock "
                                 "held by another session: canceling statement due to statement timeout."), result["msg"]
        assert "Traceback" not in run.all_text
    finally:
        holder.rollback()
        holder.close()


def test_analyze_runs_unless_in_check_mode(cluster, pg, patients):
    cluster.primary.execute("INSERT INTO qc_patients SELECT g, 'n' || g, '' FROM generate_series(200001, 200100) g",
                            dbname=patients)

    def last_analyze():
        return cluster.primary.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'qc_patients'",
                                       dbname=patients)[0][0]

    first = last_analyze()
    checked, dummy = query_check(pg, patients, check=True, analyze=True, analyze_tables=["public.qc_patients"])
    assert not checked["failed"] and checked["changed"] and checked["analyzed"] == ["public.qc_patients"]
    assert last_analyze() == first
    done, dummy = query_check(pg, patients, analyze=True, analyze_tables=["qc_patients"])
    assert not done["failed"] and done["changed"], done["msg"]
    assert last_analyze() != first
    # check mode runs the read-only queries: they cannot change anything.
    count = {"name": "n", "sql": "SELECT count(*) FROM qc_patients", "expect": 200100}
    checked, dummy = query_check(pg, patients, check=True, assertions=[count])
    assert not checked["failed"] and checked["assertions"][0]["ok"] and not checked["changed"]


@pytest.mark.parametrize("options, message", [
    ({"repeat": 0, "timings": [{"name": "a", "sql": "SELECT 1"}]}, "Option repeat must be 1 or more, got 0."),
    ({"max_slowdown_pct": -1}, "Option max_slowdown_pct must be 0 or more, got -1.0."),
    ({"statement_timeout": 0}, "Option statement_timeout must be 1 second or more, got 0."),
    ({"assertions": [{"name": "a", "sql": "SELECT 1"}, {"name": "a", "sql": "SELECT 2"}]},
     "Option assertions: the name 'a' is used twice."),
    ({"assertions": [{"name": "a", "sql": "SELECT 1", "expect": 1, "rows": 1}]},
     "Option assertions: 'a' sets both expect and rows; an assertion checks one of them."),
    ({"assertions": [{"name": "a", "sql": "  "}]}, "Option assertions: 'a' must be exactly one SQL statement, got 0."),
    ({"timings": [{"name": "t", "sql": "SELECT 'open"}]}, "Option timings: 't': Line 1: "),
    ({"baseline": {"timings": [{"name": "t"}]}}, "Option baseline must be an earlier query_check result"),
    ({"baseline": "/nonexistent/baseline.json"}, "Option baseline: cannot read /nonexistent/baseline.json: No such file"),
    ({"analyze_tables": ["x"]}, "Option analyze_tables goes with analyze=true."),
    ({"analyze": True, "analyze_tables": ["a.b.c"]}, "Option analyze_tables: 'a.b.c' is not a table name"),
    ({"analyze": True, "analyze_tables": ["no_such_table"]}, "Option analyze_tables: relation \"no_such_table\" does not exist."),
    ({"assertions": [{"name": "bad", "sql": "SELECT nosuchcolumn FROM qc_patients"}]},
     "The assertion 'bad' failed: column \"nosuchcolumn\" does not exist."),
    ({"assertions": [{"sql": "SELECT 1"}]}, "missing required arguments: name"),
])
def test_bad_input_is_one_sentence(cluster, pg, patients, options, message):
    result, run = query_check(pg, patients, **options)
    assert result["failed"] and message in result["msg"], result["msg"]
    assert "Traceback" not in run.all_text
    assert pg["passwords"]["pgops_app"] not in run.all_text
    assert cluster.primary.execute("SELECT count(*) FROM qc_patients", dbname=patients) == [(200000,)]
