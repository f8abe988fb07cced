"""restore through Ansible against the real server and a real S3 API on loopback.
Every fault is made real (a killed pg_restore, a restarted server, a full tablespace,
a flipped byte) and each test proves the target database is exactly as it was."""

import json
import os
import shutil
import threading
import time

import psycopg2
import pytest

from tests.conftest import connection_vars
from tests.harness.gpg import make_gpg_key
from tests.harness.playbook import run_play
from tests.harness.migrations import snapshot
from tests.harness.processes import command_lines_seen, kill_when_running
from tests.harness.s3 import client_for, s3_option

pytestmark = pytest.mark.integration

PASSPHRASE = "Restore-Pa55phrase-Secret"
S3_SECRET = "S3-Secret-Key-Never-Shown"


@pytest.fixture(scope="module")
def wards(cluster):
    """A database with grants, a per-database setting and a table big enough to kill a restore in."""
    cluster.primary.execute("CREATE DATABASE wards OWNER pgops_app")
    cluster.primary.execute(
        "CREATE TABLE patients (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"
        "INSERT INTO patients (name) SELECT 'patient ' || g FROM generate_series(1, 3000) g;"
        "CREATE TABLE visits (id serial PRIMARY KEY, patient_id bigint REFERENCES patients (id), note text);"
        "INSERT INTO visits (patient_id, note) SELECT 1 + g % 3000, md5(g::text) FROM generate_series(1, 12000) g;"
        "CREATE INDEX visits_patient ON visits (patient_id);"
        "CREATE TABLE audit_log (id bigserial PRIMARY KEY, payload text);"
        "INSERT INTO audit_log (payload) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 300000) g;"
        "CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int PRIMARY KEY, amount numeric);"
        "INSERT INTO billing.invoices SELECT g, g * 1.5 FROM generate_series(1, 500) g;"
        "ANALYZE;", dbname="wards")
    return "wards"


def play(pg, module, name="task", check=False, diff=False, verbosity=0, db="postgres", **options):
    run = run_play([{"name": name, "pgops.runbook." + module: dict(connection_vars(pg, db=db), **options)}],
                   check=check, diff=diff, verbosity=verbosity)
    return run.result(name), run


def restore(pg, **options):
    return play(pg, "restore", **options)


def make_backup(pg, db="wards", **options):
    result, dummy = play(pg, "backup", db=db, **options)
    assert not result["failed"], result.get("msg")
    return result


def databases(cluster):
    return sorted(r[0] for r in cluster.primary.execute("SELECT datname FROM pg_database"))


def state(pg, db):
    """db_snapshot with exact counts: what a restore must leave unchanged."""
    snap = snapshot(pg, db, exact_counts=True)
    return snap["fingerprint"], dict((t, v["rows"]) for t, v in snap["tables"].items())


@pytest.fixture(scope="module")
def backups(pg, wards, s3, tmp_path_factory):
    """One plain custom backup on disk, one zstd + passphrase backup in S3 (and on disk)."""
    dest = tmp_path_factory.mktemp("restore-backups")
    client = client_for(s3)
    client.create_bucket(Bucket="restore-bucket")
    plain = make_backup(pg, dest=str(dest), label="nightly")
    sealed = make_backup(pg, dest=str(dest), s3=s3_option(s3, "restore-bucket"), compression="zstd",
                         encryption=dict(passphrase=PASSPHRASE), label="sealed")
    return dict(dest=str(dest), plain=plain, sealed=sealed, bucket="restore-bucket")


