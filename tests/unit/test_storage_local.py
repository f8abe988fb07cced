"""LocalStorage (option dest): what a backup directory looks like to its user, crashes and full disks included.

The read-only and disk-full faults are real: a small tmpfs mounted for the test (we run as root)."""

import contextlib
import os
import stat
import subprocess
import time

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import ObjectInfo, StorageError
from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage

MIB = 1024 * 1024


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def files_under(root):
    """Every file below `root`, relative, '/'-separated."""
    found = []
    for directory, dummy, names in os.walk(str(root)):
        found.extend(os.path.relpath(os.path.join(directory, name), str(root)).replace(os.sep, "/") for name in names)
    return sorted(found)


@contextlib.contextmanager
def tmpfs(path, size="1m", read_only=False):
    """Mount a small tmpfs at `path` for the duration of the block (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    os.makedirs(str(path), exist_ok=True)
    options = "size=%s,mode=0755%s" % (size, ",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % done.stderr.strip())
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def restrictive_umask():
    """A umask that would strip the owner's write bit: modes must be set explicitly."""
    previous = os.umask(0o277)
    yield
    os.umask(previous)


def test_committed_object_is_0600_in_0700_directories_with_its_content(tmp_path, restrictive_umask):
    storage = LocalStorage(str(tmp_path))
    payload = os.urandom(3 * MIB + 17)
    with storage.writer("prod/2026/base.dump") as writer:
        for start in range(0, len(payload), 65536):
            writer.write(payload[start:start + 65536])
        assert not storage.exists("prod/2026/base.dump")
        assert storage.list() == []
        writer.commit()
    assert writer.bytes_written == len(payload)
    assert (tmp_path / "prod/2026/base.dump").read_bytes() == payload
    assert mode_of(tmp_path / "prod/2026/base.dump") == 0o600
    assert mode_of(tmp_path / "prod") == 0o700
    assert mode_of(tmp_path / "prod/2026") == 0o700
    assert files_under(tmp_path) == ["prod/2026/base.dump"]
    assert storage.uri("prod/2026/base.dump") == str(tmp_path / "prod/2026/base.dump")
    assert storage.location == str(tmp_path)


def test_nothing_is_visible_under_the_key_until_commit(tmp_path):
    storage = LocalStorage(str(tmp_path))
    writer = storage.writer("a/b.dump")
    writer.write(b"x" * 1000)
    assert not storage.exists("a/b.dump")
    assert storage.list() == []
    assert storage.incomplete_uploads() == ["a/b.dump"]
    writer.commit()
    assert storage.exists("a/b.dump")
    assert storage.incomplete_uploads() == []


def test_abort_leaves_nothing_behind(tmp_path):
    storage = LocalStorage(str(tmp_path))
    writer = storage.writer("a/b.dump")
    writer.write(b"half a backup")
    writer.abort()
    writer.abort()  # twice is harmless
    assert writer.abort_error is None
    assert not storage.exists("a/b.dump")
    assert storage.incomplete_uploads() == []
    assert files_under(tmp_path) == []
    with pytest.raises(StorageError, match="aborted"):
        writer.write(b"more")
    with pytest.raises(StorageError, match="aborted"):
        writer.commit()


def test_an_exception_in_the_with_block_aborts_and_propagates(tmp_path):
    storage = LocalStorage(str(tmp_path))
    with pytest.raises(RuntimeError, match="pg_dump died"):
        with storage.writer("a/b.dump") as writer:
            writer.write(b"some of the dump")
            raise RuntimeError("pg_dump died")
    assert files_under(tmp_path) == []
    assert storage.incomplete_uploads() == []


def test_leaving_the_with_block_normally_does_not_commit(tmp_path):
    storage = LocalStorage(str(tmp_path))
    with storage.writer("b.dump") as writer:
        writer.write(b"data")
    assert not storage.exists("b.dump")
    writer.commit()
    assert storage.get("b.dump") == b"data"


