# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One safe way to run migrations, whatever the tool: the run holds an advisory lock on
the database, refuses while there are conflicts (drift, missing or out-of-order
migrations, failed ones), applies each migration with lock_timeout and
statement_timeout (retrying lock timeouts with jittered backoff), and returns one
result shape. check_mode returns the plan with its SQL and applies nothing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

try:
    import psycopg2
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.model import MigrationFailed
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.rehearsal import rehearse
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.session import MigrationSession, parse_duration
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.tools import registry
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.tools.sql import statement_hint
from ansible_collections.pgops.runbook.plugins.module_utils.snapshot import compare_snapshots, take_snapshot


class MigrateRequest:
    """Validated migrate parameters (the module's options, minus connection ones)."""

    def __init__(self, project_dir, tool="auto", migrations_dir=None, state="latest", target=None, allow_downgrade=False,
                 lock_wait=60, lock_timeout="5s", statement_timeout=None, lock_retries=5,
                 history_table="pgops_schema_history", executable=None, environment=None, database_url_env="DATABASE_URL",
                 rehearse=False, rehearse_data=False, backup_dest=None, backup_s3=None, backup_label=None,
                 backup_encryption=None):
        if not project_dir or not os.path.isdir(project_dir):
            raise PgopsError("Option project_dir: %s is not a directory." % project_dir)
        if migrations_dir is not None and not os.path.isdir(migrations_dir):
            raise PgopsError("Option migrations_dir: %s is not a directory." % migrations_dir)
        if state == "target" and not target:
            raise PgopsError("Option target is required with state target.")
        if state != "target" and target:
            raise PgopsError("Option target goes with state target (got state %s)." % state)
        if lock_retries < 0:
            raise PgopsError("Option lock_retries must be 0 or more, got %s." % lock_retries)
        self.project_dir = os.path.abspath(project_dir)
        self.tool = registry.detect(self.project_dir) if tool == "auto" else tool
        self.migrations_dir = migrations_dir
        self.state = state
        self.target = str(target) if target is not None else None
        self.allow_downgrade = allow_downgrade
        self.lock_wait = parse_duration(lock_wait, "lock_wait")
        self.lock_timeout = parse_duration(lock_timeout, "lock_timeout")
        self.statement_timeout = parse_duration(statement_timeout, "statement_timeout")
        self.lock_retries = lock_retries
        self.history_table = history_table
        self.executable = executable
        self.environment = dict((str(k), str(v)) for k, v in (environment or {}).items())
        if not database_url_env or not database_url_env.replace("_", "").isalnum():
            raise PgopsError("Option database_url_env must be an environment variable name, got %r." % database_url_env)
        self.database_url_env = database_url_env
        if rehearse and state == "status":
            raise PgopsError("Option rehearse goes with state latest or target, not status.")
        if rehearse_data and not rehearse:
            raise PgopsError("Option rehearse_data goes with rehearse.")
        self.rehearse = rehearse
        self.rehearse_data = rehearse_data
        self.backup_dest = backup_dest
        self.backup_s3 = backup_s3
        self.backup_label = backup_label
        self.backup_encryption = backup_encryption


def run_migrate(settings, req, check_mode=False, diff=False):
    """Bring the database to the requested state; returns the result dict."""
    tool_class = registry.tool_class(req.tool)
    database = settings.effective()["dbname"]
    session = MigrationSession(settings, req.lock_wait, req.lock_timeout, req.statement_timeout, req.lock_retries,
                               "pgops.runbook migrate")
    try:
        tool = tool_class(req, session)
        if req.state != "status" and not check_mode:
            # Held until the session closes, through every migration.
            session.lock(tool.lock_key(database), "tool %s" % tool.name)
        status = tool.status()
        result = dict(changed=False, tool=tool.name, current=status.current, final=status.current, applied=[],
                      pending=[m.describe() for m in status.pending + getattr(tool, "repeatable_pending", [])],
                      conflicts=[c.describe() for c in status.conflicts], retries=session.retries)
        if req.state == "status":
            result["msg"] = _status_text(result)
            return result
        _refuse_conflicts(tool, status)
        plan, downgrade = _plan(tool, status, req)
        result["planned"] = [dict(m.describe(), direction="down" if downgrade else "up") for m in plan]
        if req.rehearse:
            return _rehearse(settings, req, plan, result)
        if check_mode:
            result.update(changed=bool(plan), msg=_plan_text(tool, status, plan, downgrade, req))
            if diff and plan:
                # The schema after is not known without applying (rehearse does): show what would run.
                now = _schema_text(take_snapshot(settings, descriptions=True)[0])
                result["diff"] = dict(before=now, after=now + "".join(
                    "-- %s %s (%s)\n%s\n" % ("undo" if downgrade else "apply", m.version, m.name, (m.sql or "").strip())
                    for m in plan), before_header="%s now" % database, after_header="%s + the plan's SQL" % database)
            return result
        before = take_snapshot(settings, descriptions=True)[0] if diff and plan else None
        if plan and hasattr(tool, "prepare"):
            tool.prepare(plan, downgrade)  # a tool that applies the whole plan in one go (prisma migrate deploy)
        for migration in plan:
            try:
                seconds = tool.apply(migration, undo=downgrade)
            except (psycopg2.Error, MigrationFailed) as exc:
                current = tool.status().current
                reason = exc.message.rstrip(".") if isinstance(exc, MigrationFailed) else _pg_error(exc, req, session)
                raise PgopsError("Migration %s (%s) failed%s: %s. The database is at version %s%s." % (
                    migration.version, os.path.basename(migration.path or migration.name), statement_hint(exc),
                    reason, current,
                    " (the migration was rolled back whole)" if getattr(migration, "transactional", True) else ""),
                    details=dict(applied=result["applied"], tool=tool.name, current=status.current, final=current,
                                 retries=session.retries))
            result["applied"].append(dict(version=migration.version, name=migration.name, duration_s=round(seconds, 3),
                                          direction="down" if downgrade else "up"))
        final = tool.status() if plan else status
        result.update(changed=bool(plan), final=final.current,
                      pending=[m.describe() for m in final.pending + getattr(tool, "repeatable_pending", [])])
        if before is not None:
            after = take_snapshot(settings, descriptions=True)[0]
            result["diff"] = dict(before=_schema_text(before), after=_schema_text(after),
                                  before_header="%s before" % database, after_header="%s after" % database)
            result["schema_changes"] = [d["message"] for d in compare_snapshots(before, after, 100.0)]
        result["msg"] = "Applied %d migration%s with %s: version %s -> %s." % (
            len(plan), "" if len(plan) == 1 else "s", tool.name, status.current, final.current) if plan else \
            "Nothing to apply: %s is at version %s." % (database, status.current)
        return result
    finally:
        session.close()


