"""health_check through Ansible against a real primary and standby, each fault made real."""

import os
import re
import subprocess
import threading
import time

import psycopg2
import pytest

from tests.conftest import connection_vars
from tests.harness.network import LoopbackProxy
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def no_slow_statements_from_other_files(cluster):
    """Statements other test files ran earlier on this server (a lock wait, a pg_sleep) stay in
    pg_stat_statements and would make slow_queries fail here: start this file with none."""
    cluster.primary.execute("SELECT pg_stat_statements_reset()", dbname="appdb")


def health(pg, check=False, verbosity=0, **options):
    """Run health_check once; return (result, run)."""
    conn = options.pop("conn", None) or connection_vars(pg)
    options.setdefault("fail_on", "never")
    run = run_play([{"name": "health", "pgops.runbook.health_check": dict(conn, **options), "register": "h"}],
                   check=check, verbosity=verbosity)
    return run.result("health"), run


def by_name(result):
    return dict((c["name"], c) for c in result["checks"])


def check_of(pg, name, **options):
    result, dummy = health(pg, checks=[name], **options)
    assert not result["failed"], result.get("msg")
    return by_name(result)[name]


@pytest.fixture(scope="module")
def healthdb(cluster):
    cluster.primary.execute("CREATE DATABASE healthdb OWNER pgops_app")
    yield "healthdb"


def flush_stats(cluster, sql, dbname):
    """Run `sql` in its own session and end it: a backend flushes its statistics when it exits."""
    conn = cluster.primary.connect(dbname)
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()
    time.sleep(0.3)


def test_default_run_reports_every_check_with_a_fixed_number_of_statements(cluster, pg, healthdb):
    result, run = health(pg)
    assert not result["failed"], result.get("msg")
    names = [c["name"] for c in result["checks"]]
    assert "orphaned_records" not in names  # opt-in
    expected = {"connection", "server_version", "client_tools", "database_size", "table_count", "index_count",
                "foreign_key_count", "connections", "cache_hit_ratio", "long_running_queries", "idle_in_transaction",
                "blocking_locks", "prepared_transactions", "deadlocks", "xid_wraparound", "sequence_exhaustion",
                "invalid_indexes", "unused_indexes", "table_bloat", "seq_scan_heavy", "replication",
                "replication_slots", "archiver", "backup_freshness", "migration_status", "not_valid_constraints", "slow_queries",
                "disk_space", "security"}
    assert set(names) == expected
    assert by_name(result)["migration_status"]["status"] == "skipped"  # no migrations project given
    for item in result["checks"]:
        assert set(item) >= {"name", "status", "value", "threshold", "message"}
        assert item["status"] in ("ok", "warning", "critical", "skipped")
    summary = result["summary"]
    assert summary["total"] == len(expected)
    assert re.match(r"^\d+ checks? passed, \d+ warnings?, \d+ failed", summary["line"])
    assert by_name(result)["replication"]["value"] == 1  # the standby streams
    assert by_name(result)["server_version"]["value"] == 15


def test_statement_count_does_not_grow_with_tables_and_matches_the_server(cluster, pg):
    """Counted by the server (pg_stat_statements, top-level statements of a dedicated role)."""
    cluster.primary.execute("CREATE ROLE stmt_counter LOGIN SUPERUSER PASSWORD 'count-Pa55-xyz'")
    counts = {}
    for db, tables in (("stmt10", 10), ("stmt300", 300)):
        cluster.primary.execute("CREATE DATABASE %s" % db)
        cluster.primary.execute(
            "DO $$ BEGIN FOR i IN 1..%d LOOP "
            "EXECUTE format('CREATE TABLE t%%s (id int PRIMARY KEY, parent int REFERENCES t1(id), v text)', i); "
            "EXECUTE format('CREATE INDEX ON t%%s (v)', i); END LOOP; END $$" % tables, dbname=db)
        cluster.primary.execute("SELECT pg_stat_statements_reset()", dbname="appdb")
        pg_counter = dict(pg, passwords=dict(pg["passwords"], stmt_counter="count-Pa55-xyz"))
        result, dummy = health(pg, conn=connection_vars(pg_counter, user="stmt_counter", db=db))
        rows = cluster.primary.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE userid = 'stmt_counter'::regrole", dbname="appdb")
        counts[db] = (result["statements"], int(rows[0][0]), by_name(result)["table_count"]["value"])
    assert counts["stmt10"][2] == 10 and counts["stmt300"][2] == 300
    assert counts["stmt10"][0] == counts["stmt300"][0]
    # The server saw exactly what the module says it sent.
    assert counts["stmt10"][0] == counts["stmt10"][1]
    assert counts["stmt300"][0] == counts["stmt300"][1]


