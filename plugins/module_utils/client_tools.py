# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way pgops runs the PostgreSQL client tools (pg_dump, pg_restore, psql, pg_dumpall).

Connection settings reach the tools through a private directory holding a
connection service file and a password file (both 0600, removed afterwards):
nothing but plain arguments is ever on a command line. Every process of a
pipeline is waited for and its exit status checked; a client older than the
server is refused with both versions named.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import glob
import os
import re
import shutil
import subprocess
import tempfile
import threading

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError, redact

CLIENT_TOOLS = ("pg_dump", "pg_restore", "psql", "pg_dumpall")

# Where distributions install versioned client tools, newest found first.
_VERSIONED_BINDIRS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin",
                      "/usr/local/opt/postgresql@*/bin")

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_STDERR_KEEP = 64 * 1024
SERVICE_NAME = "pgops"


def parse_tool_version(text):
    """Major version from `pg_dump --version` output (9.6 -> 9.6, 15.4 -> 15), or None."""
    match = _VERSION_RE.search(text or "")
    if not match:
        return None
    major = int(match.group(1))
    if major < 10 and match.group(2) is not None:
        return float("%d.%s" % (major, match.group(2)))
    return major


def tool_version(path):
    """Major version of a client tool binary (runs `<path> --version`)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PgopsError("Cannot run %s --version: %s" % (path, exc))
    version = parse_tool_version(out.stdout)
    if version is None:
        raise PgopsError("%s --version printed no PostgreSQL version (%r)" % (path, out.stdout.strip()[:80]))
    return version


def candidate_paths(tool, bindir=None, search_path=None):
    """Every executable named `tool` in `bindir`, or in the versioned dirs and PATH."""
    if bindir:
        dirs = [bindir]
    else:
        dirs = []
        for pattern in _VERSIONED_BINDIRS:
            dirs.extend(sorted(glob.glob(pattern), reverse=True))
        dirs.extend((search_path if search_path is not None else os.environ.get("PATH", "")).split(os.pathsep))
    seen = []
    for directory in dirs:
        path = os.path.join(directory, tool)
        if directory and os.path.isfile(path) and os.access(path, os.X_OK):
            real = os.path.realpath(path)
            if real not in [os.path.realpath(p) for p in seen]:
                seen.append(path)
    return seen


def choose_tool(tool, server_major, candidates):
    """Pick from [(path, major)]: the server's own major, else the newest not older.

    Raises PgopsError naming both versions when every candidate is older.
    """
    if not candidates:
        raise PgopsError("The PostgreSQL client tool %s was not found (install the PostgreSQL %s client "
                         "tools or set client_bindir)." % (tool, server_major))
    same = [c for c in candidates if c[1] == server_major]
    if same:
        return same[0]
    newer = sorted((c for c in candidates if c[1] > server_major), key=lambda c: c[1])
    if newer:
        return newer[-1]
    path, major = max(candidates, key=lambda c: c[1])
    raise PgopsError("%s %s (%s) is older than the server (PostgreSQL %s): a client older than the server "
                     "cannot be trusted with its data; install the PostgreSQL %s client tools or set "
                     "client_bindir." % (tool, major, path, server_major, server_major))


def find_tool(tool, server_major, bindir=None):
    """Path and major version of the client tool to use against `server_major`.

    Candidates are asked their version in search order, stopping at the first of
    the server's own major (each --version is a process; Debian's pg_wrapper on
    PATH is a Perl script)."""
    candidates = []
    for path in candidate_paths(tool, bindir):
        candidates.append((path, tool_version(path)))
        if candidates[-1][1] == server_major:
            break
    return choose_tool(tool, server_major, candidates)


def _service_value(value):
    # pg_service.conf has no quoting: a value is the rest of the line.
    value = str(value)
    if "\n" in value or "\r" in value:
        raise PgopsError("A connection setting contains a line break, which libpq cannot accept.")
    return value


def _passfile_field(value):
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


class ClientEnvironment:
    """Context manager: the environment that points client tools at `settings`.

    Yields a dict to pass as `env`. The service and password files live in a
    0700 directory removed on exit, whatever happens.
    """

    def __init__(self, settings, dbname=None, base_env=None):
        self.settings = settings if dbname is None else settings.with_database(dbname)
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.directory = None

    def __enter__(self):
        lines = ["[%s]" % SERVICE_NAME]
        lines.extend("%s=%s" % (key, _service_value(value)) for key, value in sorted(self.settings.keywords.items()))
        password = self.settings.password
        if password and ("\n" in password or "\r" in password):
            raise PgopsError("The password contains a line break, which a password file cannot hold.")
        self.directory = tempfile.mkdtemp(prefix="pgops-client-")
        os.chmod(self.directory, 0o700)
        try:
            return self._write(lines, password)
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    def _write(self, lines, password):
        env = dict(self.base_env)
        # Our settings win over the caller's service selection; unset PG*
        # variables still fill in what the settings leave open, as in libpq.
        for name in ("PGSERVICE", "PGSERVICEFILE", "PGPASSWORD"):
            env.pop(name, None)
        service_file = os.path.join(self.directory, "pg_service.conf")
        _write_private(service_file, "\n".join(lines) + "\n")
        env["PGSERVICEFILE"] = service_file
        env["PGSERVICE"] = SERVICE_NAME
        if password:
            passfile = os.path.join(self.directory, "pgpass")
            _write_private(passfile, "*:*:*:*:%s\n" % _passfile_field(password))
            env["PGPASSFILE"] = passfile
        return env

    def __exit__(self, *exc_info):
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        return False


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class _StderrCollector(threading.Thread):
    """Drains one process's stderr, keeping its last 64 KiB."""

    def __init__(self, stream):
        super(_StderrCollector, self).__init__()
        self.daemon = True
        self.stream = stream
        self.chunks = collections.deque()
        self.size = 0

    def run(self):
        for chunk in iter(lambda: self.stream.read(8192), b""):
            self.chunks.append(chunk)
            self.size += len(chunk)
            while self.size > _STDERR_KEEP and len(self.chunks) > 1:
                self.size -= len(self.chunks.popleft())
        self.stream.close()

    def text(self):
        return b"".join(self.chunks).decode("utf-8", "replace")


