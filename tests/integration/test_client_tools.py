"""The client-tool runner (module_utils/client_tools.py) against the real server.

Plain Python, no Ansible: the engine builds the environment that points psql,
pg_dump and pg_restore at the server, runs pipelines of them and checks every
exit status. Faults are real: a wrong CA, a pg_hba rule, a failing stage, a
SIGKILLed pg_dump, a client older than the server.
"""

import os
import signal
import subprocess
import threading
import time
import zlib

import pytest

from tests.conftest import connection_vars

from ansible_collections.pgops.runbook.plugins.module_utils.client_tools import (
    ClientTools,
    PipelineError,
    find_tool,
)
from ansible_collections.pgops.runbook.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

pytestmark = pytest.mark.integration

DB = "clienttools_db"
SERVER_MAJOR = 15
PSQL = ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]


@pytest.fixture(scope="module")
def tools_db(cluster):
    cluster.primary.execute("CREATE DATABASE %s OWNER pgops_app" % DB)
    cluster.primary.execute(
        "CREATE TABLE public.wards (id int PRIMARY KEY, name text NOT NULL);"
        "INSERT INTO public.wards SELECT g, 'ward ' || g FROM generate_series(1, 20) g", dbname=DB)
    yield DB
    cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)


def tools_for(pg, **kwargs):
    kwargs.setdefault("db", DB)
    return ClientTools(ConnectionSettings.from_params(connection_vars(pg, **kwargs)), server_major=SERVER_MAJOR)


def run_with_deadline(func, seconds=120):
    """Run `func` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    box = {}

    def target():
        try:
            box["value"] = func()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the pipeline did not finish within %d s" % seconds
    return box


def processes():
    """(pid, ppid, argv as bytes list) of every process we can read."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = [a for a in handle.read().split(b"\0") if a]
            with open("/proc/%s/stat" % entry, "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue
        found.append((int(entry), ppid, argv))
    return found


def our_children(name):
    """Pids of our direct child processes whose program is `name`."""
    return [pid for pid, ppid, argv in processes()
            if ppid == os.getpid() and argv and os.path.basename(argv[0]) == name.encode()]


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as handle:
        return dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)


# -- secrets stay off command lines; the private directory goes away -------------------------------

def test_psql_password_and_connection_string_never_on_a_command_line(pg, tools_db):
    tools = tools_for(pg)
    password = pg["passwords"]["pgops_admin"].encode()
    # What a connection string for this server would contain, in keyword or URI form
    # (the port is this run's own; "password=" is checked on our children only).
    dsn_markers = [b"port=%d" % pg["port"], b":%d/" % pg["port"]]

    def query():
        return tools.run([PSQL + ["-c", "SELECT pg_sleep(1.5), current_user"]])

    box = {}

    def target():
        try:
            box["result"] = query()
        except BaseException as exc:  # re-raised in the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    seen_psql = {}
    try:
        while thread.is_alive():
            for pid, ppid, argv in processes():
                joined = b" ".join(argv)
                assert password not in joined, "the password is on the command line of pid %d" % pid
                for marker in dsn_markers + ([b"password="] if ppid == os.getpid() else []):
                    assert marker not in joined, "a connection string is on the command line: %r" % joined
                if ppid == os.getpid() and argv and os.path.basename(argv[0]) == b"psql" and pid not in seen_psql:
                    try:
                        environ = environ_of(pid)
                    except OSError:
                        continue
                    if b"PGSERVICEFILE" in environ:  # read after exec: psql's own environment
                        seen_psql[pid] = environ
            time.sleep(0.05)
    finally:
        thread.join(60)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]

    output, stages = box["result"]
    assert output.decode().strip() == "|pgops_admin"
    assert [s["returncode"] for s in stages] == [0]
    # The scan ran while psql was connected, so the assertions above looked at it.
    assert seen_psql, "psql was never seen running: the scan proved nothing"
    environ = next(iter(seen_psql.values()))
    assert b"PGPASSWORD" not in environ
    assert all(password not in value for value in environ.values())
    private_dir = os.path.dirname(environ[b"PGSERVICEFILE"].decode())
    assert os.path.dirname(environ[b"PGPASSFILE"].decode()) == private_dir
    assert not os.path.exists(private_dir), "the private directory %s was left behind" % private_dir