def test_catalog_counts_and_minimums(cluster, pg, healthdb):
    cluster.primary.execute(
        "CREATE TABLE patients (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);"
        "CREATE TABLE appointments (id serial PRIMARY KEY, patient_id bigint REFERENCES patients(id), at timestamptz);"
        "CREATE INDEX appointments_at ON appointments (at);", dbname=healthdb)
    conn = connection_vars(pg, db=healthdb)
    result, dummy = health(pg, conn=conn, checks=["table_count", "index_count", "foreign_key_count", "database_size"],
                           thresholds={"table_count": {"minimum": 5}, "database_size": {"warning_bytes": 1}})
    checks = by_name(result)
    assert checks["table_count"]["value"] == 2 and checks["table_count"]["status"] == "warning"
    assert "fewer than the expected 5" in checks["table_count"]["message"]
    assert checks["index_count"]["value"] == 3 and checks["index_count"]["status"] == "ok"
    assert checks["foreign_key_count"]["value"] == 1
    assert checks["database_size"]["status"] == "warning" and checks["database_size"]["value"] > 1000000


def test_idle_in_transaction_session(cluster, pg):
    idle = cluster.primary.connect("appdb")
    idle.autocommit = False
    with idle.cursor() as cur:
        cur.execute("SELECT 1")  # opens the transaction, then the session idles
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        time.sleep(1.5)
        item = check_of(pg, "idle_in_transaction", thresholds={"idle_in_transaction": {"warning_seconds": 1}})
        assert item["status"] == "warning"
        assert pid in [d["pid"] for d in item["details"]]
        assert "idle in transaction" in item["message"]
    finally:
        idle.rollback()
        idle.close()
    item = check_of(pg, "idle_in_transaction", thresholds={"idle_in_transaction": {"warning_seconds": 1}})
    assert pid not in [d["pid"] for d in item["details"]]


def test_blocking_lock_names_who_blocks_whom_and_fails_by_policy(cluster, pg, healthdb):
    cluster.primary.execute("CREATE TABLE lockme (id int)", dbname=healthdb)
    holder = cluster.primary.connect(healthdb)
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        holder_pid = cur.fetchone()[0]
        cur.execute("LOCK TABLE lockme IN ACCESS EXCLUSIVE MODE")
    waiter = cluster.primary.connect(healthdb)
    with waiter.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        waiter_pid = cur.fetchone()[0]
    thread = threading.Thread(target=lambda: waiter.cursor().execute("SELECT count(*) FROM lockme"))
    thread.start()
    try:
        time.sleep(1.5)
        result, run = health(pg, conn=connection_vars(pg, db=healthdb), checks=["blocking_locks"], fail_on="warning",
                             thresholds={"blocking_locks": {"warning_seconds": 1, "critical_seconds": 600}})
        assert result["failed"]
        assert "blocking_locks" in result["msg"] and "Traceback" not in run.all_text
        item = by_name(result)["blocking_locks"]
        assert item["status"] == "warning"
        blocked = [d for d in item["details"] if d["pid"] == waiter_pid]
        assert blocked and blocked[0]["blocked_by"] == [holder_pid]
        assert blocked[0]["relation"] == "lockme" and blocked[0]["wanted_mode"] == "AccessShareLock"
        assert blocked[0]["blockers"][0]["pid"] == holder_pid
        assert blocked[0]["seconds"] >= 1
    finally:
        holder.rollback()
        thread.join(10)
        holder.close()
        waiter.close()