def test_restore_into_a_new_database_matches_the_backup_exactly(cluster, pg, backups):
    result, run = restore(pg, src=backups["plain"]["path"], target_db="wards_copy", jobs=2)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and result["target_db"] == "wards_copy" and result["previous_db"] is None
    assert result["path"] == "direct"
    assert result["validation"]["status"] == "passed"
    assert result["validation"]["tables"]["public.audit_log"] == {"expected": 300000, "restored": 300000}
    manifest = backups["plain"]["manifest"]["snapshot"]
    fingerprint, rows = state(pg, "wards_copy")
    assert fingerprint == manifest["fingerprint"]
    assert rows == dict((t, v["rows"]) for t, v in manifest["tables"].items())
    assert not [d for d in databases(cluster) if "__restoring_" in d]
    # The new database is analyzed and owned like the original by default? No: owned by the login role.
    assert cluster.primary.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'audit_log'", dbname="wards_copy")[0][0] > 0
    # A second run refuses: the target exists now.
    again, dummy = restore(pg, src=backups["plain"]["path"], target_db="wards_copy")
    assert again["failed"] and "already exists" in again["msg"] and "Traceback" not in again["msg"]


def test_replace_swaps_in_one_step_and_keeps_the_previous_database(cluster, pg, backups):
    cluster.primary.execute("CREATE DATABASE wards_live OWNER pgops_app")
    cluster.primary.execute("CREATE TABLE patients (id int PRIMARY KEY); INSERT INTO patients VALUES (1)", dbname="wards_live")
    cluster.primary.execute("GRANT CONNECT ON DATABASE wards_live TO pgops_monitor")
    cluster.primary.execute("REVOKE CONNECT ON DATABASE wards_live FROM PUBLIC")
    cluster.primary.execute("ALTER DATABASE wards_live SET work_mem = '7MB'")
    cluster.primary.execute("ALTER DATABASE wards_live SET search_path = public, billing")
    before = state(pg, "wards_live")
    # An application session on the target: it is ended at the swap.
    app = psycopg2.connect(host=pg["host"], port=pg["port"], user="pgops_app", dbname="wards_live",
                           password=pg["passwords"]["pgops_app"], sslmode="require")
    try:
        result, run = restore(pg, backup_id=backups["plain"]["backup_id"], dest=backups["dest"], target_db="wards_live",
                              mode="replace", confirm="wards_live", diff=True)
    finally:
        app.close()
    assert not result["failed"], result.get("msg")
    previous = result["previous_db"]
    assert previous.startswith("wards_live__pre_restore_")
    assert result["sessions_terminated"] >= 1
    assert state(pg, previous) == before  # the replaced database, untouched, under its new name
    assert state(pg, "wards_live")[0] == backups["plain"]["manifest"]["snapshot"]["fingerprint"]
    props = cluster.primary.execute(
        "SELECT pg_get_userbyid(datdba), datacl::text, datallowconn FROM pg_database WHERE datname = 'wards_live'")[0]
    assert props[0] == "pgops_app" and "pgops_monitor=c/" in props[1] and "=Tc/" not in props[1] and props[2]
    settings = cluster.primary.execute(
        "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'wards_live'")
    assert sorted(settings[0][0]) == ["search_path=public, billing", "work_mem=7MB"]
    assert "public.audit_log rows=300000" in result["diff"]["after"]
    assert "public.patients rows=" in result["diff"]["before"]
    # drop_previous on a second replace removes the kept copy.
    second, dummy = restore(pg, backup_id=backups["plain"]["backup_id"], dest=backups["dest"], target_db="wards_live",
                            mode="replace", confirm="wards_live", drop_previous=True)
    assert not second["failed"], second.get("msg")
    assert second["previous_dropped"] and second["previous_db"] not in databases(cluster)
    assert previous in databases(cluster)


@pytest.mark.parametrize("confirm", [None, "wards", "WARDS_TARGET"])
def test_replace_without_the_right_confirm_touches_nothing(cluster, pg, backups, confirm):
    cluster.primary.execute("CREATE DATABASE wards_target") if "wards_target" not in databases(cluster) else None
    before = databases(cluster)
    options = dict(src=backups["plain"]["path"], target_db="wards_target", mode="replace")
    if confirm is not None:
        options["confirm"] = confirm
    result, run = restore(pg, **options)
    assert result["failed"] and "Option confirm must equal target_db (wards_target)" in result["msg"]
    assert "Traceback" not in run.all_text
    assert databases(cluster) == before


