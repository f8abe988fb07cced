# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alembic migrations, run with the application's own Alembic (option executable: the
Python of its virtualenv) through the project's alembic.ini and migrations/env.py, so
the project's own URL handling applies. The database URL reaches Alembic only through
the environment (DATABASE_URL by default, see external.py), never on a command line.

State comes from a small helper run with that Python (`python -c HELPER`), which uses
Alembic's API and prints JSON: the script directory's revisions (in the order they
apply) and heads, the revisions the database records in alembic_version (read through
env.py, without creating the table), and each pending revision's SQL rendered in
Alembic's offline mode (`--sql`). Revisions are applied one per `alembic upgrade <rev>`
(undone one per `alembic downgrade`), so every migration has its own duration and its
own transaction.

Conflicts: a project with more than one head (kind multiple_heads: merge them first),
and a revision the database records that the project no longer has (kind missing).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re
import sys
import time

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.external import ExternalTool, tail
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.model import Conflict, Migration, MigrationFailed, Status

NAME = "alembic"
LOCK_CLASS = 0x70676F6D  # ASCII "pgom": one lock per database and tool
MARKER = "@@pgops-alembic@@"
INSPECT_TIMEOUT = 600
MESSAGE_KEEP = 400

# Run as `<executable> -c HELPER <mode> <alembic.ini> [revision...]` in the project directory.
# Modes: status (revisions, heads, the database's heads, the SQL of the pending revisions)
# and render-down (the SQL undoing the given revisions; no database needed).
# It holds no secret: env.py reads the database URL from the environment.
HELPER = r'''
import io, json, os, sys, traceback
MARKER = "@@pgops-alembic@@"

def emit(data):
    sys.stdout.flush()
    sys.stdout.write("\n" + MARKER + json.dumps(data) + "\n")
    sys.stdout.flush()

def relative(path):
    try:
        return os.path.relpath(path, os.getcwd())
    except ValueError:
        return path

def failure(stage, exc):
    data = dict(error=stage, type=type(exc).__name__, message=str(exc).strip())
    if isinstance(exc, SyntaxError) and exc.filename:
        data.update(message=exc.msg, file=relative(exc.filename), line=exc.lineno)
    else:
        here = os.getcwd() + os.sep
        for frame in traceback.extract_tb(exc.__traceback__):
            if not frame.filename.startswith("<") and os.path.abspath(frame.filename).startswith(here):
                data.update(file=relative(frame.filename), line=frame.lineno)
    emit(data)
    sys.exit(3)

try:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationStep
    from alembic.script import ScriptDirectory
except Exception as exc:
    failure("import", exc)

def as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]

mode, ini, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    import alembic
    config = Config(ini)
    script = ScriptDirectory.from_config(config)
    ordered = list(script.walk_revisions())[::-1]
    heads = list(script.get_heads())
except Exception as exc:
    failure("load", exc)

revisions = []
for sc in ordered:
    down = getattr(sc, "_versioned_down_revisions", None)
    needs = getattr(sc, "_all_down_revisions", None)
    revisions.append(dict(id=sc.revision, down=as_list(sc.down_revision if down is None else down),
                          needs=as_list(sc.down_revision if needs is None else needs),
                          doc=(sc.doc or "").strip(), path=sc.path))

def render(revision, upgrade):
    """The SQL of one revision (or of its undo) in offline mode, or a comment saying why not."""
    sc = script.get_revision(revision)
    buffer = io.StringIO()
    config.output_buffer = buffer
    if upgrade:
        step = MigrationStep.upgrade_from_script(script.revision_map, sc)
        start = [r["down"] for r in revisions if r["id"] == revision][0] or "base"
    else:
        step = MigrationStep.downgrade_from_script(script.revision_map, sc)
        start = [revision]
    try:
        with EnvironmentContext(config, script, fn=lambda rev, context: [step], as_sql=True,
                                starting_rev=start, destination_rev=revision):
            script.run_env()
    except SystemExit as exc:
        return "-- Alembic could not render this revision offline (env.py exited: %s)\n" % exc
    except Exception as exc:
        line = (str(exc).strip().splitlines() or [""])[0]
        return "-- Alembic could not render this revision offline (%s: %s)\n" % (type(exc).__name__, line)
    finally:
        config.output_buffer = None
    return buffer.getvalue()

result = dict(alembic=getattr(alembic, "__version__", "?"), revisions=revisions, heads=heads)
if mode == "status":
    found = []

    def current(rev, context):
        found.extend(context.get_current_heads())
        return []

    try:
        with EnvironmentContext(config, script, fn=current, dont_mutate=True):
            script.run_env()
    except SystemExit as exc:
        failure("current", RuntimeError("env.py exited (%s)" % exc))
    except Exception as exc:
        failure("current", exc)
    parents = dict((r["id"], r["needs"]) for r in revisions)
    applied, todo = set(), [h for h in found if h in parents]
    while todo:
        revision = todo.pop()
        if revision not in applied and revision in parents:
            applied.add(revision)
            todo.extend(parents[revision])
    result["db_heads"] = found
    missing = [h for h in found if h not in parents]
    result["sql"] = {} if missing else dict(
        (r["id"], render(r["id"], True)) for r in revisions if r["id"] not in applied)
elif mode == "render-down":
    result["sql"] = dict((revision, render(revision, False)) for revision in wanted)
emit(result)
'''


