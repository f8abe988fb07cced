"""backup through Ansible against the real server: verified, streamed, nothing ever left
looking complete when it is not. Each fault is made real."""

import glob
import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

from tests.conftest import connection_vars
from tests.harness.playbook import run_play
from tests.harness.gpg import make_gpg_key
from tests.harness.s3 import s3_option
from tests.harness.processes import command_lines_seen, kill_when_running

pytestmark = pytest.mark.integration

PASSPHRASE = "Backup-Pa55phrase-Secret"


@pytest.fixture(scope="module")
def clinic(cluster):
    """A database with a few thousand rows and one large table for the kill tests."""
    cluster.primary.execute("CREATE DATABASE clinic OWNER pgops_app")
    cluster.primary.execute(
        "CREATE TABLE patients (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"
        "INSERT INTO patients (name) SELECT 'patient ' || g FROM generate_series(1, 3000) g;"
        "CREATE TABLE visits (id serial PRIMARY KEY, patient_id bigint REFERENCES patients (id), note text);"
        "INSERT INTO visits (patient_id, note) SELECT 1 + g % 3000, md5(g::text) FROM generate_series(1, 12000) g;"
        "CREATE TABLE audit_log (id bigserial PRIMARY KEY, payload text);"
        "INSERT INTO audit_log (payload) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 400000) g;"
        "ANALYZE;", dbname="clinic")
    return "clinic"


def backup(pg, db="clinic", check=False, verbosity=0, **options):
    run = run_play([{"name": "backup", "pgops.runbook.backup": dict(connection_vars(pg, db=db), **options)}],
                   check=check, verbosity=verbosity)
    return run.result("backup"), run


def files_under(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**"), recursive=True)
                  if os.path.isfile(p))


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_encrypted_compressed_backup_is_verified_and_restores_exactly(cluster, pg, clinic, tmp_path):
    dest = tmp_path / "backups"
    dest.mkdir()
    result, run = backup(pg, dest=str(dest), compression="zstd", label="nightly", tags={"release": "2.4.1"},
                         encryption=dict(passphrase=PASSPHRASE), verbosity=3)
    assert not result["failed"], result.get("msg")
    assert result["verified"] is True and result["verification"]["method"] == "read-back"
    assert result["verification"]["tables"] == 3
    backup_id = result["backup_id"]
    assert backup_id.startswith("clinic-") and backup_id.endswith("-nightly")
    dump = dest / "clinic" / backup_id / "clinic.dump.zst.gpg"
    manifest_path = dest / "clinic" / backup_id / "manifest.json"
    assert files_under(str(dest)) == sorted(["clinic/%s/clinic.dump.zst.gpg" % backup_id, "clinic/%s/manifest.json" % backup_id])
    assert oct(dump.stat().st_mode & 0o777) == "0o600" and oct(manifest_path.stat().st_mode & 0o777) == "0o600"
    assert oct((dest / "clinic" / backup_id).stat().st_mode & 0o777) == "0o700"
    manifest = json.loads(manifest_path.read_text())
    # The checksum was computed while writing and matches the bytes on disk.
    assert manifest["sha256"] == sha256_of(str(dump)) == result["sha256"]
    assert manifest["size_bytes"] == dump.stat().st_size
    assert manifest["encryption"] == {"method": "gpg-passphrase", "cipher": "AES256"}
    assert manifest["compression"] == {"method": "zstd", "level": 3, "where": "stream"}
    assert manifest["tags"] == {"release": "2.4.1"} and manifest["label"] == "nightly"
    rows = manifest["snapshot"]["tables"]
    assert rows["public.patients"]["rows"] == 3000 and rows["public.visits"]["rows"] == 12000
    assert rows["public.audit_log"]["rows"] == 400000
    assert manifest["verification"]["status"] == "passed"
    assert PASSPHRASE not in manifest_path.read_text()
    assert PASSPHRASE not in run.all_text and pg["passwords"]["pgops_admin"] not in run.all_text

    # It restores: decrypt, decompress and pg_restore in one stream, then compare.
    cluster.primary.execute("CREATE DATABASE clinic_restored")
    env = dict(os.environ, GNUPGHOME=str(tmp_path / "gnupg"))
    os.makedirs(env["GNUPGHOME"], mode=0o700)
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE)
    restore = subprocess.run(
        "gpg --batch --quiet --pinentry-mode loopback --passphrase-file %s --decrypt %s | zstd -dqc | "
        "runuser -u postgres -- pg_restore --exit-on-error -h %s -p %s -d clinic_restored"
        % (passfile, dump, cluster.primary.socket_dir, cluster.primary.port),
        shell=True, env=env, capture_output=True, text=True, check=False)
    assert restore.returncode == 0, restore.stderr
    snap = run_play([{"name": "snap", "pgops.runbook.db_snapshot": connection_vars(
        pg, db="clinic_restored", exact_counts=True, compare_to=manifest["snapshot"])}]).result("snap")
    assert snap["matches"] is True, snap["differences"]


