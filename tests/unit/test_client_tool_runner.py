"""The client-tool runner: version parsing and choice, the private connection
environment, and pipelines of real processes (plain Unix tools, no PostgreSQL)."""

import os
import signal
import stat
import sys
import tempfile
import time

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.client_tools import (
    ClientEnvironment,
    PipelineError,
    choose_tool,
    error_line,
    parse_tool_version,
    run_pipeline,
)
from ansible_collections.pgops.runbook.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

# --- versions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 15),
    ("psql (PostgreSQL) 9.6.24", 9.6),
    ("pg_restore (PostgreSQL) 17.2", 17),
    ("pg_dump (PostgreSQL) 18beta1", 18),
    ("psql (PostgreSQL) 10.23 (Ubuntu 10.23-1.pgdg20.04+1)\n", 10),
])
def test_parse_tool_version(text, expected):
    assert parse_tool_version(text) == expected


@pytest.mark.parametrize("text", ["", None, "garbage", "pg_dump 15.4", "bash: pg_dump: command not found"])
def test_parse_tool_version_without_a_version(text):
    assert parse_tool_version(text) is None


def test_choose_tool_prefers_the_servers_major():
    candidates = [("/usr/lib/postgresql/17/bin/pg_dump", 17), ("/usr/lib/postgresql/15/bin/pg_dump", 15),
                  ("/usr/lib/postgresql/16/bin/pg_dump", 16)]
    assert choose_tool("pg_dump", 15, candidates) == ("/usr/lib/postgresql/15/bin/pg_dump", 15)


def test_choose_tool_takes_the_newest_newer_client_otherwise():
    candidates = [("/a/pg_dump", 16), ("/b/pg_dump", 17), ("/c/pg_dump", 13)]
    assert choose_tool("pg_dump", 15, candidates) == ("/b/pg_dump", 17)


def test_choose_tool_refuses_a_client_older_than_the_server():
    with pytest.raises(PgopsError) as caught:
        choose_tool("pg_dump", 16, [("/usr/lib/postgresql/13/bin/pg_dump", 13), ("/usr/bin/pg_dump", 9.6)])
    message = str(caught.value)
    assert "pg_dump 13" in message
    assert "/usr/lib/postgresql/13/bin/pg_dump" in message
    assert "PostgreSQL 16" in message
    assert "older" in message


def test_choose_tool_without_candidates_says_what_to_install():
    with pytest.raises(PgopsError) as caught:
        choose_tool("pg_restore", 16, [])
    message = str(caught.value)
    assert "pg_restore" in message and "not found" in message
    assert "16" in message and "client_bindir" in message


# --- ClientEnvironment -----------------------------------------------------------------------------

PASSWORD = r"pa:ss\word"


@pytest.fixture
def settings():
    return ConnectionSettings(dict(host="db.example", port="5433", user="app", dbname="appdb", sslmode="verify-full",
                                   connect_timeout="30"), password=PASSWORD)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_client_environment_points_at_private_files(settings):
    base = dict(PATH="/usr/bin:/bin", PGPASSWORD="from-the-shell", PGSERVICE="theirs", PGSERVICEFILE="/etc/theirs",
                PGHOST="env-host")
    with ClientEnvironment(settings, base_env=base) as env:
        service_file, passfile = env["PGSERVICEFILE"], env["PGPASSFILE"]
        directory = os.path.dirname(service_file)
        assert os.path.dirname(passfile) == directory
        assert mode_of(directory) == 0o700
        assert mode_of(service_file) == 0o600
        assert mode_of(passfile) == 0o600
        assert env["PGSERVICE"] == "pgops"
        assert "PGPASSWORD" not in env
        assert env["PATH"] == "/usr/bin:/bin"
        assert env["PGHOST"] == "env-host"  # unset keywords still come from the caller's PG* variables
        with open(passfile) as handle:
            assert handle.read() == "*:*:*:*:pa\\:ss\\\\word\n"
        with open(service_file) as handle:
            lines = handle.read().splitlines()
        # The service file holds every keyword and no password.
        assert lines[0] == "[pgops]"
        assert sorted(lines[1:]) == sorted(["host=db.example", "port=5433", "user=app", "dbname=appdb",
                                            "sslmode=verify-full", "connect_timeout=30"])
        for value in env.values():
            assert PASSWORD not in value
            assert "pa:ss" not in value
    assert not os.path.exists(directory)