def test_long_running_query(cluster, pg):
    runner = cluster.primary.connect("appdb")

    def long_query():
        try:
            # Long enough to outlast both checks on a loaded machine; cancelled below, so it never
            # completes (a completed one would stay in pg_stat_statements as a slow query).
            runner.cursor().execute("SELECT pg_sleep(120) /* long one */")
        except psycopg2.errors.QueryCanceled:
            pass  # cancelled below, once the check has seen it

    thread = threading.Thread(target=long_query)
    thread.start()
    try:
        time.sleep(1.5)
        item = check_of(pg, "long_running_queries",
                        thresholds={"long_running_queries": {"warning_seconds": 1, "critical_seconds": 3600}})
        assert item["status"] == "warning"
        assert any("long one" in d["query"] for d in item["details"])
        # query texts may hold patient data: query_text_length 0 hides them
        item = check_of(pg, "long_running_queries", query_text_length=0,
                        thresholds={"long_running_queries": {"warning_seconds": 1}})
        assert item["details"] and all(d["query"] == "" for d in item["details"])
    finally:
        runner.cancel()
        thread.join(10)
        runner.close()


def test_connections_near_max_connections(cluster, pg):
    max_connections = int(cluster.primary.execute("SHOW max_connections")[0][0])
    held = []
    try:
        # Fill to ~85 % of max_connections with real sessions.
        while len(held) < int(max_connections * 0.85):
            held.append(cluster.primary.connect("appdb"))
        item = check_of(pg, "connections")
        assert item["status"] == "warning", item
        assert item["value"] >= 80
        assert item["details"]["max_connections"] == max_connections
    finally:
        for conn in held:
            conn.close()


def test_invalid_index_left_by_failed_concurrent_build(cluster, pg, healthdb):
    cluster.primary.execute("CREATE TABLE dupes (v int); INSERT INTO dupes VALUES (1), (1)", dbname=healthdb)
    with pytest.raises(psycopg2.errors.UniqueViolation):
        cluster.primary.execute("CREATE UNIQUE INDEX CONCURRENTLY dupes_v_key ON dupes (v)", dbname=healthdb)
    item = check_of(pg, "invalid_indexes", conn=connection_vars(pg, db=healthdb))
    assert item["status"] == "warning"
    assert [d["index"] for d in item["details"]] == ["dupes_v_key"]
    cluster.primary.execute("DROP INDEX dupes_v_key", dbname=healthdb)
    assert check_of(pg, "invalid_indexes", conn=connection_vars(pg, db=healthdb))["status"] == "ok"


def test_bloated_table_and_sequential_scans(cluster, pg, healthdb):
    cluster.primary.execute(
        "CREATE TABLE bloated (id int, v text) WITH (autovacuum_enabled = false);"
        "INSERT INTO bloated SELECT g, 'x' FROM generate_series(1, 20000) g;", dbname=healthdb)
    flush_stats(cluster, "DELETE FROM bloated WHERE id <= 12000", healthdb)
    flush_stats(cluster, "SELECT count(*) FROM bloated WHERE v = 'y'; " * 60, healthdb)
    conn = connection_vars(pg, db=healthdb)
    result, dummy = health(pg, conn=conn, checks=["table_bloat", "seq_scan_heavy"],
                           thresholds={"seq_scan_heavy": {"min_rows": 5000}})
    bloat, scans = by_name(result)["table_bloat"], by_name(result)["seq_scan_heavy"]
    assert bloat["status"] == "critical"  # 60 % dead >= 50 %
    row = [d for d in bloat["details"] if d["table"] == "public.bloated"][0]
    assert row["dead_tuples"] == 12000 and row["dead_pct"] == 60.0
    assert scans["status"] == "warning"
    assert [d["table"] for d in scans["details"]] == ["public.bloated"]
    assert scans["details"][0]["seq_scan"] >= 60
    cluster.primary.execute("VACUUM bloated", dbname=healthdb)
    time.sleep(0.5)
    assert check_of(pg, "table_bloat", conn=conn)["status"] == "ok"


def test_unused_index(cluster, pg, healthdb):
    cluster.primary.execute(
        "CREATE TABLE lookups (id int, code text); INSERT INTO lookups SELECT g, md5(g::text) FROM generate_series(1, 20000) g;"
        "CREATE INDEX lookups_code ON lookups (code);", dbname=healthdb)
    item = check_of(pg, "unused_indexes", conn=connection_vars(pg, db=healthdb),
                    thresholds={"unused_indexes": {"min_size_bytes": 262144}})
    assert item["status"] == "warning"
    assert "public.lookups_code" in [d["index"] for d in item["details"]]
    assert all(d["bytes"] >= 262144 for d in item["details"])