def test_plain_gzip_backup_ends_with_pg_dumps_completion_line(pg, clinic, tmp_path):
    result, dummy = backup(pg, dest=str(tmp_path), format="plain", compression="gzip", tables=["public.patients"])
    assert not result["failed"], result.get("msg")
    path = result["locations"][0]
    assert path.endswith("clinic.sql.gz")
    text = subprocess.run(["gzip", "-dc", path], capture_output=True, check=True).stdout
    assert b"-- PostgreSQL database dump complete" in text[-400:]
    assert b"CREATE TABLE public.patients" in text and b"CREATE TABLE public.visits" not in text
    assert result["manifest"]["selection"]["tables"] == ["public.patients"]


def test_public_key_encryption_verifies_by_checksum_without_the_private_key(pg, clinic, tmp_path):
    public, private = make_gpg_key(str(tmp_path / "keys"))
    result, dummy = backup(pg, dest=str(tmp_path), tables=["public.visits"], encryption=dict(public_key=public))
    assert not result["failed"], result.get("msg")
    assert result["verification"]["method"] == "checksum" and result["verified"] is True
    assert len(result["manifest"]["encryption"]["recipient_fingerprint"]) == 40
    with_private, dummy = backup(pg, dest=str(tmp_path), tables=["public.visits"],
                                 encryption=dict(public_key=public, private_key=private))
    assert with_private["verification"]["method"] == "read-back" and with_private["verified"] is True


def test_check_mode_writes_nothing(pg, clinic, tmp_path):
    result, dummy = backup(pg, dest=str(tmp_path), check=True)
    assert not result["failed"] and result["changed"] is True
    assert result["destinations"][0].startswith(str(tmp_path))
    assert result["database_bytes"] > 0
    assert files_under(str(tmp_path)) == []


@pytest.mark.parametrize("program, options", [
    ("pg_dump", dict(compression="gzip")),
    ("zstd", dict(compression="zstd")),
    ("gpg", dict(compression="lz4", encryption=dict(passphrase=PASSPHRASE))),
])
def test_a_killed_pipeline_process_leaves_nothing_that_looks_complete(pg, clinic, tmp_path, program, options):
    found = []
    killer = threading.Thread(target=kill_when_running, args=(program, 0.3, found))
    killer.start()
    result, run = backup(pg, dest=str(tmp_path), **options)
    killer.join()
    assert found, "%s never ran" % program
    assert result["failed"]
    assert program in result["msg"] and "-9" in result["msg"], result["msg"]
    assert "Traceback" not in run.all_text
    assert files_under(str(tmp_path)) == []  # no dump, no .partial, no manifest
    again, dummy = backup(pg, dest=str(tmp_path), **options)
    assert not again["failed"] and again["verified"], again.get("msg")