def test_a_flipped_byte_is_refused_before_any_database_is_created(cluster, pg, backups, tmp_path):
    source = os.path.dirname(backups["plain"]["path"])
    copy = tmp_path / "wards" / os.path.basename(source)
    shutil.copytree(source, str(copy))
    dump = copy / os.path.basename(backups["plain"]["path"])
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    before = databases(cluster)
    for options in (dict(target_db="wards_flipped"), dict(target_db="wards_flipped", jobs=2),
                    dict(target_db="wards", mode="replace", confirm="wards")):
        result, run = restore(pg, src=str(dump), **options)
        assert result["failed"] and "is damaged" in result["msg"] and "sha256" in result["msg"], result.get("msg")
        assert databases(cluster) == before
    checked, dummy = restore(pg, src=str(dump), target_db="wards_flipped", check=True)
    assert checked["failed"] and "is damaged" in checked["msg"]


def test_manifest_that_does_not_match_its_dump_is_refused(cluster, pg, backups, tmp_path):
    # The manifest of one backup beside the dump of another (same file name).
    (tmp_path / "other").mkdir()
    other = make_backup(pg, dest=str(tmp_path / "other"), label="other")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(backups["plain"]["path"], str(mixed / os.path.basename(backups["plain"]["path"])))
    shutil.copy(os.path.join(os.path.dirname(other["path"]), "manifest.json"), str(mixed / "manifest.json"))
    before = databases(cluster)
    result, dummy = restore(pg, src=str(mixed), target_db="wards_mixed")
    assert result["failed"] and "is damaged" in result["msg"]
    assert databases(cluster) == before


def test_encrypted_backup_from_s3_streamed_and_spooled_without_leaking_secrets(cluster, pg, s3, backups):
    sealed = backups["sealed"]
    s3_uri = sealed["s3_uri"]
    option = s3_option(s3, backups["bucket"], secret_key=s3["secret_key"])
    with command_lines_seen() as seen:
        streamed, run = restore(pg, src=s3_uri, s3=option, target_db="wards_s3_streamed",
                                encryption=dict(passphrase=PASSPHRASE), verbosity=3)
    assert not streamed["failed"], streamed.get("msg")
    assert streamed["path"] == "streamed" and streamed["validation"]["status"] == "passed"
    assert any(b"gpg" in c for c in seen) and any(b"pg_restore" in c for c in seen)
    for secret in (PASSPHRASE, pg["passwords"]["pgops_admin"], s3["secret_key"]):
        assert not [c for c in seen if secret.encode() in c]
        assert secret not in run.all_text
    spooled, dummy = restore(pg, backup_id=sealed["backup_id"], s3=option, target_db="wards_s3_spooled",
                             encryption=dict(passphrase=PASSPHRASE), jobs=2)
    assert not spooled["failed"], spooled.get("msg")
    assert spooled["path"] == "spooled" and spooled["validation"]["status"] == "passed"
    assert state(pg, "wards_s3_spooled") == state(pg, "wards_s3_streamed")


@pytest.mark.parametrize("encryption, expected", [
    (None, "Option encryption: backup"),
    ({"passphrase": "not-the-passphrase"}, "cannot be read: gpg failed"),
])
def test_wrong_or_missing_passphrase_creates_nothing(cluster, pg, backups, encryption, expected):
    before = databases(cluster)
    options = dict(src=backups["sealed"]["path"], target_db="wards_wrong_key")
    if encryption:
        options["encryption"] = encryption
    result, run = restore(pg, verbosity=3, **options)
    assert result["failed"] and expected in result["msg"], result.get("msg")
    assert databases(cluster) == before
    assert "not-the-passphrase" not in run.all_text


