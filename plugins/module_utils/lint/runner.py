# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the migration_lint module does around the engine: gather the SQL (inline text,
.sql files, or exactly the pending migrations of a project through the migrate engine),
read the real tables' sizes when connected, lint, and apply the failure policy."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

try:
    import psycopg2
except ImportError:  # the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.lint.engine import DEFAULT_THRESHOLDS, Source, lint, require_pglast, \
    select_rules, summarize
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.engine import MigrateRequest, read_plan
from ansible_collections.pgops.runbook.plugins.module_utils.sql_script import SqlScriptError, is_transaction_control, split_statements

# How a table's size is read: the planner's estimate (no scan) and the bytes on disk. A table never
# analyzed has reltuples -1 (PostgreSQL 14+) or 0 with pages: then its rows are counted, up to one
# more than large_table_rows. The session's lock_timeout and statement_timeout (SESSION_LIMITS)
# keep a table locked by someone else, or a slow count, from holding the lint up: its size is
# then unknown and the finding keeps the rule's own severity.
SIZE_QUERY = """
SELECT c.oid::regclass::text, c.reltuples::bigint, c.relpages, pg_total_relation_size(c.oid)
  FROM pg_class c
 WHERE c.oid = to_regclass(array_to_string(ARRAY(SELECT quote_ident(part) FROM unnest(%s::text[]) part), '.'))
"""
SESSION_LIMITS = {"lock_timeout": "2s", "statement_timeout": "10s"}


class LintRequest:
    """Validated migration_lint options (the connection ones aside)."""

    def __init__(self, sql=None, paths=None, project_dir=None, tool="auto", migrations_dir=None, executable=None,
                 environment=None, database_url_env="DATABASE_URL", in_transaction=None, runner_sets_lock_timeout=None,
                 fail_on="error", rules=None, exclude_rules=None, thresholds=None, connect=False):
        given = [name for name, value in (("sql", sql), ("paths", paths), ("project_dir", project_dir)) if value]
        if len(given) != 1:
            raise PgopsError("Give exactly one of the options sql, paths and project_dir (got %s)."
                             % (", ".join(given) if given else "none"))
        self.sql = sql
        self.paths = paths
        self.project = None
        if project_dir:
            self.project = MigrateRequest(project_dir, tool=tool, migrations_dir=migrations_dir, executable=executable,
                                          environment=environment, database_url_env=database_url_env)
        self.in_transaction = in_transaction
        # The migrate module sets lock_timeout on every migration it runs.
        self.runner_sets_lock_timeout = bool(project_dir) if runner_sets_lock_timeout is None else runner_sets_lock_timeout
        self.fail_on = fail_on
        self.rules = select_rules(rules, exclude_rules)
        self.thresholds = dict(DEFAULT_THRESHOLDS)
        for key, value in (thresholds or {}).items():
            if key not in DEFAULT_THRESHOLDS:
                raise PgopsError("Option thresholds: unknown key %s (known: %s)." % (key, ", ".join(sorted(DEFAULT_THRESHOLDS))))
            try:
                number = int(value)
            except (TypeError, ValueError):
                number = -1
            if number < 0:
                raise PgopsError("Option thresholds: %s must be a whole number of 0 or more, got %r." % (key, value))
            self.thresholds[key] = number
        if self.thresholds["small_table_rows"] > self.thresholds["large_table_rows"]:
            raise PgopsError("Option thresholds: small_table_rows (%d) is above large_table_rows (%d)."
                             % (self.thresholds["small_table_rows"], self.thresholds["large_table_rows"]))
        self.connect = connect or bool(project_dir)