def test_private_directory_is_owner_only_and_removed_afterwards(pg, tools_db):
    tools = tools_for(pg)
    script = ('echo "$PGSERVICEFILE"; echo "$PGPASSFILE"; stat -c %a "$(dirname "$PGSERVICEFILE")" '
              '"$PGSERVICEFILE" "$PGPASSFILE"; cat "$PGPASSFILE" >/dev/null && echo readable; '
              'cat "$PGSERVICEFILE"')
    output, dummy = tools.run([["sh", "-c", script]])
    lines = output.decode().splitlines()
    service_file, passfile = lines[0], lines[1]
    assert lines[2:5] == ["700", "600", "600"]
    assert lines[5] == "readable"
    service_text = "\n".join(lines[6:])
    assert "sslmode=verify-full" in service_text and "sslrootcert=%s" % pg["ca_cert"] in service_text
    assert pg["passwords"]["pgops_admin"] not in service_text, "the password belongs in the password file only"
    assert os.path.dirname(service_file) == os.path.dirname(passfile)
    assert not os.path.exists(os.path.dirname(service_file))


# -- SSL options and pg_hba reach the tools -------------------------------------------------------

def test_wrong_ca_fails_certificate_verification(pg, tools_db, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=not the pgops test CA", "-keyout", str(tmp_path / "wrong.key"),
                    "-out", str(tmp_path / "wrong-ca.crt")], check=True, capture_output=True)
    tools = tools_for(pg, ca_cert=str(tmp_path / "wrong-ca.crt"), ssl_mode="verify-full")
    with pytest.raises(PipelineError) as caught:
        tools.run([PSQL + ["-c", "SELECT 1"]])
    message = str(caught.value)
    assert message.startswith("psql failed")
    assert "certificate verify failed" in message
    assert pg["passwords"]["pgops_admin"] not in message


def test_ssl_only_role_needs_ssl_and_gets_it(pg, tools_db):
    without_ssl = tools_for(pg, user="pgops_ssl_only", ssl_mode="disable")
    with pytest.raises(PipelineError) as caught:
        without_ssl.run([PSQL + ["-c", "SELECT 1"]])
    assert "pg_hba.conf rejects connection" in str(caught.value)
    assert "no encryption" in str(caught.value)

    with_ssl = tools_for(pg, user="pgops_ssl_only", ssl_mode="verify-full")
    output, dummy = with_ssl.run([PSQL + ["-c", "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"]])
    assert output.decode().strip() == "pgops_ssl_only|t"


# -- pipelines ------------------------------------------------------------------------------------

def test_dump_gzip_pipeline_streams_into_the_consumer(pg, tools_db):
    tools = tools_for(pg)

    def decompress_and_search(stream):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
        text = b""
        for chunk in iter(lambda: stream.read(8192), b""):
            text += inflater.decompress(chunk)
        text += inflater.flush()
        assert inflater.eof, "the gzip stream ended early"
        return text.decode()

    dump, stages = tools.run([["pg_dump", "-Fp", "-t", "public.wards"], ["gzip", "-c"]],
                             consume=decompress_and_search)
    assert "CREATE TABLE public.wards" in dump
    assert "COPY public.wards (id, name) FROM stdin;" in dump
    assert "20\tward 20" in dump
    assert [(s["name"], s["returncode"]) for s in stages] == [("pg_dump", 0), ("gzip", 0)]


