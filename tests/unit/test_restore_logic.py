"""The restore's pure logic: which statements of a globals script run, how a backup is
found from src or the catalog, the manifest checks, the request's refusals and the names
of the databases it creates."""

import datetime
import json
import os

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.restore.engine import RestoreRequest, previous_name, restoring_name
from ansible_collections.pgops.runbook.plugins.module_utils.restore.globals_sql import roles_script, split_statements
from ansible_collections.pgops.runbook.plugins.module_utils.restore.source import (
    check_manifest, entry_from_catalog, entry_from_src, split_s3_uri,
)
from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage

GLOBALS = """--
-- PostgreSQL database cluster dump
--

SET default_transaction_read_only = off;
SET client_encoding = 'UTF8';

CREATE ROLE app;
ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc;def';
CREATE ROLE "Night Nurse";
ALTER ROLE "Night Nurse" WITH LOGIN CONNECTION LIMIT 3;
COMMENT ON ROLE "Night Nurse" IS 'covers; the -- night shift';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER;
ALTER ROLE app IN DATABASE clinic SET work_mem TO '8MB';
ALTER ROLE app IN DATABASE gone SET work_mem TO '8MB';
GRANT pg_monitor TO "Night Nurse" GRANTED BY postgres;
GRANT app TO postgres GRANTED BY postgres;
CREATE TABLESPACE fast OWNER postgres LOCATION '/mnt/fast';
GRANT CREATE ON TABLESPACE fast TO app;
DROP DATABASE clinic;

--
-- PostgreSQL database cluster dump complete
--
"""


def test_statements_split_outside_quotes_and_comments_dropped():
    statements = split_statements(GLOBALS)
    assert "ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc;def'" in statements
    assert "COMMENT ON ROLE \"Night Nurse\" IS 'covers; the -- night shift'" in statements
    assert not [s for s in statements if s.startswith("--")]


def test_roles_script_creates_missing_roles_and_leaves_existing_ones_alone():
    sql, report = roles_script(GLOBALS, existing_roles=["postgres", "pg_monitor"], existing_databases=["clinic"])
    assert report["created"] == ["app", "Night Nurse"]
    assert report["left_alone"] == ["postgres"]
    assert report["skipped"] == {"tablespace": 2, "existing role": 3, "database missing": 1, "other": 1}
    assert "ALTER ROLE app IN DATABASE clinic SET work_mem TO '8MB';" in sql
    assert "GRANT pg_monitor TO \"Night Nurse\" GRANTED BY postgres;" in sql
    assert "GRANT app TO postgres" not in sql  # postgres existed: its memberships are left alone
    assert "DROP DATABASE" not in sql and "TABLESPACE" not in sql and "ALTER ROLE postgres" not in sql


def test_roles_script_with_every_role_present_runs_nothing_but_settings():
    sql, report = roles_script(GLOBALS, existing_roles=["postgres", "app", "Night Nurse", "pg_monitor"])
    assert report["created"] == [] and sorted(report["left_alone"]) == ["Night Nurse", "app", "postgres"]
    assert [line for line in sql.splitlines() if not line.startswith("SET ")] == []