def test_missing_s3_object_is_a_clear_error(cluster, pg, s3, backups):
    before = databases(cluster)
    result, dummy = restore(pg, src="s3://%s/prod/wards/nothing-here/wards.dump" % backups["bucket"],
                            s3=s3_option(s3, backups["bucket"]), target_db="wards_missing")
    assert result["failed"] and "Option src" in result["msg"] and "manifest" in result["msg"], result["msg"]
    result, dummy = restore(pg, backup_id="wards-20000101T000000Z", s3=s3_option(s3, backups["bucket"]),
                            target_db="wards_missing")
    assert result["failed"] and "Option backup_id: no backup wards-20000101T000000Z" in result["msg"]
    assert databases(cluster) == before


def test_newer_server_major_is_refused(cluster, pg, backups, tmp_path):
    copy = tmp_path / "wards" / "newer"
    shutil.copytree(os.path.dirname(backups["plain"]["path"]), str(copy))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["server_version"] = "16.2"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    before = databases(cluster)
    result, dummy = restore(pg, src=str(copy), target_db="wards_newer")
    assert result["failed"] and "comes from PostgreSQL 16.2, newer than the target server (15)" in result["msg"]
    assert databases(cluster) == before


def test_pg_restore_killed_half_way_leaves_the_target_exactly_as_it_was(cluster, pg, backups):
    before = state(pg, "wards")
    found = []
    killer = threading.Thread(target=kill_when_running, args=("pg_restore", 0.2, found), kwargs=dict(argument="--dbname"))
    killer.start()
    result, dummy = restore(pg, src=backups["plain"]["path"], target_db="wards", mode="replace", confirm="wards",
                            validate=False, analyze=False)
    killer.join()
    assert found, "pg_restore never ran"
    assert result["failed"] and "pg_restore" in result["msg"]
    assert "database wards was not touched" in result["msg"] and "was dropped" in result["msg"], result["msg"]
    assert state(pg, "wards") == before
    assert not [d for d in databases(cluster) if d.startswith(("wards__restoring_", "wards__pre_restore_"))]


def test_server_restart_during_the_restore(cluster, pg, backups):
    before = state(pg, "wards")

    def restart_when_restoring():
        deadline = time.time() + 30
        while time.time() < deadline:
            if [d for d in databases(cluster) if d.startswith("wards__restoring_")]:
                time.sleep(0.3)
                cluster.primary.stop(mode="immediate")
                cluster.primary.start()
                return
            time.sleep(0.02)

    restarter = threading.Thread(target=restart_when_restoring)
    restarter.start()
    result, dummy = restore(pg, src=backups["plain"]["path"], target_db="wards", mode="replace", confirm="wards",
                            validate=False, analyze=False)
    restarter.join()
    assert result["failed"] and "database wards was not touched" in result["msg"], result.get("msg")
    assert state(pg, "wards") == before
    leftovers = [d for d in databases(cluster) if d.startswith("wards__restoring_")]
    assert not leftovers or leftovers[0] in result["msg"]
    # The next restore drops whatever the failed one left and succeeds.
    again, dummy = restore(pg, src=backups["plain"]["path"], target_db="wards_after_restart")
    assert not again["failed"], again.get("msg")


def test_full_tablespace_fails_cleanly(cluster, pg, backups):
    with cluster.tablespace_directory("6m") as mount:
        cluster.primary.execute("CREATE TABLESPACE small_ts LOCATION '%s'" % mount)
        try:
            before = databases(cluster)
            result, dummy = restore(pg, src=backups["plain"]["path"], target_db="wards_full", tablespace="small_ts")
            assert result["failed"] and "No space left on device" in result["msg"], result.get("msg")
            assert "database wards_full was not created" in result["msg"] and "was dropped" in result["msg"]
            assert databases(cluster) == before
        finally:
            cluster.primary.execute("DROP TABLESPACE small_ts")