class Revision(Migration):
    """One Alembic revision: `down` its parent revision(s), `needs` those plus its dependencies."""

    def __init__(self, data):
        Migration.__init__(self, data["id"], (data.get("doc") or data["id"]).splitlines()[0], path=data.get("path"))
        self.down = list(data.get("down") or [])
        self.needs = list(data.get("needs") or [])
        self.transactional = True
        try:
            with open(self.path, "rb") as handle:
                # op.get_context().autocommit_block() commits what ran before it: not all or nothing.
                self.transactional = b"autocommit_block" not in handle.read()
        except (IOError, OSError, TypeError):
            pass


class Tool(ExternalTool):
    """The Alembic adapter: Alembic's own state (alembic_version) and commands, one revision at a time."""

    name = NAME

    def __init__(self, request, session):
        ini = os.path.join(request.project_dir, "alembic.ini")
        if not os.path.isfile(ini):
            raise PgopsError("Option project_dir: %s holds no alembic.ini (the Alembic configuration this tool runs with)."
                             % request.project_dir)
        if request.migrations_dir:
            raise PgopsError("Option migrations_dir does not apply to alembic (got %s): the script_location of %s names the "
                             "migrations." % (request.migrations_dir, ini))
        ExternalTool.__init__(self, request, session)
        self.ini = ini
        self.executable = request.executable or sys.executable
        self.order = []  # [Revision] in the order they apply
        self.by_id = {}
        self.heads = []
        self._ancestors = {}

    @staticmethod
    def lock_key(database):
        return (LOCK_CLASS, "alembic|%s" % database)

    # -- the helper ---------------------------------------------------------------------

    def _helper(self, mode, revisions=()):
        """Run HELPER with the application's Python; its JSON answer, or PgopsError saying what went wrong."""
        argv = [self.executable, "-c", HELPER, mode, self.ini] + list(revisions)
        code, out, err = self.run(argv, "Alembic (%s)" % mode, check=False, timeout=INSPECT_TIMEOUT)
        data = None
        for line in out.splitlines():
            if line.startswith(MARKER):
                try:
                    data = json.loads(line[len(MARKER):])
                except ValueError:
                    data = None
        if data is None:
            raise PgopsError("Option executable: %s did not run the Alembic helper (exit status %d: %s); it must be the Python "
                             "of the application's environment, with Alembic installed." % (
                                 self.executable, code, one_line(tail(err or out))))
        if "error" in data:
            raise PgopsError(self._helper_error(data))
        return data

    def _helper_error(self, data):
        where = ""
        if data.get("file"):
            where = " in %s%s" % (data["file"], ", line %s" % data["line"] if data.get("line") else "")
        reason = "%s%s: %s" % (data.get("type") or "Error", where, one_line(strip_driver(data.get("message") or "")) or "no message")
        if data["error"] == "import":
            return ("Option executable: %s cannot import Alembic (%s); give the Python of the application's virtualenv, "
                    "where Alembic is installed." % (self.executable, reason))
        if data["error"] == "load":
            return "Alembic cannot load the migrations of %s: %s." % (self.request.project_dir, reason.rstrip("."))
        return "Alembic could not read the database's revision through the project's env.py: %s." % reason.rstrip(".")

    def _load(self, data):
        self.order = [Revision(item) for item in data["revisions"]]
        self.by_id = dict((m.version, m) for m in self.order)
        self.heads = list(data["heads"])
        self._ancestors = {}

    def ancestors(self, version):
        """Every revision `version` needs (parents and dependencies, transitively), not itself."""
        if version not in self._ancestors:
            seen, todo = set(), list(self.by_id[version].needs) if version in self.by_id else []
            while todo:
                item = todo.pop()
                if item not in seen and item in self.by_id:
                    seen.add(item)
                    todo.extend(self.by_id[item].needs)
            self._ancestors[version] = seen
        return self._ancestors[version]

    # -- state --------------------------------------------------------------------------

    def status(self):
        data = self._helper("status")
        self._load(data)
        conflicts = []
        if len(self.heads) > 1:
            conflicts.append(Conflict("multiple_heads", ", ".join(self.heads), "The project has %d heads (%s): merge them "
                                      "(alembic merge heads) so there is one order to apply." % (
                                          len(self.heads), ", ".join(self.heads))))
        db_heads = list(data.get("db_heads") or [])
        missing = [h for h in db_heads if h not in self.by_id]
        for version in missing:
            conflicts.append(Conflict("missing", version, "Revision %s is recorded in the database (alembic_version) but the "
                                      "project no longer has it." % version))
        applied_set = set()
        for head in db_heads:
            if head in self.by_id:
                applied_set.add(head)
                applied_set.update(self.ancestors(head))
        applied = [m.version for m in self.order if m.version in applied_set]
        pending = []
        if not missing:  # else what is pending is unknown
            sql = data.get("sql") or {}
            for migration in self.order:
                if migration.version not in applied_set:
                    migration.sql = sql.get(migration.version)
                    pending.append(migration)
        known_heads = [m.version for m in self.order if m.version in db_heads]
        current = missing[0] if missing else (known_heads[-1] if known_heads else None)
        return Status(current, applied, pending, conflicts, known=self.order)

    def resolve(self, version):
        """The full revision id `version` names (an id, a unique prefix of one, or head); None when none."""
        if version is None:
            return None
        version = str(version).strip()
        if version in self.by_id:
            return version
        if version in ("head", "heads") and len(self.heads) == 1:
            return self.heads[0]
        matches = [v for v in self.by_id if v.startswith(version)] if len(version) >= 3 else []
        return matches[0] if len(matches) == 1 else None

    def find(self, version):
        if not self.by_id:
            self._load(self._helper("render-down"))
        resolved = self.resolve(version)
        return self.by_id[resolved] if resolved else None

    def compare(self, a, b):
        a, b = self.resolve(a) or a, self.resolve(b) or b
        if a == b:
            return 0
        if a in self.ancestors(b):
            return -1
        if b in self.ancestors(a):
            return 1
        index = dict((m.version, i) for i, m in enumerate(self.order))
        if a not in index or b not in index:
            raise PgopsError("Revision %s is not a revision of the project." % (b if a in index else a))
        return (index[a] > index[b]) - (index[a] < index[b])

    def upgrade_plan(self, status, target):
        """The pending revisions `target` needs, and `target` itself (None: every pending revision)."""
        if target is None:
            return list(status.pending)
        resolved = self.resolve(target)
        wanted = self.ancestors(resolved) | set([resolved])
        return [m for m in status.pending if m.version in wanted]

    def downgrade_plan(self, status, target):
        """The applied revisions `target` does not need, newest first, with the SQL undoing each."""
        resolved = self.resolve(target)
        keep = self.ancestors(resolved) | set([resolved])
        versions = [v for v in reversed(status.applied) if v not in keep]
        if not versions:
            return []
        sql = self._helper("render-down", versions).get("sql") or {}
        plan = []
        for version in versions:
            undo = copy.copy(self.by_id[version])
            undo.sql = sql.get(version)
            plan.append(undo)
        return plan

    # -- applying -----------------------------------------------------------------------

    def apply(self, migration, undo=False):
        """`alembic upgrade <revision>` (or the downgrade undoing it); the seconds it took."""
        if not undo:
            command = ["upgrade", migration.version]
        elif len(migration.down) > 1:
            command = ["downgrade", migration.down[0]]  # a merge revision: down to its parents
        else:
            command = ["downgrade", "%s@-1" % migration.version]  # this branch only, whatever other heads there are
        argv = [self.executable, "-m", "alembic", "-c", self.ini] + command
        label = os.path.basename(migration.path or migration.version)
        timing = {}
        try:
            self.session.with_retries(label, lambda: self._run_alembic(argv, timing))
        except MigrationFailed as exc:
            if not exc.lock_timeout:
                raise
            attempts = 1 + len([r for r in self.session.retries if r.get("migration") == label])
            raise MigrationFailed("%s (it waited lock_timeout %gs for a lock another session holds, %d time%s)" % (
                exc.message, self.request.lock_timeout or 0, attempts, "" if attempts == 1 else "s"),
                lock_timeout=True, details=exc.details)
        return timing.get("seconds", 0.0)

    def _run_alembic(self, argv, timing):
        started = time.monotonic()
        code, out, err = self.run(argv, "alembic %s" % " ".join(argv[5:]), check=False)
        timing["seconds"] = time.monotonic() - started
        if code == 0:
            return
        text = err + "\n" + out
        reason = explain(text, self.request.project_dir)
        if re.search(r"due to statement timeout", text):
            reason += " (statement_timeout %gs)" % (self.request.statement_timeout or 0)
        raise MigrationFailed("alembic %s exited with status %d: %s" % (" ".join(argv[5:]), code, reason),
                              lock_timeout=bool(re.search(r"LockNotAvailable|due to lock timeout|55P03", text)))


