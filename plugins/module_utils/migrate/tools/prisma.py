# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prisma migrations (prisma/migrations/<name>/migration.sql), two ways that agree.

The state is read natively in both: Prisma's own `_prisma_migrations` table against
the project's migration directories (which also catches what Prisma does not notice:
a migration.sql edited after it was applied).

- CLI path (the real Prisma CLI in `executable`, or node_modules/.bin/prisma of the
  project): `state: latest` runs `prisma migrate deploy`, which takes Prisma's own
  advisory lock (72707369) itself; the module holds its own lock around it.
- native path (no CLI where the module runs, or a target/downgrade the CLI cannot do):
  the module holds Prisma's lock 72707369 itself (so the real CLI and the module
  exclude each other) and applies each migration.sql in one transaction with the
  same bookkeeping the CLI writes (row inserted, script run, finished_at and
  applied_steps_count set; same sha256 checksum), which the CLI then accepts.
  Downgrades run the migration's down.sql and mark the row rolled back
  (finished_at cleared, rolled_back_at set), as `migrate resolve --rolled-back`
  leaves it; the next deploy applies the migration again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import time
import uuid

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.external import ExternalTool
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.model import Conflict, Migration, MigrationFailed, Status

NAME = "prisma"
PRISMA_LOCK = 72707369
TABLE = "_prisma_migrations"
_NAME_RE = re.compile(r"^\d{14}_.+$|^\d+_.+$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"""


def checksums(data):
    """The sha256 Prisma records, and the ones it also accepts (line endings converted)."""
    variants = {data, data.replace(b"\r\n", b"\n"), data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")}
    return [hashlib.sha256(v).hexdigest() for v in variants]


def migrations_root(request):
    if request.migrations_dir:
        return request.migrations_dir
    return os.path.join(request.project_dir, "prisma", "migrations")


def read_project(root):
    """Every migration directory holding a migration.sql, in name order (Prisma's order)."""
    if not os.path.isdir(root):
        raise PgopsError("Option project_dir: %s has no prisma/migrations directory (set migrations_dir)." % os.path.dirname(root))
    migrations = []
    for name in sorted(os.listdir(root)):
        directory = os.path.join(root, name)
        script = os.path.join(directory, "migration.sql")
        if not os.path.isdir(directory):
            continue
        if not os.path.isfile(script):
            raise PgopsError("Prisma migration %s has no migration.sql." % name)
        with open(script, "rb") as handle:
            data = handle.read()
        migration = Migration(name, name.split("_", 1)[-1].replace("_", " "), sql=data.decode("utf-8", "replace"),
                              checksum=hashlib.sha256(data).hexdigest(), path=script)
        migration.accepted = checksums(data)
        down = os.path.join(directory, "down.sql")
        if os.path.isfile(down):
            with open(down, "rb") as handle:
                migration.undo = Migration(name, "undo " + migration.name, sql=handle.read().decode("utf-8", "replace"),
                                           path=down)
        migrations.append(migration)
    return migrations


class Tool(ExternalTool):
    """The Prisma adapter (see the module docstring for its two paths)."""

    name = NAME

    def __init__(self, request, session):
        root = migrations_root(request)
        if not request.migrations_dir and not os.path.exists(os.path.join(request.project_dir, "prisma")):
            raise PgopsError("Option project_dir: %s holds no prisma/schema.prisma or prisma/migrations." % request.project_dir)
        ExternalTool.__init__(self, request, session)
        self.migrations = read_project(root)
        self.cli = self._find_cli()
        # The CLI deploys everything pending; a target or a downgrade is applied natively.
        self.path = "cli" if self.cli and request.state == "latest" else "native"

    def _find_cli(self):
        executable = self.request.executable
        if executable:
            if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
                raise PgopsError("Option executable: %s does not exist or is not executable." % executable)
            return executable
        default = os.path.join(self.request.project_dir, "node_modules", ".bin", "prisma")
        return default if os.path.isfile(default) and os.access(default, os.X_OK) else None

    def lock_key(self, database):
        # Native: Prisma's own lock, so the real CLI and the module exclude each other.
        # CLI: our lock (the CLI takes Prisma's itself; holding it here would block the CLI).
        if self.path == "native":
            return (PRISMA_LOCK,)
        return (0x70676F6D, "prisma|%s" % database)

    # -- state --------------------------------------------------------------------------

    def _rows(self):
        with self.session.cursor() as cur:
            cur.execute("SELECT to_regclass('public._prisma_migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute('SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, logs '
                        'FROM public."_prisma_migrations" ORDER BY started_at, migration_name')
            return [dict(name=r[0], checksum=r[1], finished=r[2], rolled_back=r[3], logs=r[4]) for r in cur.fetchall()]

    def status(self):
        rows = self._rows()
        by_name = dict((m.version, m) for m in self.migrations)
        applied, conflicts = [], []
        for row in rows:
            if row["rolled_back"]:
                continue
            migration = by_name.get(row["name"])
            if not row["finished"]:
                conflicts.append(Conflict("failed", row["name"], "Prisma migration %s failed or is still running (%s); "
                                          "fix it, then mark it with prisma migrate resolve --rolled-back or --applied."
                                          % (row["name"], (row["logs"] or "no log").strip().splitlines()[0][:200])))
                continue
            if row["name"] in applied:
                continue
            applied.append(row["name"])
            if migration is None:
                conflicts.append(Conflict("missing", row["name"], "Prisma migration %s is applied but its directory is no "
                                          "longer in the project." % row["name"]))
            elif row["checksum"] not in migration.accepted:
                conflicts.append(Conflict("checksum", row["name"], "%s was edited after it was applied (sha256 %s, applied "
                                          "%s)." % (os.path.relpath(migration.path, self.request.project_dir),
                                                    migration.checksum[:12], row["checksum"][:12])))
        pending = [m for m in self.migrations if m.version not in applied]
        last_applied = [m.version for m in self.migrations if m.version in applied]
        for migration in pending:
            if last_applied and migration.version < last_applied[-1]:
                conflicts.append(Conflict("out_of_order", migration.version, "Prisma migration %s sorts before the applied "
                                          "%s and was never applied." % (migration.version, last_applied[-1])))
        order = [m.version for m in self.migrations]
        applied.sort(key=lambda name: order.index(name) if name in order else -1)
        current = applied[-1] if applied else None
        return Status(current, applied, pending, conflicts, known=self.migrations)

    def find(self, version):
        for migration in self.migrations:
            if migration.version == version:
                return migration
        return None

    def compare(self, a, b):
        return (a > b) - (a < b)

    def upgrade_plan(self, status, target):
        return [m for m in status.pending if target is None or m.version <= target]

    def downgrade_plan(self, status, target):
        plan = []
        for version in reversed(status.applied):
            if version <= target:
                break
            migration = self.find(version)
            if migration is None or migration.undo is None:
                raise PgopsError("Option target: Prisma migration %s has no down.sql, so the database cannot be taken "
                                 "below it here; restore the pre-migration backup instead." % version)
            plan.append(migration)
        return plan

    # -- applying -----------------------------------------------------------------------

    def deploy(self, plan):
        """CLI path: `prisma migrate deploy` once for the whole plan; per-migration seconds from the table."""
        started = time.monotonic()

        def attempt():
            try:
                self.run([self.cli, "migrate", "deploy"], "prisma migrate deploy")
            except MigrationFailed as exc:
                if exc.lock_timeout:
                    # Prisma recorded the migration as failed, though its transaction rolled back whole:
                    # mark it rolled back, so that the retry (or a later run) can apply it.
                    for name in self._failed_rows():
                        self.run([self.cli, "migrate", "resolve", "--rolled-back", name],
                                 "prisma migrate resolve --rolled-back %s" % name)
                raise

        self.session.with_retries("prisma migrate deploy", attempt)
        with self.session.cursor() as cur:
            cur.execute('SELECT migration_name, extract(epoch FROM finished_at - started_at) FROM public."_prisma_migrations" '
                        'WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL AND migration_name = ANY (%s)',
                        ([m.version for m in plan],))
            seconds = dict((name, float(value or 0)) for name, value in cur.fetchall())
        missing = [m.version for m in plan if m.version not in seconds]
        if missing:
            raise MigrationFailed("prisma migrate deploy exited 0 but did not apply %s." % ", ".join(missing))
        return seconds, time.monotonic() - started

    def _failed_rows(self):
        with self.session.cursor() as cur:
            cur.execute('SELECT migration_name FROM public."_prisma_migrations" '
                        "WHERE finished_at IS NULL AND rolled_back_at IS NULL")
            return [row[0] for row in cur.fetchall()]

    def apply(self, migration, undo=False):
        if self.path == "cli" and not undo:
            if not getattr(self, "_deployed", None):
                self._deployed, dummy = self.deploy(self._plan)
            return self._deployed[migration.version]
        label = os.path.relpath(migration.path, self.request.project_dir)
        return self.session.with_retries(label, lambda: self._apply_native(migration, undo))

    def prepare(self, plan, undo=False):
        """Called by the engine with the whole plan before the first apply (the CLI deploys it at once)."""
        self._plan = plan
        self._deployed = None

    def _apply_native(self, migration, undo):
        started = time.monotonic()
        with self.session.transaction() as cur:
            cur.execute(CREATE_TABLE)
            if undo:
                cur.execute(migration.undo.sql)
                cur.execute('UPDATE public."_prisma_migrations" SET finished_at = NULL, rolled_back_at = now(), '
                            "logs = coalesce(logs, '') || %s WHERE migration_name = %s AND rolled_back_at IS NULL",
                            ("rolled back with down.sql by pgops.runbook.migrate\n", migration.version))
            else:
                row_id = str(uuid.uuid4())
                cur.execute('INSERT INTO public."_prisma_migrations" (id, checksum, migration_name, started_at) '
                            "VALUES (%s, %s, %s, now())", (row_id, migration.checksum, migration.version))
                cur.execute(migration.sql)  # one simple query, as Prisma's engine sends it
                cur.execute('UPDATE public."_prisma_migrations" SET finished_at = clock_timestamp(), '
                            "applied_steps_count = 1 WHERE id = %s", (row_id,))
            cur.execute("COMMIT")
        return time.monotonic() - started