def test_database_names_fit_in_63_bytes():
    long_name = "é" * 40  # 80 bytes
    assert len(restoring_name(long_name, "x").encode("utf-8")) <= 63
    assert restoring_name("clinic", "clinic-20261125T010000Z").startswith("clinic__restoring_")
    when = datetime.datetime(2026, 11, 25, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert previous_name("clinic", when) == "clinic__pre_restore_20261125T030405Z"
    name = previous_name(long_name, when)
    assert len(name.encode("utf-8")) <= 63 and name.endswith("__pre_restore_20261125T030405Z")
    name.encode("utf-8").decode("utf-8")  # no character cut in half


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket", "s3://bucket/", "s3:///key"])
def test_bad_s3_uri_names_option_src(uri):
    with pytest.raises(PgopsError, match="Option src must be a local path or s3://bucket/key"):
        split_s3_uri(uri)


def manifest(**changes):
    base = dict(format=1, backup_id="clinic-20261125T010000Z", database="clinic", type="full", dump_format="custom",
                file="clinic.dump", sha256="0" * 64, server_version="15.4", client_version=15, label=None,
                finished_at="2026-11-25T01:00:01+00:00", verification=dict(status="passed"))
    base.update(changes)
    return base


@pytest.mark.parametrize("changes, message", [
    (dict(sha256=None), "lacks sha256"),
    (dict(format=2), "has format 2"),
    (dict(type="incremental"), "unknown type"),
    (dict(file="../etc/passwd"), "invalid file"),
])
def test_manifest_checks(changes, message):
    with pytest.raises(PgopsError, match=message):
        check_manifest(manifest(**changes), "here")


def write_backup(root, **changes):
    m = manifest(**changes)
    directory = os.path.join(root, m["database"], m["backup_id"])
    os.makedirs(directory)
    with open(os.path.join(directory, m["file"]), "wb") as handle:
        handle.write(b"PGDMP")
    with open(os.path.join(directory, "manifest.json"), "w") as handle:
        json.dump(m, handle)
    return directory


def test_src_may_name_the_dump_its_directory_or_its_manifest(tmp_path):
    directory = write_backup(str(tmp_path))
    for src in (directory, os.path.join(directory, "clinic.dump"), os.path.join(directory, "manifest.json")):
        entry = entry_from_src(src)
        assert entry.backup_id == "clinic-20261125T010000Z"
        assert entry.storage.path(entry.dump_key) == os.path.join(directory, "clinic.dump")
        assert entry.catalog_root == str(tmp_path)  # the pre-restore backup can go beside it


def test_src_without_manifest_or_dump_is_refused(tmp_path):
    directory = write_backup(str(tmp_path))
    os.unlink(os.path.join(directory, "clinic.dump"))
    with pytest.raises(PgopsError, match="the dump file clinic.dump named by the manifest is missing"):
        entry_from_src(directory)
    lonely = tmp_path / "lonely.dump"
    lonely.write_bytes(b"PGDMP")
    with pytest.raises(PgopsError, match="no manifest.json beside the backup"):
        entry_from_src(str(lonely))


def test_latest_skips_failed_backups_and_other_labels(tmp_path):
    root = str(tmp_path)
    write_backup(root, backup_id="clinic-20261125T010000Z", finished_at="2026-11-25T01:00:01+00:00")
    write_backup(root, backup_id="clinic-20261125T020000Z-nightly", label="nightly", finished_at="2026-11-25T02:00:01+00:00")
    write_backup(root, backup_id="clinic-20261125T030000Z", finished_at="2026-11-25T03:00:01+00:00",
                 verification=dict(status="failed"))
    storage = LocalStorage(root)
    assert entry_from_catalog([storage], database="clinic").backup_id == "clinic-20261125T020000Z-nightly"
    assert entry_from_catalog([storage], database="clinic", label=None).backup_id == "clinic-20261125T020000Z-nightly"
    # A failed backup is still restorable when named explicitly.
    assert entry_from_catalog([storage], backup_id="clinic-20261125T030000Z").backup_id == "clinic-20261125T030000Z"
    with pytest.raises(PgopsError, match="Option latest: no backup of database clinic with label weekly"):
        entry_from_catalog([storage], database="clinic", label="weekly")


@pytest.mark.parametrize("changes, options, message", [
    (dict(), dict(target_db="clinic", mode="replace"), "Option confirm must equal target_db \\(clinic\\) to replace it; got nothing."),
    (dict(), dict(target_db="clinic", mode="replace", confirm="Clinic"), "got 'Clinic'"),
    (dict(), dict(target_db=None), "Option target_db is required"),
    (dict(), dict(target_db="x" * 64), "at most 63 bytes"),
    (dict(type="data"), dict(target_db="clinic"), "is data only"),
    (dict(type="globals"), dict(), "set option globals"),
    (dict(dump_format="plain"), dict(target_db="c", jobs=2), "Option jobs is not available for a plain-format backup"),
    (dict(encryption=dict(method="gpg-public-key", recipient_fingerprint="ABCD")), dict(target_db="c"),
     "give encryption.private_key"),
    (dict(), dict(target_db="c", mode="replace", confirm="c", pre_restore_backup=True), "needs a place for the backup"),
])
def test_request_refusals(tmp_path, changes, options, message):
    directory = write_backup(str(tmp_path), **changes)
    entry = entry_from_src(directory)
    with pytest.raises(PgopsError, match=message):
        RestoreRequest(entry, **options)