def test_a_partial_left_by_a_crashed_run_is_replaced(tmp_path):
    storage = LocalStorage(str(tmp_path))
    (tmp_path / "b.dump.partial").write_bytes(b"crashed run's leftovers, longer than the new content")
    assert storage.incomplete_uploads() == ["b.dump"]
    with storage.writer("b.dump") as writer:
        writer.write(b"new")
        writer.commit()
    assert storage.get("b.dump") == b"new"
    assert files_under(tmp_path) == ["b.dump"]


def test_discard_incomplete_removes_leftover_partials(tmp_path):
    storage = LocalStorage(str(tmp_path))
    os.makedirs(str(tmp_path / "x/y"))
    (tmp_path / "x/y/c.dump.partial").write_bytes(b"leftover")
    (tmp_path / "keep.dump").write_bytes(b"complete")
    assert storage.incomplete_uploads("x/") == ["x/y/c.dump"] and storage.incomplete_uploads("k") == []
    assert storage.discard_incomplete("k") == []
    assert storage.discard_incomplete() == ["x/y/c.dump"]
    assert files_under(tmp_path) == ["keep.dump"]
    assert not (tmp_path / "x").exists()


def test_reader_streams_and_get_returns_the_bytes(tmp_path):
    storage = LocalStorage(str(tmp_path))
    payload = os.urandom(200000)
    storage.put_atomic("m/manifest.json", payload)
    handle = storage.reader("m/manifest.json")
    try:
        assert handle.read(1000) == payload[:1000]
        assert handle.read(1 << 20) == payload[1000:]
        assert handle.read(10) == b""
    finally:
        handle.close()
    assert storage.get("m/manifest.json") == payload


def test_put_atomic_writes_0600_and_replaces_the_whole_object(tmp_path, restrictive_umask):
    storage = LocalStorage(str(tmp_path))
    storage.put_atomic("manifest.json", b'{"version": 1, "long": "' + b"x" * 100 + b'"}')
    storage.put_atomic("manifest.json", b'{"version": 2}')
    assert storage.get("manifest.json") == b'{"version": 2}'
    assert mode_of(tmp_path / "manifest.json") == 0o600
    assert files_under(tmp_path) == ["manifest.json"]


def test_reading_a_missing_key_names_dest_and_the_path(tmp_path):
    storage = LocalStorage(str(tmp_path))
    with pytest.raises(StorageError) as caught:
        storage.get("nope.dump")
    assert str(caught.value) == "Option dest: %s does not exist." % (tmp_path / "nope.dump")


def test_list_is_recursive_sorted_by_key_filtered_by_prefix_and_skips_partials(tmp_path):
    storage = LocalStorage(str(tmp_path))
    for key, size in (("prod/2026-01-02/db.dump", 30), ("prod/2026-01-01/db.dump", 10),
                      ("prod/2026-01-01/manifest.json", 5), ("staging/x.dump", 1), ("prod2/y.dump", 2)):
        storage.put_atomic(key, b"z" * size)
    in_progress = storage.writer("prod/2026-01-03/db.dump")
    in_progress.write(b"not yet")
    try:
        listing = storage.list("prod/")
        assert [info.key for info in listing] == ["prod/2026-01-01/db.dump", "prod/2026-01-01/manifest.json",
                                                  "prod/2026-01-02/db.dump"]
        assert [info.size for info in listing] == [10, 5, 30]
        now = time.time()
        assert all(isinstance(info, ObjectInfo) and now - 60 < info.modified <= now + 1 for info in listing)
        assert [info.key for info in storage.list("prod")] == [info.key for info in listing] + ["prod2/y.dump"]
        assert [info.key for info in storage.list("prod/2026-01-01/m")] == ["prod/2026-01-01/manifest.json"]
        assert len(storage.list()) == 5
        assert storage.list("nothing/here/") == []
    finally:
        in_progress.abort()