def read_plan(settings, req, application_name="pgops.runbook migrate plan"):
    """(tool name, Status, [Migration] the run would apply, whether they are undos), changing
    nothing and taking no lock: for readers of the plan such as migration_lint."""
    session = MigrationSession(settings, req.lock_wait, req.lock_timeout, req.statement_timeout, req.lock_retries,
                               application_name)
    try:
        tool = registry.tool_class(req.tool)(req, session)
        status = tool.status()
        _refuse_conflicts(tool, status)
        plan, downgrade = _plan(tool, status, req)
        return tool.name, status, plan, downgrade
    finally:
        session.close()


def _refuse_conflicts(tool, status):
    if status.conflicts:
        conflicts = [c.describe() for c in status.conflicts]
        raise PgopsError("Refusing to migrate: %s" % " ".join(c.message for c in status.conflicts[:5]),
                         details=dict(conflicts=conflicts, tool=tool.name, current=status.current))


def _rehearse(settings, req, plan, result):
    """The plan applied to a scratch copy of the schema instead of the database (see rehearsal.py)."""
    if not plan:
        result.update(rehearsal=dict(succeeded=True, applied=[], message="Nothing to rehearse."),
                      msg="Nothing to rehearse: at version %s." % result["current"])
        return result
    session_free = copy.copy(req)
    session_free.rehearse = False
    rehearsal = rehearse(settings, session_free, run_migrate)
    result.update(rehearsal=rehearsal, msg=rehearsal["message"])
    if not rehearsal["succeeded"]:
        result["failed"] = True
    return result


def _plan(tool, status, req):
    """(migrations to run, whether they are undos)."""
    if req.state == "latest":
        return tool.upgrade_plan(status, None), False
    if tool.find(req.target) is None:
        raise PgopsError("Option target: version %s is not a migration of the project (known: %s)." % (
            req.target, ", ".join(m.version for m in status.known) or "none"))
    if status.current is None or tool.compare(req.target, status.current) >= 0:
        return tool.upgrade_plan(status, req.target), False
    if not req.allow_downgrade:
        raise PgopsError("Option target: %s is below the current version %s; set allow_downgrade to go down to it."
                         % (req.target, status.current))
    return tool.downgrade_plan(status, req.target), True


def _pg_error(exc, req, session):
    """The server's error in one clause, with what it means for the lock and statement timeouts."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].replace("ERROR:  ", "").rstrip(".")
    code = getattr(exc, "pgcode", None)
    if code == "55P03":
        text += " (it waited lock_timeout %gs for a lock another session holds, %d times)" % (
            req.lock_timeout or 0, 1 + len(session.retries))
    elif code == "57014":
        text += " (statement_timeout %gs)" % (req.statement_timeout or 0)
    elif code:
        text += " (SQLSTATE %s)" % code
    return text


def _status_text(result):
    text = "%s: at version %s, %d pending" % (result["tool"], result["current"], len(result["pending"]))
    if result["conflicts"]:
        text += ", %d conflicts (%s)" % (len(result["conflicts"]), result["conflicts"][0]["message"])
    return text + "."


def _plan_text(tool, status, plan, downgrade, req):
    if not plan:
        return "Nothing to apply: at version %s." % status.current
    return "Would %s %d migration%s with %s from version %s: %s." % (
        "undo" if downgrade else "apply", len(plan), "" if len(plan) == 1 else "s", tool.name, status.current,
        ", ".join(m.version for m in plan))


def _schema_text(snapshot):
    """The schema objects of a snapshot with their definitions, one per line (for --diff)."""
    described = snapshot.get("schema_descriptions") or snapshot["schema_objects"]
    return "".join("%s: %s\n" % (key, value) for key, value in sorted(described.items()))