def sources_from_paths(paths, wrapped):
    """A Source per .sql file of `paths` (files, or directories searched recursively, in name order)."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(top, name) for top, dirs, names in os.walk(path) for name in names
                           if name.endswith(".sql"))
            if not found:
                raise PgopsError("Option paths: directory %s holds no .sql file." % path)
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise PgopsError("Option paths: %s does not exist." % path)
    sources = []
    for path in files:
        try:
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8")
        except UnicodeDecodeError:
            raise PgopsError("Option paths: %s is not UTF-8 text." % path)
        except (IOError, OSError) as exc:
            raise PgopsError("Option paths: %s cannot be read (%s)." % (path, exc.strerror or exc))
        sources.append(Source(path, text, wrapped))
    return sources


def sources_from_project(settings, project):
    """(tool name, a Source per pending migration, with its SQL as the migrate module would run it)."""
    tool, status, plan, downgrade = read_plan(settings, project, "pgops.runbook migration_lint")
    sources = []
    for migration in plan:
        if migration.sql is None:
            raise PgopsError("Migration %s (%s): %s cannot show its SQL, so it cannot be linted."
                             % (migration.version, migration.name, tool))
        name = migration.path or "%s %s" % (migration.version, migration.name)
        # Alembic's offline SQL and Django's sqlmigrate write the BEGIN and COMMIT the tool runs: judged as written.
        wrapped = getattr(migration, "transactional", True) and not _begins_a_transaction(migration.sql)
        sources.append(Source(name, migration.sql, wrapped))
    return tool, status.current, sources


def _begins_a_transaction(text):
    try:
        statements = split_statements(text)
    except SqlScriptError:
        return False
    return bool(statements) and is_transaction_control(statements[0].text)


class TableSizes:
    """Size facts of the tables findings are about, read once per table."""

    def __init__(self, conn, limit):
        self.conn = conn
        self.limit = limit
        self.known = {}

    def __call__(self, table):
        if table not in self.known:
            self.known[table] = self._read(table)
        return self.known[table]

    def _read(self, table):
        """{rows, bytes}, None when there is no such table, or rows and bytes None when they cannot be read now
        (a lock held by someone else: sizes need a share lock, which lock_timeout bounds)."""
        parts = table.split(".")  # as written, already unquoted by the parser
        with self.conn.cursor() as cur:
            cur.execute("SAVEPOINT pgops_size")
            try:
                cur.execute(SIZE_QUERY, (parts,))
                row = cur.fetchone()
                if row is None:
                    size = None  # not there (yet): created by an earlier migration of this run, or a typo
                else:
                    qualified, rows, pages, total = row  # regclass's text is the name quoted as SQL needs it
                    if rows < 0 or (rows == 0 and pages > 0):  # never analyzed: count, up to just past "large"
                        cur.execute("SELECT count(*) FROM (SELECT 1 FROM %s LIMIT %d) t" % (qualified, self.limit + 1))
                        rows = cur.fetchone()[0]
                    size = dict(rows=rows, bytes=total)
                cur.execute("RELEASE SAVEPOINT pgops_size")
                return size
            except psycopg2.Error:
                cur.execute("ROLLBACK TO SAVEPOINT pgops_size")
                return dict(rows=None, bytes=None)


def run_lint(settings, req):
    """The module's result dict: findings, summary, and failed when the policy says so."""
    require_pglast()
    conn = None
    tool = current = None
    try:
        server_version_num = None
        facts = None
        if req.project is not None:
            tool, current, sources = sources_from_project(settings, req.project)
        elif req.paths:
            sources = sources_from_paths(req.paths, True if req.in_transaction is None else req.in_transaction)
        else:
            sources = [Source("sql", req.sql, bool(req.in_transaction))]
        if req.connect:
            conn = connect(settings, application_name="pgops.runbook migration_lint", autocommit=False,
                           session_options=SESSION_LIMITS)[0]
            conn.set_session(readonly=True)
            server_version_num = conn.server_version
            facts = TableSizes(conn, req.thresholds["large_table_rows"])
        findings, stats = lint(sources, req.rules, facts=facts, thresholds=req.thresholds,
                               server_version_num=server_version_num, lock_timeout_set=req.runner_sets_lock_timeout)
    finally:
        if conn is not None:
            conn.rollback()
            conn.close()
    summary, fails = summarize(findings, stats["statements"], req.fail_on)
    summary["files"] = len(sources)
    result = dict(changed=False, findings=findings, summary=summary, connected=conn is not None,
                  sources=[s.name for s in sources], duration_s=stats["seconds"])
    if tool is not None:
        result.update(tool=tool, current=current)
    what = "%d pending migration%s of %s" % (len(sources), "" if len(sources) == 1 else "s", tool) if tool else \
        "%d source%s" % (len(sources), "" if len(sources) == 1 else "s")
    if fails:
        worst = [f for f in findings if f["severity"] == "error"] or [f for f in findings if f["severity"] == "warning"]
        first = worst[0]
        result["failed"] = True
        result["msg"] = "migration_lint: %s in %s (fail_on %s); first: %s at %s line %d: %s" % (
            summary["line"], what, req.fail_on, first["rule"], os.path.basename(first["file"]), first["line"],
            first["why"])
    else:
        result["msg"] = "migration_lint: %s in %s." % (summary["line"], what)
    return result