def test_failing_first_stage_is_reported_although_the_last_succeeded(pg, tools_db):
    tools = tools_for(pg)
    with pytest.raises(PipelineError) as caught:
        tools.run([["pg_dump", "-Fp", "-t", "nope"], ["cat"]])
    message = str(caught.value)
    assert message.startswith("pg_dump failed with exit status 1")
    assert "no matching tables were found" in message
    stages = dict((s["name"], s["returncode"]) for s in caught.value.details["stages"])
    assert stages == {"pg_dump": 1, "cat": 0}


def test_failing_last_stage_is_reported(pg, tools_db):
    tools = tools_for(pg)
    with pytest.raises(PipelineError) as caught:
        tools.run([PSQL + ["-c", "SELECT 1"], ["sh", "-c", "exit 4"]])
    assert str(caught.value).startswith("sh failed with exit status 4"), str(caught.value)
    assert caught.value.details["stages"][-1]["returncode"] == 4


def test_killed_pg_dump_fails_the_pipeline_and_nothing_hangs(cluster, pg, tools_db):
    # ~50 MB of rows, so pg_dump is still writing when it is killed.
    cluster.primary.execute(
        "CREATE TABLE public.big_history (id int, payload text);"
        "INSERT INTO public.big_history SELECT g, repeat(md5(g::text), 10) FROM generate_series(1, 150000) g",
        dbname=tools_db)
    size = cluster.primary.execute("SELECT pg_table_size('public.big_history')", dbname=tools_db)[0][0]
    assert size > 45 * 1024 * 1024
    tools = tools_for(pg)
    killed = []

    def read_a_little_then_kill(stream):
        received = len(stream.read(65536))
        pids = our_children("pg_dump")
        assert len(pids) == 1, "expected one pg_dump child, found %s" % pids
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])
        for chunk in iter(lambda: stream.read(65536), b""):  # keep reading to EOF
            received += len(chunk)
        return received

    try:
        box = run_with_deadline(lambda: tools.run([["pg_dump", "-Fp", "-t", "public.big_history"], ["gzip", "-c"]],
                                                  consume=read_a_little_then_kill))
    finally:
        cluster.primary.execute("DROP TABLE public.big_history", dbname=tools_db)
    assert killed, "the consumer never ran"
    error = box.get("error")
    assert isinstance(error, PipelineError), "expected a PipelineError, got %r" % (box,)
    assert str(error).startswith("pg_dump failed with exit status -9"), str(error)
    assert dict((s["name"], s["returncode"]) for s in error.details["stages"]) == {"pg_dump": -9, "gzip": 0}
    assert not our_children("pg_dump") and not our_children("gzip"), "a stage outlived the pipeline"


# -- client versions ------------------------------------------------------------------------------

def fake_tools(directory, version_line):
    for tool in ("pg_dump", "psql"):
        path = directory / tool
        path.write_text("#!/bin/sh\necho '%s'\n" % version_line.replace("TOOL", tool))
        path.chmod(0o755)


def test_client_older_than_the_server_is_refused(pg, tmp_path):
    fake_tools(tmp_path, "TOOL (PostgreSQL) 12.22")
    settings = ConnectionSettings.from_params(connection_vars(pg))
    tools = ClientTools(settings, SERVER_MAJOR, bindir=str(tmp_path))
    with pytest.raises(PgopsError) as caught:
        tools.path("pg_dump")
    message = str(caught.value)
    assert "12" in message and "15" in message and str(tmp_path / "pg_dump") in message
    assert "older than the server" in message
    # Running a pipeline refuses before starting anything.
    with pytest.raises(PgopsError) as caught:
        tools.run([PSQL + ["-c", "SELECT 1"]])
    assert str(tmp_path / "psql") in str(caught.value)


def test_machine_client_matching_the_server_is_found(pg):
    path, major = find_tool("pg_dump", SERVER_MAJOR)
    assert major == SERVER_MAJOR
    version = subprocess.run([path, "--version"], check=True, capture_output=True, text=True).stdout
    assert "(PostgreSQL) 15." in version
