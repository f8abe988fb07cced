# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain SQL migrations with Flyway's file names, applied natively.

`V<version>__<description>.sql` migrations apply in version order, each in its own
transaction together with its history row (so it applies whole or not at all);
`U<version>__<description>.sql` undoes version <version>; `R__<description>.sql` is
re-applied, after the versioned ones, when its checksum changed or an undo ran since
it was last applied, and only when the run reaches the latest version. The history
table (default pgops_schema_history) is the single truth of what was applied.

A file that must run outside a transaction says so with `-- pgops: no-transaction`;
one holding a statement PostgreSQL refuses in a transaction (CREATE INDEX
CONCURRENTLY, VACUUM, ...) without saying so is refused, because the statements
before it could not be rolled back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import time

try:
    import psycopg2
    import psycopg2.sql
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.model import Conflict, Migration, Status, version_key
from ansible_collections.pgops.runbook.plugins.module_utils.sql_script import (
    describe, header_directives, needs_no_transaction, split_statements,
)

NAME = "sql"
LOCK_CLASS = 0x70676F6D  # ASCII "pgom": one lock per database for this tool
_FILE_RE = re.compile(r"^(?P<prefix>[VUR])(?P<version>[0-9][0-9._]*)?__(?P<description>.+)\.sql$")
KNOWN_DIRECTIVES = ("no-transaction",)


def detect(project_dir):
    """A directory (or its migrations/ or sql/ subdirectory) holding V<version>__*.sql files."""
    return migrations_directory(project_dir, None) is not None


def migrations_directory(project_dir, migrations_dir):
    candidates = [migrations_dir] if migrations_dir else [project_dir, os.path.join(project_dir, "migrations"),
                                                          os.path.join(project_dir, "sql")]
    for directory in candidates:
        if directory and os.path.isdir(directory) and any(_FILE_RE.match(n) and n.startswith("V") for n in os.listdir(directory)):
            return directory
    return None


def checksum(data):
    return hashlib.sha256(data).hexdigest()


class SqlFile(Migration):
    """A migration file, read and split once; `transactional` is False for no-transaction files."""

    def __init__(self, path, prefix, version, description):
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PgopsError("Migration file %s is not UTF-8." % path)
        kind = "repeatable" if prefix == "R" else "versioned"
        Migration.__init__(self, version if prefix != "R" else description, description.replace("_", " "), sql=text,
                           checksum=checksum(data), path=path, kind=kind)
        self.prefix = prefix
        self.statements = split_statements(text)
        directives = header_directives(text)
        unknown = sorted(set(directives) - set(KNOWN_DIRECTIVES))
        if unknown:
            raise PgopsError("Migration file %s: unknown directive '-- pgops: %s' (known: %s)."
                             % (os.path.basename(path), unknown[0], ", ".join(KNOWN_DIRECTIVES)))
        self.transactional = "no-transaction" not in directives
        if not self.statements:
            raise PgopsError("Migration file %s holds no SQL statement." % os.path.basename(path))
        if self.transactional:
            outside = [(statement, needs_no_transaction(statement.text)) for statement in self.statements]
            outside = [(statement, reason) for statement, reason in outside if reason]
            if outside and len(outside) == len(self.statements):
                self.transactional = False  # detected: nothing in the file could run inside a transaction anyway
            elif outside:
                # Mixed: the statements around it could not be rolled back with it.
                raise PgopsError("Migration file %s, line %d: %s cannot run inside a transaction, and the file has other "
                                 "statements; put it in a file of its own (or start this one with "
                                 "'-- pgops: no-transaction' to run every statement on its own)." % (
                                     os.path.basename(path), outside[0][0].line, outside[0][1]))


def read_project(directory):
    """(versioned [SqlFile] by version, undo {version key: SqlFile}, repeatable [SqlFile] by name)."""
    versioned, undo, repeatable = [], {}, []
    seen = {}
    for name in sorted(os.listdir(directory)):
        match = _FILE_RE.match(name)
        if not match or not os.path.isfile(os.path.join(directory, name)):
            continue
        prefix, version, description = match.group("prefix"), match.group("version"), match.group("description")
        if prefix in "VU" and not version:
            raise PgopsError("Migration file %s has no version (expected %s<version>__<description>.sql)." % (name, prefix))
        if prefix == "R" and version:
            raise PgopsError("Repeatable migration %s must be named R__<description>.sql." % name)
        migration = SqlFile(os.path.join(directory, name), prefix, version, description)
        if prefix == "V":
            key = version_key(version)
            if key in seen:
                raise PgopsError("Migration files %s and %s have the same version." % (seen[key], name))
            seen[key] = name
            versioned.append(migration)
        elif prefix == "U":
            undo[version_key(version)] = migration
        else:
            repeatable.append(migration)
    versioned.sort(key=lambda m: version_key(m.version))
    for migration in versioned:
        migration.undo = undo.get(version_key(migration.version))
    return versioned, undo, repeatable