def test_two_restores_into_one_target_at_once(cluster, pg, backups):
    holder = cluster.primary.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s::int, hashtext('wards_locked'))", (0x70676F72,))
        result, dummy = restore(pg, src=backups["plain"]["path"], target_db="wards_locked", lock_wait=1)
        assert result["failed"] and "Another restore into wards_locked is running" in result["msg"]
        assert "wards_locked" not in databases(cluster)
    finally:
        holder.close()


def test_check_mode_reads_the_backup_and_changes_nothing(cluster, pg, backups):
    before = databases(cluster)
    result, dummy = restore(pg, src=backups["sealed"]["path"], target_db="wards_planned", check=True, diff=True,
                            encryption=dict(passphrase=PASSPHRASE))
    assert not result["failed"], result.get("msg")
    assert result["changed"] and "is intact" in result["msg"] and "would restore" in result["msg"]
    assert "public.audit_log rows=300000" in result["diff"]["after"]
    assert databases(cluster) == before


def test_plain_backup_replayed_with_on_error_stop(cluster, pg, tmp_path):
    cluster.primary.execute("CREATE ROLE ghost")
    cluster.primary.execute("CREATE DATABASE plainsrc")
    cluster.primary.execute("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'a');"
                            "ALTER TABLE notes OWNER TO ghost", dbname="plainsrc")
    made = make_backup(pg, db="plainsrc", dest=str(tmp_path), format="plain", compression="gzip")
    good, dummy = restore(pg, src=made["path"], target_db="plainsrc_copy", single_transaction=True)
    assert not good["failed"] and good["validation"]["status"] == "passed", good.get("msg")
    cluster.primary.execute("ALTER TABLE notes OWNER TO postgres", dbname="plainsrc")
    cluster.primary.execute("DROP OWNED BY ghost; DROP ROLE ghost", dbname="plainsrc_copy")
    before = databases(cluster)
    bad, dummy = restore(pg, src=made["path"], target_db="plainsrc_broken")
    assert bad["failed"] and "psql" in bad["msg"] and 'role "ghost" does not exist' in bad["msg"], bad["msg"]
    assert databases(cluster) == before


def test_globals_create_missing_roles_and_leave_existing_ones_alone(cluster, pg, tmp_path):
    cluster.primary.execute("CREATE ROLE ward_nurse LOGIN PASSWORD 'nurse-Pa55' CONNECTION LIMIT 3")
    cluster.primary.execute("GRANT pg_monitor TO ward_nurse")
    made = make_backup(pg, db="postgres", dest=str(tmp_path), type="globals")
    cluster.primary.execute("DROP ROLE ward_nurse")
    monitor_before = cluster.primary.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'pgops_monitor'")
    cluster.primary.execute("ALTER ROLE pgops_monitor CONNECTION LIMIT 9")
    checked, dummy = restore(pg, src=made["path"], globals=True, check=True)
    assert not checked["failed"] and checked["roles"]["created"] == ["ward_nurse"], checked
    assert not cluster.primary.execute("SELECT 1 FROM pg_roles WHERE rolname = 'ward_nurse'")
    result, run = restore(pg, src=made["path"], globals=True, verbosity=3)
    assert not result["failed"], result.get("msg")
    assert result["roles"]["created"] == ["ward_nurse"] and "pgops_monitor" in result["roles"]["left_alone"]
    row = cluster.primary.execute("SELECT rolconnlimit, rolcanlogin FROM pg_roles WHERE rolname = 'ward_nurse'")[0]
    assert row == (3, True)
    assert cluster.primary.execute("SELECT pg_has_role('ward_nurse', 'pg_monitor', 'MEMBER')")[0][0]
    # Existing roles keep what they have now, not what the backup says.
    assert cluster.primary.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'pgops_monitor'")[0][0] == 9
    assert cluster.primary.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'pgops_monitor'") == monitor_before
    assert "SCRAM-SHA-256$" not in run.all_text
    cluster.primary.execute("ALTER ROLE pgops_monitor CONNECTION LIMIT -1")