_FRAME = re.compile(r'^\s+File "([^"]+)", line (\d+)')
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_DRIVER_PREFIX = re.compile(r"^\((?:[\w]+\.)*\w+\)\s*")


def strip_driver(text):
    """SQLAlchemy's '(psycopg2.errors.UndefinedObject) type ... does not exist' without the class in brackets."""
    return _DRIVER_PREFIX.sub("", text.strip())


def one_line(text, keep=MESSAGE_KEEP):
    text = " ".join(line.strip() for line in (text or "").splitlines() if line.strip())
    return text if len(text) <= keep else text[:keep - 3].rstrip() + "..."


def explain(text, project_dir):
    """One clause from Alembic's output: the final exception, where in the project it happened, the statement."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        failed = [line[len("FAILED:"):].strip() for line in lines if line.startswith("FAILED:")]
        return one_line(failed[-1] if failed else tail(text)).rstrip(".")
    block = lines[starts[-1] + 1:]
    where = None
    for line in block:
        frame = _FRAME.match(line)
        if frame and os.path.abspath(frame.group(1)).startswith(project_dir + os.sep):
            where = (os.path.basename(frame.group(1)), frame.group(2))
    kind, message, statement, rest = "Error", "", None, []
    for index, line in enumerate(block):
        if line and not line[0].isspace():
            match = _EXCEPTION.match(line)
            kind = match.group(1).rsplit(".", 1)[-1] if match else "Error"
            message = (match.group(2) or "") if match else line
            rest = block[index + 1:]
            break
    in_message = True
    for line in rest:
        if line.startswith("[SQL: "):
            statement = line[len("[SQL: "):].rstrip("]")
            break
        if line.startswith("(Background on this error"):
            break
        if not line.strip():
            in_message = False  # SQLAlchemy puts a blank line between the message and [SQL: ...]
        elif in_message and not line.startswith("LINE ") and line.strip() != "^":
            message += " " + line.strip()
    reason = one_line(strip_driver(message)) or kind
    text = "%s (%s%s)" % (reason.rstrip("."), kind, " at %s line %s" % where if where else "")
    if statement:
        text += "; statement: %s" % one_line(statement, 160)
    return text