def test_sequences_near_exhaustion_including_integer_column_cap(cluster, pg, healthdb):
    cluster.primary.execute(
        "CREATE TABLE counters (id serial PRIMARY KEY); SELECT setval('counters_id_seq', 2000000000);"
        "CREATE TABLE legacy (id integer); CREATE SEQUENCE legacy_id_seq AS bigint OWNED BY legacy.id;"
        "SELECT setval('legacy_id_seq', 1700000000);"
        "CREATE SEQUENCE roomy AS bigint; SELECT setval('roomy', 1700000000);", dbname=healthdb)
    item = check_of(pg, "sequence_exhaustion", conn=connection_vars(pg, db=healthdb))
    found = dict((d["sequence"], d) for d in item["details"])
    assert item["status"] == "critical"
    assert found["public.counters_id_seq"]["used_pct"] > 93
    # bigint sequence, but the integer column overflows at 2^31: 79 % used
    assert 75 <= found["public.legacy_id_seq"]["used_pct"] < 90
    assert "public.roomy" not in found


def test_thousands_of_sequences_are_read_in_chunks_without_exhausting_the_lock_table(cluster, pg):
    """One statement over every sequence would lock them all at once (max_locks_per_transaction
    64 x (60 + 5) = 4160 slots here); the check reads 416 per statement and still finds the last one."""
    cluster.primary.execute("CREATE DATABASE manyseq")
    cluster.primary.execute("DO $$ BEGIN FOR i IN 1..4500 LOOP EXECUTE format('CREATE SEQUENCE s%s', i); "
                            "EXECUTE format('SELECT nextval(%L)', 's' || i); END LOOP; END $$", dbname="manyseq")
    cluster.primary.execute("CREATE SEQUENCE zz_last AS smallint; SELECT setval('zz_last', 32000)", dbname="manyseq")
    result, dummy = health(pg, conn=connection_vars(pg, db="manyseq"), checks=["sequence_exhaustion"])
    item = by_name(result)["sequence_exhaustion"]
    assert item["status"] == "critical", item["message"]
    assert [d["sequence"] for d in item["details"]] == ["public.zz_last"]
    # context + listing + ceil(4501 / 416) chunks
    assert result["statements"] == 1 + 1 + 11


def test_prepared_transaction_left_open(cluster, pg):
    conn = cluster.primary.connect("appdb")
    conn.autocommit = False
    conn.tpc_begin("pgops-forgotten")
    conn.cursor().execute("SELECT 1")
    conn.tpc_prepare()
    conn.close()
    try:
        item = check_of(pg, "prepared_transactions", thresholds={"prepared_transactions": {"warning_seconds": 0}})
        assert item["status"] == "warning"
        assert [d["gid"] for d in item["details"]] == ["pgops-forgotten"]
    finally:
        cluster.primary.execute("ROLLBACK PREPARED 'pgops-forgotten'", dbname="appdb")
    assert check_of(pg, "prepared_transactions", thresholds={"prepared_transactions": {"warning_seconds": 0}})["status"] == "ok"