def test_pre_restore_backup_and_latest_lookup(cluster, pg, backups, tmp_path):
    cluster.primary.execute("CREATE DATABASE wards_pre OWNER pgops_app")
    cluster.primary.execute("CREATE TABLE marker (id int); INSERT INTO marker VALUES (42)", dbname="wards_pre")
    result, dummy = restore(pg, latest=True, dest=backups["dest"], database="wards", label="nightly",
                            target_db="wards_pre", mode="replace", confirm="wards_pre", pre_restore_backup=True)
    assert not result["failed"], result.get("msg")
    assert result["backup_id"] == backups["plain"]["backup_id"]
    pre = result["pre_restore_backup"]
    assert pre["verified"] and pre["backup_id"].startswith("wards_pre-") and pre["backup_id"].endswith("-pre-restore")
    # The pre-restore backup restores to the old contents.
    back, dummy = restore(pg, backup_id=pre["backup_id"], dest=backups["dest"], target_db="wards_pre_back")
    assert not back["failed"], back.get("msg")
    assert cluster.primary.execute("SELECT id FROM marker", dbname="wards_pre_back") == [(42,)]


@pytest.mark.parametrize("options, message", [
    (dict(), "Give exactly one of the options src, backup_id and latest, got none."),
    (dict(src="/nonexistent/x.dump", latest=True), "Give exactly one of the options src, backup_id and latest, got src and latest."),
    (dict(src="/nonexistent/x.dump"), "Option src: /nonexistent/x.dump does not exist."),
    (dict(src="s3://"), "Option src must be a local path or s3://bucket/key"),
    (dict(latest=True), "Option latest needs option dest and/or s3"),
    (dict(PLAIN=True, jobs=2, single_transaction=True), "Options jobs and single_transaction exclude each other"),
    (dict(PLAIN=True, target_db=None), "Option target_db is required"),
    (dict(PLAIN=True, jobs=0), "Option jobs must be 1 or more, got 0."),
    (dict(PLAIN=True, drop_previous=True), "Options drop_previous and pre_restore_backup go with mode replace only."),
    (dict(PLAIN=True, globals=True), "Option globals: backup"),
    (dict(PLAIN=True, mode="sideways"), "value of mode must be one of: new, replace"),
])
def test_bad_input_is_one_sentence_and_changes_nothing(cluster, pg, backups, options, message):
    options = dict(options)
    if options.pop("PLAIN", False):
        options.setdefault("src", backups["plain"]["path"])
        options.setdefault("target_db", "wards_bad")
        if options["target_db"] is None:
            del options["target_db"]
    before = databases(cluster)
    result, run = restore(pg, **options)
    assert result["failed"] and message in result["msg"], result.get("msg")
    assert "Traceback" not in run.all_text
    assert databases(cluster) == before


def test_data_only_backup_is_refused(cluster, pg, tmp_path):
    made = make_backup(pg, db="wards", dest=str(tmp_path), type="data", tables=["public.patients"])
    result, dummy = restore(pg, src=made["path"], target_db="wards_data")
    assert result["failed"] and "is data only" in result["msg"]


def test_public_key_encrypted_backup_restores_with_the_private_key_only(cluster, pg, wards, tmp_path):
    public, private = make_gpg_key(str(tmp_path / "keys"))
    made = make_backup(pg, dest=str(tmp_path), compression="lz4", encryption=dict(public_key=public))
    before = databases(cluster)
    missing, dummy = restore(pg, src=made["path"], target_db="wards_pub", encryption=dict(passphrase="anything"))
    assert missing["failed"] and "Option encryption.private_key is required" in missing["msg"]
    assert databases(cluster) == before
    result, dummy = restore(pg, src=made["path"], target_db="wards_pub", encryption=dict(private_key=private), jobs=2)
    assert not result["failed"], result.get("msg")
    assert result["path"] == "spooled" and result["validation"]["status"] == "passed"
