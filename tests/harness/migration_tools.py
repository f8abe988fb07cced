"""The real migration tools the migration fixtures are run with: Alembic, Django and
the Prisma CLI, installed on first use under <repo>/.build (never in tests/fixtures).

    alembic_python()   .build/tool-venvs/alembic/bin/python   (tests/fixtures/migrations/alembic/requirements.txt)
    django_python()    .build/tool-venvs/django/bin/python    (tests/fixtures/migrations/django/requirements.txt)
    prisma_cli()       [node, .build/prisma/node_modules/prisma/build/index.js]
                       (`npm ci` of tests/fixtures/migrations/prisma/package-lock.json)
    prisma_environment(database_url)   the environment the Prisma CLI needs here

Each install writes a stamp (a hash of its requirement or lock files and the
interpreter's version) when it has succeeded; later calls only compare the stamp.
An fcntl lock per tool keeps two pytest processes from installing at the same
time. Packages come from the package indexes pip and npm are configured with.

Prisma runs in JavaScript-engine mode with the pg driver adapter, so that no native
engine binary is downloaded (see tests/fixtures/migrations/README.md). The fixture's
prisma.config.ts imports `prisma/config` and `@prisma/adapter-pg`; NODE_PATH (set by
prisma_environment) lets Node find them in .build/prisma/node_modules, so the CLI
can be run in the fixture directory itself, or in any copy of it.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "migrations")
BUILD = os.path.join(ROOT, ".build")
TOOL_VENVS = os.path.join(BUILD, "tool-venvs")
PRISMA_DIR = os.path.join(BUILD, "prisma")
PRISMA_FIXTURE = os.path.join(FIXTURES, "prisma")
PRISMA_LOCK_FILES = ("package.json", "package-lock.json")
# Stand-in for the native schema engine that `prisma migrate resolve` probes first.
SCHEMA_ENGINE_STUB = os.path.join(PRISMA_FIXTURE, "schema-engine-stub.sh")
# Preload that unrefs the WebAssembly engine's never-cleared advisory-lock timer.
UNREF_ENGINE_TIMERS = os.path.join(PRISMA_FIXTURE, "unref-engine-timers.cjs")
STAMP = ".pgops-tool.stamp"
INSTALL_TIMEOUT = 900


class ToolInstallError(RuntimeError):
    """pip or npm failed; the message ends with the tail of its output."""


@contextlib.contextmanager
def _install_lock(name):
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, ".%s.install.lock" % name), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(paths, *extra):
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(os.path.basename(path).encode() + b"\0" + handle.read() + b"\0")
    for item in extra:
        digest.update(str(item).encode() + b"\0")
    return digest.hexdigest()


def _stamp_matches(directory, expected):
    try:
        with open(os.path.join(directory, STAMP)) as handle:
            return handle.read().strip() == expected
    except OSError:
        return False


def _write_stamp(directory, value):
    tmp = os.path.join(directory, STAMP + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(value + "\n")
    os.replace(tmp, os.path.join(directory, STAMP))


def _run(argv, what, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False, **kwargs)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()
        raise ToolInstallError("%s failed (exit %d):\n%s" % (what, proc.returncode, "\n".join(output[-40:])))
    return proc


def _python_version():
    return "%s %s" % (sys.implementation.name, ".".join(str(part) for part in sys.version_info[:3]))


def tool_python(tool):
    """The python of a virtualenv with tests/fixtures/migrations/<tool>/requirements.txt,
    created (or rebuilt when the requirements or the interpreter changed) on first use."""
    requirements = os.path.join(FIXTURES, tool, "requirements.txt")
    venv = os.path.join(TOOL_VENVS, tool)
    python = os.path.join(venv, "bin", "python")
    expected = _digest([requirements], _python_version())
    if _stamp_matches(venv, expected) and os.path.exists(python):
        return python
    with _install_lock("venv-" + tool):
        if _stamp_matches(venv, expected) and os.path.exists(python):
            return python  # another process installed it while we waited
        shutil.rmtree(venv, ignore_errors=True)
        os.makedirs(TOOL_VENVS, exist_ok=True)
        _run([sys.executable, "-m", "venv", venv], "creating the %s virtualenv" % tool)
        _run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
              "-r", requirements], "pip install -r %s" % os.path.relpath(requirements, ROOT))
        _write_stamp(venv, expected)
    return python


def alembic_python():
    """Python with alembic, SQLAlchemy and psycopg2: run `python -m alembic -c <ini> ...`."""
    return tool_python("alembic")


def django_python():
    """Python with Django and psycopg2: run `python manage.py ...` in the Django fixture."""
    return tool_python("django")


def _node():
    node = shutil.which("node")
    if not node:
        raise ToolInstallError("node is not on PATH: the Prisma CLI needs Node.js (20 or later)")
    return node


def _node_version(node):
    return subprocess.run([node, "--version"], check=True, capture_output=True, text=True).stdout.strip()


def prisma_install():
    """`npm ci` of the Prisma fixture's package-lock.json into .build/prisma; returns that directory."""
    node = _node()
    sources = [os.path.join(PRISMA_FIXTURE, name) for name in PRISMA_LOCK_FILES]
    modules = os.path.join(PRISMA_DIR, "node_modules")
    expected = _digest(sources, "node " + _node_version(node))
    if _stamp_matches(PRISMA_DIR, expected) and os.path.isdir(modules):
        return PRISMA_DIR
    with _install_lock("prisma"):
        if _stamp_matches(PRISMA_DIR, expected) and os.path.isdir(modules):
            return PRISMA_DIR
        npm = shutil.which("npm")
        if not npm:
            raise ToolInstallError("npm is not on PATH")
        os.makedirs(PRISMA_DIR, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(PRISMA_DIR, STAMP))
        for source in sources:
            shutil.copyfile(source, os.path.join(PRISMA_DIR, os.path.basename(source)))
        # --ignore-scripts: the engines' postinstall would try to download native
        # binaries, which JavaScript-engine mode does not use.
        env = dict(os.environ, CHECKPOINT_DISABLE="1", PRISMA_HIDE_UPDATE_MESSAGE="1")
        _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
             "npm ci in %s" % os.path.relpath(PRISMA_DIR, ROOT), cwd=PRISMA_DIR, env=env)
        _write_stamp(PRISMA_DIR, expected)
    return PRISMA_DIR