def test_full_disk_fails_cleanly_and_the_next_backup_works(cluster, pg, clinic, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        result, run = backup(pg, dest=str(small), compression="none")
        assert result["failed"]
        assert "no space left" in result["msg"].lower(), result["msg"]
        assert files_under(str(small)) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
    ok, dummy = backup(pg, dest=str(tmp_path))
    assert ok["verified"]


@pytest.mark.parametrize("options, fragment", [
    (dict(tables=["public.no_such_table"]), "Option tables: public.no_such_table matches no table"),
    (dict(encryption=dict(public_key="/nonexistent/key.asc")), "Option encryption.public_key"),
    (dict(compression="zstd", compression_level=42), "Option compression_level must be between 1 and 19"),
    (dict(label="../../etc"), "Option label must be"),
    (dict(encryption=dict(public_key="/a", passphrase="b")), "mutually exclusive"),
])
def test_bad_input_fails_before_anything_is_written(pg, clinic, tmp_path, options, fragment):
    result, run = backup(pg, dest=str(tmp_path), **options)
    assert result["failed"] and fragment in result["msg"], result["msg"]
    assert "Traceback" not in run.all_text
    assert files_under(str(tmp_path)) == []


def test_a_read_only_destination_is_refused_before_anything_is_dumped(pg, clinic, tmp_path):
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(frozen)], check=True)
    try:
        result, run = backup(pg, dest=str(frozen))
        assert result["failed"] and "Option dest" in result["msg"] and "not writable" in result["msg"], result["msg"]
        assert "Traceback" not in run.all_text
    finally:
        subprocess.run(["umount", str(frozen)], check=True)


def test_a_missing_destination_is_refused(pg, clinic, tmp_path):
    result, dummy = backup(pg, dest=str(tmp_path / "nope"))
    assert result["failed"] and "Option dest" in result["msg"] and "does not exist" in result["msg"]
    result, dummy = backup(pg)
    assert result["failed"] and "dest" in result["msg"] and "s3" in result["msg"]


def test_a_client_older_than_the_server_is_refused_before_writing(pg, clinic, tmp_path):
    bindir = tmp_path / "old"
    bindir.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        (bindir / tool).write_text("#!/bin/sh\necho '%s (PostgreSQL) 12.22'\n" % tool)
        (bindir / tool).chmod(0o755)
    dest = tmp_path / "d"
    dest.mkdir()
    result, dummy = backup(pg, dest=str(dest), client_bindir=str(bindir))
    assert result["failed"] and "older than the server" in result["msg"]
    assert files_under(str(dest)) == []