class Tool:
    """The SQL adapter: state from the history table, migrations applied natively."""

    name = NAME

    def __init__(self, request, session):
        self.request = request
        self.session = session
        self.directory = migrations_directory(request.project_dir, request.migrations_dir)
        if self.directory is None:
            raise PgopsError("Option project_dir: %s holds no V<version>__<description>.sql files%s." % (
                request.project_dir, " in %s" % request.migrations_dir if request.migrations_dir else ""))
        self.versioned, self.undo, self.repeatable = read_project(self.directory)
        schema, dummy, table = request.history_table.rpartition(".")
        self.history = psycopg2.sql.Identifier(schema, table) if schema else psycopg2.sql.Identifier(table)
        self.history_name = request.history_table

    @staticmethod
    def lock_key(database):
        return (LOCK_CLASS, "sql|%s" % database)

    # -- the history table --------------------------------------------------------------

    def _history_exists(self, cur):
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self.history_name,))
        return cur.fetchone()[0]

    def _ensure_history(self, cur):
        cur.execute(psycopg2.sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (installed_rank serial PRIMARY KEY, version text, description text NOT NULL, "
            "kind text NOT NULL CHECK (kind IN ('versioned', 'undo', 'repeatable')), script text NOT NULL, "
            "checksum text NOT NULL, applied_by text NOT NULL DEFAULT current_user, "
            "applied_at timestamptz NOT NULL DEFAULT now(), duration_s numeric NOT NULL, success boolean NOT NULL)"
        ).format(self.history))

    def _history(self, cur):
        if not self._history_exists(cur):
            return []
        cur.execute(psycopg2.sql.SQL("SELECT installed_rank, version, description, kind, script, checksum, success "
                                     "FROM {} ORDER BY installed_rank").format(self.history))
        keys = ("rank", "version", "description", "kind", "script", "checksum", "success")
        return [dict(zip(keys, row)) for row in cur.fetchall()]

    # -- state --------------------------------------------------------------------------

    def status(self):
        with self.session.cursor() as cur:
            rows = self._history(cur)
        applied = {}  # version key -> the row that applied it
        conflicts = []
        last_undo_rank = 0
        repeatable_rows = {}
        for row in rows:
            if not row["success"]:
                conflicts.append(Conflict("failed", row["version"] or row["description"],
                                          "Migration %s (%s) failed part way outside a transaction (history row %d): "
                                          "clean up what it left, then delete that row." % (
                                              row["version"] or row["description"], row["script"], row["rank"])))
                continue
            if row["kind"] == "versioned":
                applied[version_key(row["version"])] = row
            elif row["kind"] == "undo":
                applied.pop(version_key(row["version"]), None)
                last_undo_rank = row["rank"]
            else:
                repeatable_rows[row["description"]] = row
        files = dict((version_key(m.version), m) for m in self.versioned)
        for key, row in sorted(applied.items()):
            migration = files.get(key)
            if migration is None:
                conflicts.append(Conflict("missing", row["version"], "Version %s (%s) is applied but its file is no longer in "
                                          "the project." % (row["version"], row["script"])))
            elif migration.checksum != row["checksum"]:
                conflicts.append(Conflict("checksum", row["version"], "%s was edited after it was applied (sha256 %s, applied "
                                          "%s)." % (os.path.basename(migration.path), migration.checksum[:12], row["checksum"][:12])))
        current_key = max(applied) if applied else None
        pending = []
        for key, migration in sorted(files.items()):
            if key in applied:
                continue
            if current_key is not None and key < current_key:
                conflicts.append(Conflict("out_of_order", migration.version, "%s is older than the applied version %s and "
                                          "was never applied." % (os.path.basename(migration.path), applied[current_key]["version"])))
                continue
            pending.append(migration)
        self.repeatable_pending = [m for m in self.repeatable
                                   if m.version not in repeatable_rows or repeatable_rows[m.version]["checksum"] != m.checksum
                                   or repeatable_rows[m.version]["rank"] < last_undo_rank]
        current = applied[current_key]["version"] if current_key is not None else None
        return Status(current, [applied[k]["version"] for k in sorted(applied)], pending, conflicts, known=self.versioned)

    def find(self, version):
        key = version_key(version)
        for migration in self.versioned:
            if version_key(migration.version) == key:
                return migration
        return None

    def compare(self, a, b):
        return (version_key(a) > version_key(b)) - (version_key(a) < version_key(b))

    def upgrade_plan(self, status, target):
        """Pending migrations up to `target` (None: all), then the repeatables when that reaches the latest."""
        plan = [m for m in status.pending if target is None or version_key(m.version) <= version_key(target)]
        latest = self.versioned[-1].version if self.versioned else None
        if target is None or latest is None or version_key(target) >= version_key(latest):
            plan.extend(self.repeatable_pending)
        return plan

    def downgrade_plan(self, status, target):
        """Undo migrations from the current version down to (not including) `target`."""
        plan = []
        for version in reversed(status.applied):
            if version_key(version) <= version_key(target):
                break
            migration = self.find(version)
            if migration is None or migration.undo is None:
                raise PgopsError("Option target: version %s has no undo file U%s__<description>.sql, so the database "
                                 "cannot be taken below it." % (version, version))
            plan.append(migration.undo)
        return plan

    # -- applying -----------------------------------------------------------------------

    def apply(self, migration, undo=False):
        """Apply one migration (or its undo), with its history row; returns the seconds it took."""
        kind = "undo" if undo else migration.kind
        version = migration.version if migration.kind == "versioned" or undo else None
        description = migration.version if migration.kind == "repeatable" else migration.name
        if not getattr(self, "history_ready", False):
            with self.session.cursor() as cur:
                self._ensure_history(cur)
            self.history_ready = True
        script = os.path.basename(migration.path)
        if migration.transactional:
            return self.session.with_retries(script, lambda: self._apply_in_transaction(migration, kind, version, description))
        return self._apply_outside_transaction(migration, kind, version, description)

    def _record(self, cur, kind, version, description, migration, seconds, success, then=""):
        # `then` (COMMIT) rides in the same round trip: if the INSERT fails the server skips it.
        cur.execute(psycopg2.sql.SQL("INSERT INTO {} (version, description, kind, script, checksum, duration_s, success) "
                                     "VALUES (%s, %s, %s, %s, %s, %s, %s)" + then).format(self.history),
                    (version, description, kind, os.path.basename(migration.path), migration.checksum, round(seconds, 3), success))

    def _apply_in_transaction(self, migration, kind, version, description):
        started = time.monotonic()
        with self.session.transaction() as cur:
            for statement in migration.statements:
                try:
                    cur.execute(statement.text)
                except psycopg2.Error as exc:
                    exc.pgops_statement = statement
                    raise
            self._record(cur, kind, version, description, migration, time.monotonic() - started, True, then="; COMMIT")
        return time.monotonic() - started

    def _apply_outside_transaction(self, migration, kind, version, description):
        started = time.monotonic()
        with self.session.cursor() as cur:
            self.session.apply_timeouts(cur, local=False)
            try:
                for number, statement in enumerate(migration.statements):
                    try:
                        self.session.with_retries(os.path.basename(migration.path),
                                                  lambda: self._run_alone(cur, statement))
                    except psycopg2.Error as exc:
                        exc.pgops_statement = statement
                        exc.pgops_done = number
                        leftover = invalid_index_left(cur, statement.text)
                        if leftover:
                            exc.pgops_leftover = leftover
                        self._record(cur, kind, version, description, migration, time.monotonic() - started, False)
                        raise
                self._record(cur, kind, version, description, migration, time.monotonic() - started, True)
            finally:
                self.session.reset_timeouts(cur)
        return time.monotonic() - started

    @staticmethod
    def _run_alone(cur, statement):
        try:
            cur.execute(statement.text)
        except psycopg2.Error as exc:
            # A CREATE INDEX CONCURRENTLY that lost a lock race leaves an invalid index behind: drop it before a retry.
            if getattr(exc, "pgcode", None) == "55P03":
                leftover = invalid_index_left(cur, statement.text)
                if leftover:
                    cur.execute(psycopg2.sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        psycopg2.sql.Identifier(*leftover.split(".", 1))))
            raise


_INDEX_NAME_RE = re.compile(r"^\s*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?"
                            r"(\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)", re.IGNORECASE)


def invalid_index_left(cur, statement_text):
    """schema.name of the INVALID index a failed CREATE INDEX CONCURRENTLY left, or None."""
    match = _INDEX_NAME_RE.match(statement_text)
    if not match:
        return None
    name = match.group(1)
    name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
    cur.execute("SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = %s AND NOT i.indisvalid "
                "AND n.nspname = ANY (current_schemas(false))", (name,))
    row = cur.fetchone()
    return row[0] if row else None


def statement_hint(exc):
    """Where a failed migration stopped, for the error message."""
    statement = getattr(exc, "pgops_statement", None)
    if statement is None:
        return ""
    text = " at line %d (%s)" % (statement.line, describe(statement.text, 60))
    leftover = getattr(exc, "pgops_leftover", None)
    if leftover:
        text += "; it left the INVALID index %s: DROP INDEX CONCURRENTLY %s; before running it again" % (leftover, leftover)
    return text