def test_delete_ignores_missing_keys_and_removes_emptied_directories_up_to_the_root(tmp_path):
    storage = LocalStorage(str(tmp_path))
    storage.put_atomic("prod/2026-01-01/db.dump", b"1")
    storage.put_atomic("prod/2026-01-01/manifest.json", b"2")
    storage.put_atomic("prod/2026-01-02/db.dump", b"3")
    storage.delete(["prod/2026-01-01/db.dump", "prod/2026-01-01/manifest.json", "prod/never-there.dump"])
    assert not storage.exists("prod/2026-01-01/db.dump")
    assert not (tmp_path / "prod/2026-01-01").exists()
    assert storage.exists("prod/2026-01-02/db.dump")
    storage.delete(["prod/2026-01-02/db.dump"])
    assert os.listdir(str(tmp_path)) == []  # the root itself stays
    storage.delete([])


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a//b", "a/./b", "a/../../b", "", "a/"])
def test_keys_outside_the_root_are_refused(tmp_path, key):
    storage = LocalStorage(str(tmp_path / "root"))
    os.makedirs(str(tmp_path / "root"))
    with pytest.raises(StorageError, match="^Option dest: invalid object key"):
        storage.writer(key)
    assert files_under(tmp_path) == []


def test_check_writable_accepts_a_writable_directory_and_leaves_nothing(tmp_path):
    LocalStorage(str(tmp_path)).check_writable()
    assert os.listdir(str(tmp_path)) == []


def test_check_writable_on_a_missing_directory_does_not_create_it(tmp_path):
    missing = tmp_path / "not" / "there"
    with pytest.raises(StorageError) as caught:
        LocalStorage(str(missing)).check_writable()
    assert str(caught.value) == "Option dest: %s does not exist." % missing
    assert not (tmp_path / "not").exists()
    with pytest.raises(StorageError, match="does not exist"):
        LocalStorage(str(missing)).writer("a.dump")


def test_check_writable_on_a_file(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(StorageError) as caught:
        LocalStorage(str(target), option="restore_dir").check_writable()
    assert str(caught.value) == "Option restore_dir: %s is not a directory." % target


def test_check_writable_on_a_read_only_file_system(tmp_path):
    with tmpfs(tmp_path / "ro", read_only=True) as root:
        storage = LocalStorage(root)
        with pytest.raises(StorageError) as caught:
            storage.check_writable()
        assert str(caught.value) == "Option dest: %s is not writable (Read-only file system)." % root
        with pytest.raises(StorageError, match="^Option dest: .* is not writable"):
            storage.put_atomic("m.json", b"{}")


def write_all(storage, key, payload, chunk, in_with_block):
    """Write `payload` to `key` and commit, inside a with-block or (as a careless caller would) without."""
    if in_with_block:
        with storage.writer(key) as writer:
            for start in range(0, len(payload), chunk):
                writer.write(payload[start:start + chunk])
            writer.commit()
    else:
        writer = storage.writer(key)
        for start in range(0, len(payload), chunk):
            writer.write(payload[start:start + chunk])
        writer.commit()


@pytest.mark.parametrize("in_with_block", [True, False], ids=["with-block", "bare-writer"])
@pytest.mark.parametrize("chunk", [64 * 1024, 3 * MIB])
def test_disk_full_while_writing_names_dest_and_leaves_nothing(tmp_path, chunk, in_with_block):
    with tmpfs(tmp_path / "small", size="1m") as root:
        storage = LocalStorage(root)
        storage.check_writable()
        with pytest.raises(StorageError) as caught:
            write_all(storage, "prod/base.dump", os.urandom(3 * MIB), chunk, in_with_block)
        path = os.path.join(root, "prod", "base.dump")
        assert str(caught.value) == "Option dest: no space left on device while writing %s." % path
        assert files_under(root) == []
        assert storage.incomplete_uploads() == []
        assert not storage.exists("prod/base.dump")
        # The space is given back: a small object still fits.
        storage.put_atomic("prod/manifest.json", b"{}")
        assert storage.get("prod/manifest.json") == b"{}"
