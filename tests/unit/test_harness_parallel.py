"""The test harness's promises that two test processes at once (pytest-xdist) rely on:
a secret scan counts only this process's own children, and database names made from
test names are valid, distinct and stable."""

import os
import shutil
import signal
import subprocess
import time
import types

import pytest

from tests.harness.migrations import database_name
from tests.harness.processes import command_lines_seen, descendants


def fake_request(module, name):
    return types.SimpleNamespace(module=types.SimpleNamespace(__name__=module), node=types.SimpleNamespace(name=name))


def running_command_lines():
    """Every process's command line now."""
    lines = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                lines.append(handle.read())
        except OSError:
            pass  # not a process, or it exited meanwhile
    return lines


def test_command_lines_seen_counts_this_process_children_and_not_other_processes(tmp_path):
    if not shutil.which("setsid"):
        pytest.fail("setsid (util-linux) is missing")
    ours, theirs = "pgops-ours-%d" % os.getpid(), "pgops-theirs-%d" % os.getpid()
    stop = tmp_path / "stop"
    # setsid -f forks and exits: the shell it leaves behind runs below nobody of ours,
    # as another pytest worker's processes do.
    subprocess.run(["setsid", "-f", "sh", "-c", "while [ ! -e %s ]; do sleep 0.05; done; : %s" % (stop, theirs)],
                   check=True)
    try:
        with command_lines_seen() as seen:
            subprocess.run(["sh", "-c", "sleep 0.5; : %s" % ours], check=True)
        outsider_running = any(theirs.encode() in line for line in running_command_lines())
    finally:
        stop.touch()
    assert any(ours.encode() in line for line in seen)
    assert outsider_running, "the outside process was gone before the scan could have seen it"
    assert not any(theirs.encode() in line for line in seen)


def test_descendants_include_grandchildren():
    child = subprocess.Popen(["sh", "-c", "sleep 5 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not descendants(child.pid):
            assert time.monotonic() < deadline, "sh never started its sleep"
            time.sleep(0.02)
        ours = descendants(os.getpid())
        assert child.pid in ours and descendants(child.pid) <= ours
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


@pytest.mark.parametrize("module, name", [
    ("test_migrate_sql", "test_target_downgrade_and_back"),
    ("tests.integration.test_migrate_django", "test_bad_input_is_one_sentence_and_applies_nothing[no_manage_py]"),
    ("test_x", "test_" + "very_long_name_" * 10 + "[case-1]"),
])
def test_database_names_are_valid_identifiers_named_after_the_test(module, name):
    made = database_name(fake_request(module, name))
    assert len(made) <= 63 and made == made.lower() and made.replace("_", "").isalnum()
    assert made.startswith(module.rsplit(".", 1)[-1][len("test_"):] + "_test_")
    assert made == database_name(fake_request(module, name))  # stable


def test_parametrized_tests_get_distinct_database_names_even_when_shortened():
    long_name = "test_bad_input_is_one_sentence_and_applies_nothing_in_every_case_we_know"
    names = {database_name(fake_request("test_migrate_alembic", "%s[%s]" % (long_name, case)))
             for case in ("no_ini", "no_target", "syntax_error", "no_executable")}
    assert len(names) == 4