def test_deadlock_is_counted(cluster, pg):
    cluster.primary.execute("CREATE DATABASE deadlockdb")
    cluster.primary.execute("CREATE TABLE a (id int); CREATE TABLE b (id int); INSERT INTO a VALUES (1); INSERT INTO b VALUES (1)",
                            dbname="deadlockdb")
    first, second = cluster.primary.connect("deadlockdb"), cluster.primary.connect("deadlockdb")
    first.autocommit = second.autocommit = False
    first.cursor().execute("UPDATE a SET id = 2")
    second.cursor().execute("UPDATE b SET id = 2")
    errors = []

    def cross(conn, table):
        try:
            conn.cursor().execute("UPDATE %s SET id = 3" % table)
        except psycopg2.errors.DeadlockDetected as exc:
            errors.append(exc)
        finally:
            conn.rollback()

    threads = [threading.Thread(target=cross, args=(first, "b")), threading.Thread(target=cross, args=(second, "a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    first.close()
    second.close()
    assert len(errors) == 1  # the server broke one real deadlock
    time.sleep(0.5)
    item = check_of(pg, "deadlocks", conn=connection_vars(pg, db="deadlockdb"))
    assert item["details"]["deadlocks"] == 1
    assert item["status"] == "warning"  # 1 per hour reaches warning_per_hour 1


def test_xid_age_grows_and_is_judged_against_autovacuum_freeze_max_age(cluster, pg):
    before = check_of(pg, "xid_wraparound")
    # Consume 3000 real transaction IDs, one committed transaction each.
    cluster.primary.execute("DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$",
                            dbname="appdb")
    # A threshold of 0.001 % of autovacuum_freeze_max_age (200 M) is 2000 transaction IDs.
    item = check_of(pg, "xid_wraparound", thresholds={"xid_wraparound": {"warning_pct": 0.001}})
    assert item["value"] >= before["value"] + 3000
    assert item["details"]["freeze_max_age"] == 200000000
    assert item["status"] == "warning"
    assert check_of(pg, "xid_wraparound", thresholds={"xid_wraparound": {"critical_age": 2000}})["status"] == "critical"


def test_not_valid_foreign_key_hides_orphans(cluster, pg, healthdb):
    cluster.primary.execute(
        "CREATE TABLE wards (id int PRIMARY KEY); INSERT INTO wards VALUES (1);"
        "CREATE TABLE beds (id int, ward_id int, ward_code int); INSERT INTO beds VALUES (1, 1, 1), (2, 99, 7), (3, NULL, 8);"
        "ALTER TABLE beds ADD CONSTRAINT beds_ward_fk FOREIGN KEY (ward_id) REFERENCES wards (id) NOT VALID;",
        dbname=healthdb)
    conn = connection_vars(pg, db=healthdb)
    result, dummy = health(pg, conn=conn, checks=["default", "orphaned_records"], skip_checks=["disk_space"],
                           relationships=[dict(child_table="beds", child_column="ward_code",
                                               parent_table="public.wards", parent_column="id")])
    checks = by_name(result)
    assert checks["not_valid_constraints"]["status"] == "warning"
    assert "beds_ward_fk" in checks["not_valid_constraints"]["message"]
    orphans = checks["orphaned_records"]
    assert orphans["status"] == "critical"
    per = dict((d["relationship"], d["orphans"]) for d in orphans["details"])
    assert per["public.beds.beds_ward_fk (NOT VALID)"] == 1  # row 2; the NULL row is not an orphan
    assert per["beds.ward_code -> public.wards.id"] == 2  # rows 2 and 3
    assert "disk_space" not in checks


def test_orphan_check_reports_a_timeout_as_a_warning_not_a_failure(cluster, pg, healthdb):
    cluster.primary.execute("CREATE TABLE big_child (parent int); INSERT INTO big_child SELECT g FROM generate_series(1, 300000) g;"
                            "CREATE TABLE big_parent (id int)", dbname=healthdb)
    item = check_of(pg, "orphaned_records", conn=connection_vars(pg, db=healthdb),
                    relationships=[dict(child_table="big_child", child_column="parent", parent_table="big_parent",
                                        parent_column="id")],
                    thresholds={"orphaned_records": {"statement_timeout_ms": 1}})
    timed_out = [d for d in item["details"] if d["relationship"].startswith("big_child")][0]
    assert timed_out["orphans"] is None and "statement timeout" in timed_out["error"]
    assert item["status"] in ("warning", "critical")


def test_slow_queries_from_pg_stat_statements_and_skipped_without_it(cluster, pg):
    for dummy in range(3):
        cluster.primary.execute("SELECT pg_sleep(0.3) /* slow report */", dbname="appdb")
    item = check_of(pg, "slow_queries", thresholds={"slow_queries": {"warning_ms": 250, "critical_ms": 100000}})
    assert item["status"] == "warning"
    assert any("slow report" in d["query"] and d["mean_ms"] >= 250 for d in item["details"])
    skipped = check_of(pg, "slow_queries", conn=connection_vars(pg, db="postgres"))
    assert skipped["status"] == "skipped"
    assert "pg_stat_statements" in skipped["message"]


def test_cache_misses_lower_the_hit_ratio(cluster, pg):
    cluster.primary.execute("CREATE DATABASE cachedb")
    # CREATE TABLE AS writes through a small ring buffer, and a sequential scan of
    # a table larger than a quarter of shared_buffers reads through one too: the
    # scan's blocks come from outside shared buffers, as on a cold cache.
    cluster.primary.execute("CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 250000) g",
                            dbname="cachedb")
    cluster.primary.execute("SELECT pg_stat_reset()", dbname="cachedb")
    flush_stats(cluster, "SELECT count(*) FROM big", "cachedb")
    item = check_of(pg, "cache_hit_ratio", conn=connection_vars(pg, db="cachedb"))
    assert item["details"]["blks_read"] > 1000
    assert item["status"] == "warning" and item["value"] < 90


def test_archive_failures_are_critical(cluster, pg):
    cluster.primary.execute("ALTER SYSTEM SET archive_command = 'false'")
    cluster.primary.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)
        cluster.primary.execute("CREATE TABLE IF NOT EXISTS wal_maker (v int); INSERT INTO wal_maker VALUES (1)", dbname="appdb")
        cluster.primary.execute("SELECT pg_switch_wal()")
        deadline = time.time() + 20
        while time.time() < deadline and not cluster.primary.execute(
                "SELECT last_failed_time IS NOT NULL FROM pg_stat_archiver")[0][0]:
            time.sleep(0.3)
        item = check_of(pg, "archiver")
        assert item["status"] == "critical"
        assert "failing" in item["message"]
    finally:
        cluster.primary.execute("ALTER SYSTEM RESET archive_command")
        cluster.primary.execute("SELECT pg_reload_conf()")
    deadline = time.time() + 30
    while time.time() < deadline:
        cluster.primary.execute("SELECT pg_switch_wal()")
        if check_of(pg, "archiver")["status"] == "ok":
            break
        time.sleep(1)
    assert check_of(pg, "archiver")["status"] == "ok"


def test_security_flags_a_remote_trust_rule(cluster, pg):
    hba = os.path.join(cluster.primary.data_dir, "pg_hba.conf")
    with open(hba) as handle:
        original = handle.read()
    assert check_of(pg, "security")["status"] == "ok"
    try:
        with open(hba, "a") as handle:
            handle.write("host all all 10.0.0.0/8 trust\n")
        item = check_of(pg, "security")
        assert item["status"] == "critical"
        assert "without a password (trust)" in item["message"]
    finally:
        with open(hba, "w") as handle:
            handle.write(original)


def test_disk_space_of_a_nearly_full_tablespace(cluster, pg):
    import pathlib
    mount = pathlib.Path(cluster.base_dir) / "tsfs"  # a directory the postgres OS user can reach
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        location = mount / "ts"
        location.mkdir()
        os.chown(str(location), *cluster_owner())
        cluster.primary.execute("CREATE TABLESPACE nearly_full LOCATION '%s'" % location)
        filler = mount / "filler"
        with open(str(filler), "wb") as handle:
            handle.write(b"\0" * (12 * 1024 * 1024))  # 75 % used: 25 % free < 30 %
        item = check_of(pg, "disk_space")
        entry = [d for d in item["details"] if "tablespace nearly_full" in d["holds"]][0]
        assert entry["status"] == "warning" and 20 < entry["free_pct"] < 30
        with open(str(filler), "ab") as handle:
            handle.write(b"\0" * (3 * 1024 * 1024))  # ~94 % used
        item = check_of(pg, "disk_space")
        entry = [d for d in item["details"] if "tablespace nearly_full" in d["holds"]][0]
        assert entry["status"] == "critical" and item["status"] == "critical"
    finally:
        cluster.primary.execute("DROP TABLESPACE IF EXISTS nearly_full")
        subprocess.run(["umount", str(mount)], check=True)
        # The standby (same host) replays CREATE TABLESPACE from WAL when it restarts
        # before its next restartpoint: the location must still exist for it.
        location.mkdir()
        os.chown(str(location), *cluster_owner())


def cluster_owner():
    import pwd
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def test_client_tools_older_than_the_server_warn(pg, tmp_path):
    for tool in ("pg_dump", "pg_restore", "psql", "pg_dumpall"):
        path = tmp_path / tool
        path.write_text("#!/bin/sh\necho '%s (PostgreSQL) 12.22'\n" % tool)
        path.chmod(0o755)
    item = check_of(pg, "client_tools", client_bindir=str(tmp_path))
    assert item["status"] == "warning"
    assert "12" in item["message"] and "PostgreSQL 15" in item["message"]
    assert check_of(pg, "client_tools")["status"] == "ok"


def test_standby_checks_from_the_standby_itself(cluster, pg):
    standby = connection_vars(pg, port=pg["standby_port"], ssl_mode="disable")
    result, dummy = health(pg, conn=standby, checks=["replication", "security", "server_version"])
    assert result["in_recovery"] is True
    checks = by_name(result)
    assert checks["replication"]["status"] == "ok", checks["replication"]
    assert "ssl is off" in checks["security"]["message"] and checks["security"]["status"] == "warning"
    cluster.standby.execute("SELECT pg_wal_replay_pause()")
    try:
        assert "paused" in check_of(pg, "replication", conn=standby)["message"]
        assert check_of(pg, "replication", conn=standby)["status"] == "warning"
    finally:
        cluster.standby.execute("SELECT pg_wal_replay_resume()")


def test_stopped_standby(cluster, pg):
    cluster.standby.stop()
    try:
        deadline = time.time() + 10
        while time.time() < deadline and cluster.primary.execute("SELECT count(*) FROM pg_stat_replication")[0][0]:
            time.sleep(0.2)
        result, dummy = health(pg, checks=["replication", "replication_slots"],
                               thresholds={"replication": {"min_standbys": 1}})
        checks = by_name(result)
        assert checks["replication"]["status"] == "critical"
        assert "0 standby streaming, 1 expected" in checks["replication"]["message"]
        slots = checks["replication_slots"]
        assert slots["status"] == "warning" and slots["value"] == 1
        assert "standby1 inactive" in slots["message"]
    finally:
        try:
            cluster.standby.start()
        except Exception:
            with open(cluster.standby.log_file) as log:
                print(log.read()[-3000:])
            raise
    deadline = time.time() + 30
    while time.time() < deadline and not cluster.primary.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0][0]:
        time.sleep(0.3)
    assert check_of(pg, "replication", thresholds={"replication": {"min_standbys": 1}})["status"] == "ok"


def test_non_superuser_logins_get_skips_with_reasons_not_failures(pg):
    result, run = health(pg, conn=connection_vars(pg, user="pgops_app"), fail_on="critical")
    assert not result["failed"], result.get("msg")
    checks = by_name(result)
    assert checks["disk_space"]["status"] == "skipped"
    assert "data_directory" in checks["disk_space"]["message"]
    assert "pg_hba.conf rules not inspected" in checks["security"]["message"]
    monitor, dummy = health(pg, conn=connection_vars(pg, user="pgops_monitor"))
    assert by_name(monitor)["replication"]["value"] == 1  # pg_monitor sees the standby
    assert by_name(monitor)["disk_space"]["status"] != "skipped"


def test_check_mode_and_prometheus_textfile(pg, tmp_path):
    target = tmp_path / "pgops.prom"
    result, dummy = health(pg, check=True, prometheus_textfile=str(target))
    assert not target.exists() and result["changed"] is False
    assert result["summary"]["total"] == 29
    result, dummy = health(pg, prometheus_textfile=str(target))
    assert result["changed"] is True
    text = target.read_text()
    assert 'pgops_health_check_status{database="appdb",check="connections"} 0' in text
    assert re.search(r'pgops_health_checks\{database="appdb",status="ok"\} \d+', text)
    assert "# TYPE pgops_health_check_status gauge" in text
    assert not [p for p in os.listdir(str(tmp_path)) if p != "pgops.prom"]  # no temp file left behind


def test_connection_latency_over_a_slow_network(pg):
    proxy = LoopbackProxy(pg["port"], delay=0.15)
    try:
        # TLS and SCRAM take several round trips, each now 0.3 s or more.
        item = check_of(pg, "connection", conn=connection_vars(pg, port=proxy.port),
                        thresholds={"connection": {"warning_ms": 500, "critical_ms": 60000}})
        assert item["status"] == "warning" and item["value"] >= 500
    finally:
        proxy.close()
    assert check_of(pg, "connection", thresholds={"connection": {"warning_ms": 500}})["status"] == "ok"