def test_two_backups_at_once_are_serialised(pg, clinic, tmp_path):
    results = []

    def one(label):
        results.append(backup(pg, dest=str(tmp_path), label=label, tables=["public.audit_log"])[0])

    threads = [threading.Thread(target=one, args=(label,)) for label in ("twin", "twin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not r["failed"] and r["verified"] for r in results), [r.get("msg") for r in results]
    spans = sorted((r["manifest"]["started_at"], r["manifest"]["finished_at"]) for r in results)
    # The later one's dump started only after the earlier one's finished ...
    assert spans[1][0] >= spans[0][1], spans
    # ... and the same label in the same second still gives two backups.
    assert results[0]["backup_id"] != results[1]["backup_id"]
    manifests = glob.glob(str(tmp_path / "clinic" / "*" / "manifest.json"))
    assert len(manifests) == 2


def test_no_secret_on_any_command_line_while_a_backup_runs(pg, clinic, tmp_path, s3, bucket):
    with command_lines_seen() as seen:
        result, run = backup(pg, dest=str(tmp_path), s3=s3_option(s3, bucket, secret_key="S3-Secret-Key-For-Cmdline"),
                             encryption=dict(passphrase=PASSPHRASE), compression="zstd", verbosity=3)
    assert result["verified"], result.get("msg")
    assert any(b"pg_dump" in c for c in seen) and any(b"gpg" in c for c in seen)
    for secret in (PASSPHRASE, pg["passwords"]["pgops_admin"], "S3-Secret-Key-For-Cmdline"):
        assert not [c for c in seen if secret.encode() in c]
        assert secret not in run.all_text


@pytest.fixture
def bucket(s3):
    from tests.harness.s3 import client_for
    name = "backups-%d" % int(time.time() * 1000)
    client_for(s3).create_bucket(Bucket=name)
    return name


def object_sha256(client, bucket, key):
    digest = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def test_backup_streams_to_s3_and_to_disk_identically(pg, clinic, tmp_path, s3, bucket):
    from tests.harness.s3 import client_for
    client = client_for(s3)
    result, run = backup(pg, dest=str(tmp_path), s3=s3_option(s3, bucket, server_side_encryption="AES256"),
                         tables=["public.visits", "public.patients"], verbosity=3)
    assert not result["failed"] and result["verified"], result.get("msg")
    key = "prod/clinic/%s/clinic.dump" % result["backup_id"]
    assert result["locations"] == [str(tmp_path / "clinic" / result["backup_id"] / "clinic.dump"), "s3://%s/%s" % (bucket, key)]
    assert object_sha256(client, bucket, key) == result["sha256"] == sha256_of(result["locations"][0])
    assert client.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    manifest = json.loads(client.get_object(Bucket=bucket, Key="prod/clinic/%s/manifest.json" % result["backup_id"])["Body"].read())
    assert manifest["sha256"] == result["sha256"] and manifest["verification"]["status"] == "passed"
    assert s3["secret_key"] not in run.all_text


def test_s3_only_backup_is_verified_from_the_bucket(pg, clinic, s3, bucket):
    result, dummy = backup(pg, s3=s3_option(s3, bucket), tables=["public.patients"], compression="lz4")
    assert not result["failed"] and result["verified"], result.get("msg")
    assert result["locations"] == ["s3://%s/prod/clinic/%s/clinic.dump.lz4" % (bucket, result["backup_id"])]


def test_network_dying_mid_upload_leaves_no_object_and_the_next_run_cleans_up(pg, clinic, tmp_path, s3, bucket):
    from tests.harness.network import LoopbackProxy
    from tests.harness.s3 import client_for
    client = client_for(s3)
    proxy = LoopbackProxy(s3["port"], budget=20 * 1024 * 1024)  # the second 16 MiB part is cut
    try:
        result, run = backup(pg, s3=s3_option(s3, bucket, endpoint_url=proxy.endpoint_url), compression="none",
                             tables=["public.audit_log"])
    finally:
        proxy.close()
    assert result["failed"] and "Option s3" in result["msg"], result.get("msg")
    assert "Traceback" not in run.all_text
    listed = client.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
    assert listed == 0  # no dump, no manifest
    # The abort could not get through the dead network either: the next run discards it.
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    again, dummy = backup(pg, s3=s3_option(s3, bucket), tables=["public.patients"])
    assert again["verified"], again.get("msg")
    assert len(again["discarded_incomplete"]) == 1 and "audit_log" not in again["backup_id"]
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_missing_bucket_fails_before_anything_is_written(pg, clinic, tmp_path, s3):
    result, dummy = backup(pg, dest=str(tmp_path), s3=s3_option(s3, "no-such-bucket"))
    assert result["failed"] and "no-such-bucket" in result["msg"] and "does not exist" in result["msg"], result["msg"]
    assert files_under(str(tmp_path)) == []


def backups_play(pg, tasks, check=False):
    return run_play([{"name": name, "pgops.runbook.backup": dict(connection_vars(pg, db="clinic"), **options)}
                     for name, options in tasks], check=check)


def set_verification(dest, backup_id, status):
    path = os.path.join(dest, "clinic", backup_id, "manifest.json")
    with open(path) as handle:
        manifest = json.load(handle)
    manifest["verification"]["status"] = status
    with open(path, "w") as handle:
        json.dump(manifest, handle)


def test_retention_never_deletes_the_newest_verified_backup(pg, clinic, tmp_path):
    dest = str(tmp_path)
    small = dict(dest=dest, tables=["public.patients"], compression="lz4")
    run = backups_play(pg, [("n%d" % i, dict(small, label="nightly")) for i in range(4)]
                       + [("weekly", dict(small, label="weekly"))])
    ids = [run.result("n%d" % i)["backup_id"] for i in range(4)]
    weekly = run.result("weekly")["backup_id"]
    # The two newest nightly backups failed their verification (as their manifests say).
    for backup_id in ids[2:]:
        set_verification(dest, backup_id, "failed")
    policy = dict(small, label="nightly", verify="none", retention=dict(keep_last=2))
    preview = backups_play(pg, [("preview", policy)], check=True).result("preview")
    assert sorted(d["backup_id"] for d in preview["deleted"]) == sorted([ids[0], ids[2]])
    assert len(os.listdir(os.path.join(dest, "clinic"))) == 5  # check mode deleted nothing
    result = backups_play(pg, [("retention", policy)]).result("retention")
    assert not result["failed"], result.get("msg")
    # keep_last 2 keeps this backup and ids[3]; ids[1] is the newest verified one; weekly is another label.
    assert sorted(d["backup_id"] for d in result["deleted"]) == sorted([ids[0], ids[2]])
    assert sorted(os.listdir(os.path.join(dest, "clinic"))) == sorted([ids[1], ids[3], result["backup_id"], weekly])


def test_retention_min_keep_and_s3(pg, clinic, s3, bucket):
    from tests.harness.s3 import client_for
    client = client_for(s3)
    small = dict(s3=s3_option(s3, bucket), tables=["public.patients"], label="hourly")
    run = backups_play(pg, [("b%d" % i, small) for i in range(3)])
    assert all(not run.result("b%d" % i)["failed"] for i in range(3))
    # keep_days 0 would delete every older backup; min_keep 2 keeps the newest two.
    last = backups_play(pg, [("last", dict(small, retention=dict(keep_days=0, min_keep=2)))]).result("last")
    assert sorted(d["backup_id"] for d in last["deleted"]) == sorted(run.result("b%d" % i)["backup_id"] for i in range(2))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(set(k.split("/")[2] for k in keys)) == sorted([run.result("b2")["backup_id"], last["backup_id"]])


def test_retention_options_are_checked(pg, clinic, tmp_path):
    result, dummy = backup(pg, dest=str(tmp_path), retention=dict(keep_last=0))
    assert result["failed"] and "Option retention.keep_last must be 1 or more" in result["msg"]
    assert files_under(str(tmp_path)) == []


def test_verify_restore_proves_the_backup_restores_and_drops_the_scratch_database(cluster, pg, clinic, tmp_path):
    result, dummy = backup(pg, dest=str(tmp_path), verify="restore", compression="zstd",
                           encryption=dict(passphrase=PASSPHRASE))
    assert not result["failed"] and result["verified"], result.get("msg")
    assert result["verification"]["method"] == "restore" and result["verification"]["tables"] == 3
    assert not cluster.primary.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pgops_verify_%'")
    selected, dummy = backup(pg, dest=str(tmp_path), verify="restore", format="plain", tables=["public.patients"])
    assert selected["verified"] and selected["verification"]["method"] == "restore", selected.get("msg")


def test_verify_restore_catches_a_dump_that_does_not_restore(cluster, pg, clinic, tmp_path):
    """A real defect: a CHECK constraint through a function that reads another table.
    The database is consistent and dumps fine, but on restore the checked table's rows
    are loaded before the table the function reads, and the restore fails."""
    cluster.primary.execute("CREATE DATABASE brokendb")
    cluster.primary.execute(
        "CREATE TABLE z_allowed (v int); INSERT INTO z_allowed VALUES (1);"
        "CREATE FUNCTION is_allowed(int) RETURNS bool LANGUAGE sql IMMUTABLE "
        "AS 'SELECT EXISTS (SELECT 1 FROM public.z_allowed WHERE v = $1)';"
        "CREATE TABLE t (v int CHECK (public.is_allowed(v))); INSERT INTO t VALUES (1);", dbname="brokendb")
    listed, dummy = backup(pg, db="brokendb", dest=str(tmp_path), verify="list")
    assert listed["verified"], listed.get("msg")  # the archive itself is intact
    result, run = backup(pg, db="brokendb", dest=str(tmp_path), verify="restore")
    assert result["failed"] and "failed verification" in result["msg"], result.get("msg")
    assert "Traceback" not in run.all_text
    manifests = [json.load(open(p)) for p in glob.glob(str(tmp_path / "brokendb" / "*" / "manifest.json"))]
    assert sorted(m["verification"]["status"] for m in manifests) == ["failed", "passed"]
    assert not cluster.primary.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pgops_verify_%'")


def test_include_globals_stores_roles_beside_the_dump(pg, clinic, tmp_path):
    result, dummy = backup(pg, dest=str(tmp_path), tables=["public.patients"], include_globals=True,
                           compression="gzip", encryption=dict(passphrase=PASSPHRASE))
    assert not result["failed"] and result["verified"], result.get("msg")
    part = result["manifest"]["globals"]
    assert part["file"] == "globals.sql.gz.gpg" and part["verification"]["status"] == "passed"
    folder = os.path.join(str(tmp_path), "clinic", result["backup_id"])
    assert sorted(os.listdir(folder)) == ["clinic.dump.gpg", "globals.sql.gz.gpg", "manifest.json"]
    assert sha256_of(os.path.join(folder, part["file"])) == part["sha256"]
    refused, dummy = backup(pg, dest=str(tmp_path), type="schema", include_globals=True)
    assert refused["failed"] and "include_globals goes with type full" in refused["msg"]


def test_a_failing_globals_dump_takes_the_dump_with_it(pg, clinic, tmp_path):
    found = []
    killer = threading.Thread(target=kill_when_running, args=("pg_dumpall", 0.0, found))
    killer.start()
    result, dummy = backup(pg, dest=str(tmp_path), tables=["public.patients"], include_globals=True)
    killer.join()
    assert found and result["failed"] and "pg_dumpall" in result["msg"], result.get("msg")
    assert files_under(str(tmp_path)) == []


def test_directory_format_dumps_in_parallel_and_restores(cluster, pg, clinic, tmp_path):
    dest, work = tmp_path / "dest", tmp_path / "work"
    dest.mkdir()
    work.mkdir()
    result, dummy = backup(pg, dest=str(dest), format="directory", jobs=2, work_dir=str(work), verify="restore")
    assert not result["failed"] and result["verified"], result.get("msg")
    assert result["verification"]["method"] == "restore" and result["verification"]["tables"] == 3
    folder = dest / "clinic" / result["backup_id"] / "clinic.dir"
    files = result["manifest"]["files"]
    assert "toc.dat" in files and len(files) >= 4  # the TOC and one file per table
    for name, facts in files.items():
        assert sha256_of(str(folder / name)) == facts["sha256"]
    assert os.listdir(str(work)) == []  # the work directory is gone
    listing = dict(dest=str(dest), database="clinic", verify_checksums=True)
    info = run_play([{"name": "info", "pgops.runbook.backup_info": listing}]).result("info")
    assert result["backup_id"] in [b["backup_id"] for b in info["backups"]], info
    assert all(b["checksum_ok"] for b in info["backups"])
    listed, dummy = backup(pg, dest=str(dest), format="directory", jobs=2, tables=["public.patients"])
    assert listed["verified"] and listed["verification"]["method"] == "read-back", listed.get("msg")


def test_directory_format_killed_mid_dump_leaves_nothing(pg, clinic, tmp_path):
    found = []
    killer = threading.Thread(target=kill_when_running, args=("pg_dump", 0.3, found))
    killer.start()
    result, dummy = backup(pg, dest=str(tmp_path), format="directory", jobs=2)
    killer.join()
    assert found and result["failed"], result.get("msg")
    assert files_under(str(tmp_path)) == []
    refused, dummy = backup(pg, dest=str(tmp_path), format="custom", jobs=2)
    assert refused["failed"] and "Option jobs" in refused["msg"]


def test_globals_alone_selection_options_and_the_migration_version(cluster, pg, clinic, tmp_path):
    cluster.primary.execute("CREATE DATABASE selectdb")
    cluster.primary.execute(
        "CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int); INSERT INTO billing.invoices VALUES (1), (2);"
        "CREATE TABLE public.events (id int); INSERT INTO public.events SELECT generate_series(1, 50);"
        "CREATE TABLE public.sessions (id int); INSERT INTO public.sessions SELECT generate_series(1, 30);"
        "CREATE TABLE public.scratch (id int); INSERT INTO public.scratch VALUES (1);"
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('3f2a9c1d');",
        dbname="selectdb")
    result, dummy = backup(pg, db="selectdb", dest=str(tmp_path), verify="restore", exclude_schemas=["billing"],
                           exclude_tables=["public.scratch"], exclude_table_data=["public.sessions"])
    assert result["verified"], result.get("msg")
    assert result["manifest"]["migration_version"] == {"alembic": "3f2a9c1d"}
    assert result["path"].startswith(str(tmp_path)) and result["s3_uri"] is None
    script = subprocess.run(["pg_restore", "--file=-", result["path"]],
                            capture_output=True, check=True).stdout
    assert b"COPY public.events" in script and b"COPY public.sessions" not in script
    assert b"CREATE TABLE public.sessions" in script
    assert b"billing" not in script and b"scratch" not in script
    only, dummy = backup(pg, db="selectdb", dest=str(tmp_path), schemas=["billing"], format="plain", compression="none")
    assert only["verified"], only.get("msg")
    with open(only["path"], "rb") as handle:
        text = handle.read()
    assert b"CREATE TABLE billing.invoices" in text and b"public.events" not in text
    roles, dummy = backup(pg, db="selectdb", dest=str(tmp_path), type="globals", compression="none")
    assert roles["verified"] and roles["path"].endswith("selectdb.sql"), roles.get("msg")
    with open(roles["path"], "rb") as handle:
        text = handle.read()
    assert b"CREATE ROLE pgops_monitor" in text and b"cluster dump complete" in text


def test_lock_wait_timeout_stops_a_backup_queued_behind_a_lock(cluster, pg, clinic, tmp_path):
    holder = cluster.primary.connect("clinic")
    holder.autocommit = False
    holder.cursor().execute("LOCK TABLE public.visits IN ACCESS EXCLUSIVE MODE")
    try:
        started = time.time()
        result, dummy = backup(pg, dest=str(tmp_path), lock_wait_timeout=1)
        assert time.time() - started < 30
        assert result["failed"] and "pg_dump" in result["msg"] and "lock" in result["msg"].lower(), result.get("msg")
        assert files_under(str(tmp_path)) == []
    finally:
        holder.rollback()
        holder.close()


def test_default_backup_is_verified_by_checksum_and_table_of_contents(pg, clinic, tmp_path):
    result, dummy = backup(pg, dest=str(tmp_path))
    assert result["verified"], result.get("msg")
    verification = result["verification"]
    assert verification["method"] == "list" and verification["tables"] == 3 and verification["entries"] > 3
    toc = subprocess.run(["pg_restore", "--list", result["path"]], capture_output=True, check=True, text=True).stdout
    assert verification["entries"] == len([line for line in toc.splitlines() if line and not line.startswith(";")])
