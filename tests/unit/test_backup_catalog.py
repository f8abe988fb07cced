"""read_catalog: what counts as a backup in a storage, and what is only an incomplete
directory. Hand-made backup directories in a real LocalStorage."""

import hashlib
import json
import os

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.backup.catalog import read_catalog
from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import StorageError
from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage

DUMP = b"PGDMP pretend custom-format archive\n" * 10


def write(root, key, data):
    path = os.path.join(str(root), *key.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def manifest(database, backup_id, finished_at, status="passed", label=None, **extra):
    doc = dict(format=1, backup_id=backup_id, database=database, type="full", dump_format="custom",
               file="%s.dump" % database, started_at=finished_at, finished_at=finished_at, size_bytes=len(DUMP),
               sha256=hashlib.sha256(DUMP).hexdigest(), label=label, tags={}, verification=dict(status=status))
    doc.update(extra)
    return doc


def add_backup(root, database, backup_id, finished_at, dump=True, **fields):
    """A backup directory as pgops.runbook.backup leaves it: the dump, then the manifest."""
    if dump:
        write(root, "%s/%s/%s.dump" % (database, backup_id, database), DUMP)
    doc = manifest(database, backup_id, finished_at, **fields)
    write(root, "%s/%s/manifest.json" % (database, backup_id), json.dumps(doc).encode("utf-8"))
    return doc


def test_complete_backups_are_listed_oldest_first_by_finish_time(tmp_path):
    # Directory names sort the other way round from the finish times.
    add_backup(tmp_path, "appdb", "appdb-b", "2026-11-25T02:00:00+00:00", label="nightly")
    add_backup(tmp_path, "appdb", "appdb-a", "2026-11-25T03:00:00+00:00", status="failed")
    add_backup(tmp_path, "otherdb", "otherdb-c", "2026-11-24T23:00:00+00:00")
    complete, incomplete = read_catalog(LocalStorage(str(tmp_path)))
    assert incomplete == []
    assert [e.backup_id for e in complete] == ["otherdb-c", "appdb-b", "appdb-a"]
    newest = complete[-1]
    assert newest.verified is False and newest.verification_status == "failed"
    summary = complete[1].summary()
    assert summary["label"] == "nightly" and summary["verified"] is True
    assert summary["location"] == str(tmp_path / "appdb" / "appdb-b" / "appdb.dump")
    assert summary["manifest_location"] == str(tmp_path / "appdb" / "appdb-b" / "manifest.json")


def test_database_limits_the_listing(tmp_path):
    add_backup(tmp_path, "appdb", "appdb-1", "2026-11-25T02:00:00+00:00")
    add_backup(tmp_path, "appdb2", "appdb2-1", "2026-11-25T02:00:00+00:00")
    complete, dummy = read_catalog(LocalStorage(str(tmp_path)), "appdb")
    assert [e.backup_id for e in complete] == ["appdb-1"]


@pytest.mark.parametrize("damage, reason", [
    ("no manifest", "no manifest"),
    ("corrupt json", "unusable manifest"),
    ("another backup", "describes another backup"),
    ("missing dump", "dump file appdb.dump is missing"),
    ("not an object", "unusable manifest"),
])
def test_a_directory_without_a_usable_manifest_is_incomplete_never_a_backup(tmp_path, damage, reason):
    add_backup(tmp_path, "appdb", "appdb-good", "2026-11-25T01:00:00+00:00")
    bad = "appdb/appdb-bad/manifest.json"
    if damage == "no manifest":
        write(tmp_path, "appdb/appdb-bad/appdb.dump", DUMP)
    elif damage == "corrupt json":
        write(tmp_path, "appdb/appdb-bad/appdb.dump", DUMP)
        write(tmp_path, bad, b'{"backup_id": "appdb-bad", "database": ')
    elif damage == "another backup":
        write(tmp_path, "appdb/appdb-bad/appdb.dump", DUMP)
        write(tmp_path, bad, json.dumps(manifest("appdb", "appdb-good", "2026-11-25T02:00:00+00:00")).encode())
    elif damage == "missing dump":
        add_backup(tmp_path, "appdb", "appdb-bad", "2026-11-25T02:00:00+00:00", dump=False)
    else:
        write(tmp_path, "appdb/appdb-bad/appdb.dump", DUMP)
        write(tmp_path, bad, b'["appdb-bad"]')
    complete, incomplete = read_catalog(LocalStorage(str(tmp_path)))
    assert [e.backup_id for e in complete] == ["appdb-good"]
    assert len(incomplete) == 1
    summary = incomplete[0].summary()
    assert (summary["database"], summary["backup_id"]) == ("appdb", "appdb-bad")
    assert reason in summary["reason"], summary["reason"]
    assert all(location.startswith(str(tmp_path / "appdb" / "appdb-bad")) for location in summary["locations"])


def test_files_outside_the_layout_are_ignored(tmp_path):
    add_backup(tmp_path, "appdb", "appdb-1", "2026-11-25T02:00:00+00:00")
    write(tmp_path, "README", b"not a backup")
    write(tmp_path, "appdb/stray.txt", b"not a backup either")
    write(tmp_path, "appdb/appdb-1/sub/deeper.bin", b"x")
    write(tmp_path, "appdb/appdb-2/appdb.dump.partial", b"a crashed writer")
    complete, incomplete = read_catalog(LocalStorage(str(tmp_path)))
    assert [e.backup_id for e in complete] == ["appdb-1"] and incomplete == []


def test_stored_sha256_reads_the_dump_back(tmp_path):
    add_backup(tmp_path, "appdb", "appdb-1", "2026-11-25T02:00:00+00:00")
    entry = read_catalog(LocalStorage(str(tmp_path)))[0][0]
    assert entry.stored_sha256(chunk_size=7) == entry.manifest["sha256"]
    path = tmp_path / "appdb" / "appdb-1" / "appdb.dump"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert entry.stored_sha256() != entry.manifest["sha256"]
    path.unlink()
    with pytest.raises(StorageError, match="does not exist"):
        entry.stored_sha256()


def test_an_empty_or_missing_root(tmp_path):
    assert read_catalog(LocalStorage(str(tmp_path))) == ([], [])
    with pytest.raises(StorageError, match="Option dest: .* does not exist"):
        read_catalog(LocalStorage(str(tmp_path / "nope")))
