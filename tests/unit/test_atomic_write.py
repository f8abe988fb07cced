"""write_atomically: readers see the old file or the new one, never a part of one."""

import os
import resource
import signal
import stat

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError


def test_writes_then_reports_no_change_for_the_same_content(tmp_path):
    target = tmp_path / "health.prom"
    assert write_atomically(str(target), "a 1\n") is True
    assert target.read_text() == "a 1\n"
    assert write_atomically(str(target), "a 1\n") is False
    assert write_atomically(str(target), b"a 1\n") is False
    assert write_atomically(str(target), "a 2\n") is True
    assert target.read_text() == "a 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["health.prom"]


def test_text_is_written_as_utf8(tmp_path):
    target = tmp_path / "snapshot.json"
    write_atomically(str(target), u"Zo\u00eb")
    assert target.read_bytes() == b"Zo\xc3\xab"


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_sets_the_mode(tmp_path, mode):
    target = tmp_path / "out"
    write_atomically(str(target), "x", mode=mode)
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == mode


def test_replaces_the_file_rather_than_rewriting_it(tmp_path):
    target = tmp_path / "out"
    target.write_text("old")
    reader = open(str(target))  # a reader that opened the old file keeps reading the old content
    try:
        write_atomically(str(target), "new content")
        assert reader.read() == "old"
    finally:
        reader.close()
    assert target.read_text() == "new content"


def test_a_missing_directory_names_the_option(tmp_path):
    with pytest.raises(PgopsError) as caught:
        write_atomically(str(tmp_path / "nope" / "out.prom"), "x", option="prometheus_textfile")
    message = str(caught.value)
    assert message.startswith("Option prometheus_textfile:")
    assert str(tmp_path / "nope") in message and "does not exist" in message


def test_a_directory_in_the_way_fails_cleanly(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(PgopsError) as caught:
        write_atomically(str(target), "x")
    assert str(caught.value).startswith("Option dest: cannot write %s" % target)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert target.is_dir()


def test_a_failed_write_keeps_the_old_file_and_no_temporary_one(tmp_path):
    """A real fault: the file size limit (RLIMIT_FSIZE) makes the write fail half way."""
    target = tmp_path / "snapshot.json"
    target.write_text("old content\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(PgopsError) as caught:
            write_atomically(str(target), "x" * 1000000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert "cannot write" in str(caught.value)
    assert target.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.json"]