def prisma_cli():
    """argv prefix of the real Prisma CLI; run it in the Prisma project directory
    (the fixture itself or a copy) with prisma_environment()."""
    directory = prisma_install()
    return [_node(), os.path.join(directory, "node_modules", "prisma", "build", "index.js")]


def prisma_environment(database_url, inherit=True, quick_exit=True):
    """Environment for prisma_cli(): the database URL and what JavaScript-engine mode
    needs offline. inherit=False returns only these variables (for an Ansible task's
    `environment`); by default they are added to a copy of os.environ.

    quick_exit preloads unref-engine-timers.cjs: without it `migrate deploy` and
    `migrate resolve` linger ~10 s after their work (the engine's advisory-lock
    timeout timer is never cleared); with it they exit when done, and a lock that
    is really held still times out after 10 s as usual."""
    extra = {
        "DATABASE_URL": database_url,
        # Else the CLI downloads the native query engine library.
        "PRISMA_CLIENT_ENGINE_TYPE": "client",
        # No telemetry or update check (unreachable hosts, slow timeouts).
        "CHECKPOINT_DISABLE": "1",
        "PRISMA_HIDE_UPDATE_MESSAGE": "1",
        # prisma.config.ts imports prisma/config and @prisma/adapter-pg.
        "NODE_PATH": os.path.join(prisma_install(), "node_modules"),
        # `migrate resolve --rolled-back` probes the native schema engine first.
        "PRISMA_SCHEMA_ENGINE_BINARY": SCHEMA_ENGINE_STUB,
    }
    if quick_exit:
        node_options = os.environ.get("NODE_OPTIONS", "") if inherit else ""
        extra["NODE_OPTIONS"] = ("--require=%s %s" % (UNREF_ENGINE_TIMERS, node_options)).strip()
    if not inherit:
        return extra
    env = dict(os.environ)
    env.update(extra)
    return env


def install_all():
    """Install every tool (e.g. before a timed run); returns {tool: seconds}."""
    times = {}
    for name, func in (("alembic", alembic_python), ("django", django_python), ("prisma", prisma_install)):
        started = time.monotonic()
        func()
        times[name] = round(time.monotonic() - started, 1)
    return times


if __name__ == "__main__":
    print(install_all())