class PipelineError(PgopsError):
    """A stage of a client-tool pipeline failed; `details['stages']` has each exit status."""


def run_pipeline(stages, env, consume=None, stdin=None, secrets=()):
    """Run argv `stages` joined stdout -> stdin, checking every exit status.

    `consume(stream)` reads the last stage's binary stdout (streamed, never
    buffered whole); without it the output is returned as bytes. `stdin` is an
    optional binary file object for the first stage. Returns (consume's result
    or the output, [{name, returncode, stderr}]). Any failing stage raises
    PipelineError naming it, after every process has ended.
    """
    if not stages:
        raise PgopsError("A pipeline needs at least one command.")
    processes = []
    collectors = []
    previous = stdin
    try:
        for argv in stages:
            proc = subprocess.Popen(argv, stdin=previous if previous is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, close_fds=True)
            if previous is not None and previous is not stdin:
                previous.close()  # the child holds its own copy
            previous = proc.stdout
            processes.append(proc)
            collector = _StderrCollector(proc.stderr)
            collector.start()
            collectors.append(collector)
    except OSError as exc:
        _terminate(processes)
        for proc in processes:
            proc.stdout.close()
            proc.wait()
        for collector in collectors:
            collector.join()
        raise PgopsError(redact("Cannot start %s: %s" % (os.path.basename(argv[0]), exc.strerror), secrets))

    result = None
    consumer_error = None
    try:
        if consume is not None:
            result = consume(processes[-1].stdout)
        else:
            result = processes[-1].stdout.read()
    except BaseException as exc:  # stop the producers, then report
        consumer_error = exc
        _terminate(processes)
    finally:
        processes[-1].stdout.close()

    statuses = []
    for proc, collector, argv in zip(processes, collectors, stages):
        proc.wait()
        collector.join()
        statuses.append(dict(name=os.path.basename(argv[0]), returncode=proc.returncode,
                             stderr=redact(collector.text(), secrets).strip()))
    if consumer_error is not None:
        if isinstance(consumer_error, PgopsError):
            raise consumer_error
        raise PgopsError(redact("Reading the output of %s failed: %s" % (statuses[-1]["name"], consumer_error),
                                secrets), details=dict(stages=statuses))
    failed = [s for s in statuses if s["returncode"] != 0]
    if failed:
        # A stage killed by SIGPIPE only reports that a later stage stopped reading.
        cause = next((s for s in failed if s["returncode"] != -13), failed[0])
        raise PipelineError("%s failed with exit status %s: %s" % (cause["name"], cause["returncode"], error_line(cause["stderr"])),
                            details=dict(stages=statuses))
    return result, statuses


def error_line(stderr):
    """The line of a tool's error output that says what went wrong: the last one naming an
    error (PostgreSQL's CONTEXT/DETAIL/HINT lines follow it), else the last line."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    if not lines:
        return "no error output"
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if not line.startswith(("CONTEXT:", "DETAIL:", "HINT:", "LINE ", "^", "pg_restore: warning:", "Command was:")) \
                and ("error" in line.lower() or "FATAL" in line or "fatal" in line):
            # pg_dump's "detail: Query was: LOCK TABLE ..." says which object it was.
            details = [d for d in lines[index + 1:index + 3] if "detail:" in d.lower()[:40]]
            return " ".join([line] + details)
    return lines[-1]


def _terminate(processes):
    # The stage nearest the reader first: were the producer stopped first, the stage after it could
    # read the end of its input and exit 0 before being stopped, looking like a success.
    for proc in reversed(processes):
        if proc.poll() is None:
            try:
                proc.terminate()
            except OSError:  # pragma: no cover
                pass


class ClientTools:
    """Client tools matched to one server, run with `settings`' credentials."""

    def __init__(self, settings, server_major, bindir=None):
        self.settings = settings
        self.server_major = server_major
        self.bindir = bindir
        self._found = {}

    def path(self, tool):
        if tool not in CLIENT_TOOLS:
            raise PgopsError("Unknown client tool %r." % tool)
        if tool not in self._found:
            self._found[tool] = find_tool(tool, self.server_major, self.bindir)
        return self._found[tool][0]

    def version(self, tool):
        self.path(tool)
        return self._found[tool][1]

    def run(self, stages, consume=None, stdin=None, dbname=None):
        """Run a pipeline whose stages are argv lists; a first element naming a
        client tool (e.g. "pg_dump") is replaced by its path."""
        resolved = [[self.path(argv[0])] + list(argv[1:]) if argv[0] in CLIENT_TOOLS else list(argv)
                    for argv in stages]
        with ClientEnvironment(self.settings, dbname=dbname) as env:
            return run_pipeline(resolved, env, consume=consume, stdin=stdin, secrets=self.settings.secrets)