def test_pgpassword_of_the_module_environment_is_dropped(settings, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-the-process")
    with ClientEnvironment(settings) as env:
        assert "PGPASSWORD" not in env
        assert "from-the-process" not in env.values()


def test_client_environment_without_password_writes_no_passfile(settings):
    bare = ConnectionSettings(settings.keywords)
    with ClientEnvironment(bare, base_env={}) as env:
        assert "PGPASSFILE" not in env
        directory = os.path.dirname(env["PGSERVICEFILE"])
        assert os.listdir(directory) == ["pg_service.conf"]
    assert not os.path.exists(directory)


def test_client_environment_for_another_database(settings):
    with ClientEnvironment(settings, dbname="postgres", base_env={}) as env:
        with open(env["PGSERVICEFILE"]) as handle:
            assert "dbname=postgres" in handle.read().splitlines()
    assert settings.keywords["dbname"] == "appdb"


def test_client_environment_is_removed_after_an_exception(settings):
    seen = {}
    with pytest.raises(ZeroDivisionError):
        with ClientEnvironment(settings, base_env={}) as env:
            seen["dir"] = os.path.dirname(env["PGSERVICEFILE"])
            assert os.path.exists(env["PGPASSFILE"])
            1 / 0
    assert not os.path.exists(seen["dir"])


def test_client_environment_refuses_a_value_with_a_line_break(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what the refusal leaves behind stays in tmp_path
    bad = ConnectionSettings(dict(host="db.example", application_name="nightly\nhost=evil.example"))
    with pytest.raises(PgopsError) as caught:
        with ClientEnvironment(bad, base_env={}):
            pass  # pragma: no cover
    assert "line break" in str(caught.value)


def test_a_refused_line_break_leaves_no_directory_behind(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bad = ConnectionSettings(dict(host="db.example", application_name="a\nb"), password="pw")
    with pytest.raises(PgopsError):
        with ClientEnvironment(bad, base_env={}):
            pass  # pragma: no cover
    assert [p.name for p in tmp_path.iterdir()] == []


# --- run_pipeline ---------------------------------------------------------------------------------------

ENV = dict(PATH=os.environ.get("PATH", "/usr/bin:/bin"), LC_ALL="C")


def test_pipeline_joins_stdout_to_stdin(deadline):
    output, statuses = run_pipeline([["printf", "abc"], ["tr", "a-z", "A-Z"]], ENV)
    assert output == b"ABC"
    assert [(s["name"], s["returncode"]) for s in statuses] == [("printf", 0), ("tr", 0)]


def test_pipeline_reads_a_given_stdin(deadline, tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(b"hello")
    with open(str(source), "rb") as handle:
        output, dummy = run_pipeline([["tr", "a-z", "A-Z"], ["cat"]], ENV, stdin=handle)
    assert output == b"HELLO"


def test_pipeline_streams_into_a_consumer(deadline):
    def count(stream):
        total = 0
        for chunk in iter(lambda: stream.read(65536), b""):
            total += len(chunk)
        return total

    result, dummy = run_pipeline([["head", "-c", "3000000", "/dev/zero"], ["cat"]], ENV, consume=count)
    assert result == 3000000


def test_a_failing_middle_stage_is_named_with_its_exit_status(deadline):
    with pytest.raises(PipelineError) as caught:
        run_pipeline([["printf", "abc"], ["sh", "-c", "exit 3"], ["cat"]], ENV)
    assert "sh failed with exit status 3" in str(caught.value)
    stages = caught.value.details["stages"]
    assert [s["name"] for s in stages] == ["printf", "sh", "cat"]
    assert stages[1]["returncode"] == 3
    assert stages[2]["returncode"] == 0
    assert stages[0]["returncode"] in (0, -13)  # printf may meet the closed pipe


def test_a_stage_killed_by_sigpipe_does_not_hide_the_real_cause(deadline):
    with pytest.raises(PipelineError) as caught:
        run_pipeline([["yes"], ["sh", "-c", "head -c 10 >/dev/null; echo broken >&2; exit 4"]], ENV)
    assert str(caught.value) == "sh failed with exit status 4: broken"
    assert caught.value.details["stages"][0]["returncode"] != 0


def test_stderr_is_reported_with_secrets_masked(deadline):
    script = 'echo "first line" >&2; echo "FATAL: password s3cr3t-pw rejected" >&2; exit 2'
    with pytest.raises(PipelineError) as caught:
        run_pipeline([["sh", "-c", script]], ENV, secrets=("s3cr3t-pw",))
    message = str(caught.value)
    assert message == "sh failed with exit status 2: FATAL: password ******** rejected"
    assert "s3cr3t-pw" not in repr(caught.value.details)


def test_a_raising_consumer_stops_the_producers(deadline):
    def consume(stream):
        stream.read(65536)
        raise ValueError("the sink is full")

    with pytest.raises(PgopsError) as caught:
        run_pipeline([["yes"], ["cat"]], ENV, consume=consume)
    assert "the sink is full" in str(caught.value)
    assert "cat" in str(caught.value)
    stages = caught.value.details["stages"]
    assert [s["name"] for s in stages] == ["yes", "cat"]
    assert all(s["returncode"] is not None and s["returncode"] != 0 for s in stages)


def test_a_consumers_own_pgops_error_propagates_unchanged(deadline):
    error = PgopsError("Option dest: disk full.")

    def consume(stream):
        stream.read(1024)
        raise error

    with pytest.raises(PgopsError) as caught:
        run_pipeline([["yes"]], ENV, consume=consume)
    assert caught.value is error


def test_a_missing_executable_cannot_start(deadline):
    with pytest.raises(PgopsError) as caught:
        run_pipeline([["/nonexistent/pgops-no-such-tool", "--version"]], ENV)
    assert str(caught.value).startswith("Cannot start pgops-no-such-tool")


def children_named(name):
    """(pid, state) of this process's children called `name`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                data = handle.read()
        except (IOError, OSError):
            continue
        comm = data[data.index("(") + 1:data.rindex(")")]
        state, ppid = data[data.rindex(")") + 2:].split()[:2]
        if int(ppid) == os.getpid() and comm == name:
            found.append((int(entry), state))
    return found


def wait_for_children(name, done, seconds=3.0):
    end = time.monotonic() + seconds
    while not done(children_named(name)) and time.monotonic() < end:
        time.sleep(0.02)
    return children_named(name)


def reap(children):
    for pid, dummy in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (OSError, ChildProcessError):
            pass


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_a_missing_later_stage_stops_the_earlier_ones(deadline):
    with pytest.raises(PgopsError) as caught:
        run_pipeline([["yes"], ["/nonexistent/pgops-no-such-tool"]], ENV)
    assert str(caught.value).startswith("Cannot start pgops-no-such-tool")
    left = wait_for_children("yes", lambda found: all(state == "Z" for dummy, state in found))
    try:
        assert all(state == "Z" for dummy, state in left), "yes still runs: %r" % left
    finally:
        reap(left)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_a_missing_later_stage_leaves_no_process_behind(deadline):
    with pytest.raises(PgopsError) as caught:
        run_pipeline([["yes"], ["/nonexistent/pgops-no-such-tool"]], ENV)
    left = wait_for_children("yes", lambda found: not found, seconds=1.0)
    try:
        assert left == [], "not waited for: %r (%s)" % (left, caught.value)
    finally:
        reap(left)


def test_pipeline_passes_the_given_environment(deadline):
    stage = [sys.executable, "-c", "import os; print(os.environ.get('PGSERVICE'))"]
    output, dummy = run_pipeline([stage], dict(ENV, PGSERVICE="pgops"))
    assert output.strip() == b"pgops"


def test_error_line_names_the_error_not_its_context():
    stderr = ("pg_restore: while PROCESSING TOC:\n"
              "pg_restore: error: COPY failed for table \"audit_log\": ERROR:  could not extend file: No space left on device\n"
              "HINT:  Check free disk space.\n"
              "CONTEXT:  COPY audit_log, line 13095\n")
    assert error_line(stderr).endswith("No space left on device")
    assert error_line("gpg: decryption failed: Bad session key\n") == "gpg: decryption failed: Bad session key"
    assert error_line("") == "no error output"
    dump = ("pg_dump: error: query failed: ERROR:  canceling statement due to statement timeout\n"
            "pg_dump: detail: Query was: LOCK TABLE public.visits IN ACCESS SHARE MODE\n")
    assert error_line(dump).endswith("statement timeout pg_dump: detail: Query was: LOCK TABLE public.visits IN ACCESS SHARE MODE")
