# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real dry run for every tool: the database's schema, with the rows of the migration
tools' history tables, is copied into a scratch database (pg_dump | psql, through the
one client-tool runner) -- or, with rehearse_data, the latest backup is restored there by
the restore engine -- the pending migrations are applied there by the same engine, and
the scratch database is always dropped. The result is the rehearsal's per-migration
timings, its schema changes and whether it succeeded -- the target is never touched."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import time

try:
    import psycopg2
    import psycopg2.sql
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.backup.destinations import storages_from_params
from ansible_collections.pgops.runbook.plugins.module_utils.backup.stages import Encryption
from ansible_collections.pgops.runbook.plugins.module_utils.client_tools import ClientTools
from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.restore.engine import Restore, RestoreRequest
from ansible_collections.pgops.runbook.plugins.module_utils.restore.source import entry_from_catalog

# Whose rows a rehearsal copies: the migration tools' own bookkeeping.
HISTORY_TABLES = ("public._prisma_migrations", "public.alembic_version", "public.django_migrations",
                  "public.flyway_schema_history")


def scratch_name(database):
    return "pgops_rehearse_" + hashlib.sha256(("%s|%f" % (database, time.time())).encode("utf-8")).hexdigest()[:16]


def rehearse(settings, req, run_migrate):
    """Apply `req`'s plan to a scratch copy (the schema, or with rehearse_data the latest
    backup restored); returns the rehearsal's result dict."""
    started = time.monotonic()
    database = settings.effective()["dbname"]
    admin, dummy = connect(settings, application_name="pgops.runbook migrate rehearsal", autocommit=True)
    scratch = scratch_name(database)
    copy_of = "a copy of the schema"
    try:
        try:
            if req.rehearse_data:
                backup_id = _restore_latest(settings, req, database, scratch)
                copy_of = "a restore of backup %s" % backup_id
            else:
                _copy_schema(admin, settings, req, scratch)
            copied = round(time.monotonic() - started, 3)
            result = run_migrate(settings.with_database(scratch), req, diff=True)
            return dict(succeeded=True, scratch_db=scratch, copy_s=copied, applied=result["applied"],
                        final=result["final"], schema_changes=result.get("schema_changes", []),
                        retries=result["retries"], duration_s=round(time.monotonic() - started, 3),
                        message="Rehearsed on %s: %s" % (copy_of, result["msg"]))
        except PgopsError as exc:
            return dict(succeeded=False, scratch_db=scratch, applied=exc.details.get("applied", []),
                        duration_s=round(time.monotonic() - started, 3),
                        message="The rehearsal failed on %s: %s" % (copy_of, exc.message))
        finally:
            with admin.cursor() as cur:
                cur.execute(psycopg2.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg2.sql.Identifier(scratch)))
    finally:
        admin.close()


def _copy_schema(admin, settings, req, scratch):
    """The schema, and the migration tools' history rows, into a new database `scratch`."""
    with admin.cursor() as cur:
        cur.execute("SELECT current_setting('server_version_num')::int, pg_encoding_to_char(encoding), datcollate, "
                    "datctype FROM pg_database WHERE datname = current_database()")
        version, encoding, collate, ctype = cur.fetchone()
        histories = [req.history_table] + list(HISTORY_TABLES)
        cur.execute("SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL", (histories,))
        present = [row[0] for row in cur.fetchall()]
        try:
            cur.execute(psycopg2.sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s")
                        .format(psycopg2.sql.Identifier(scratch)), (encoding, collate, ctype))
        except psycopg2.Error as exc:
            raise PgopsError("Option rehearse needs a login role that may create databases (CREATEDB): %s"
                             % (str(exc).strip().splitlines() or ["cannot create the scratch database"])[0])
    tools = ClientTools(settings, version // 10000)
    load = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--dbname=" + scratch]
    tools.run([["pg_dump", "--no-password", "--schema-only", "--no-owner", "--no-privileges"], load])
    if present:
        tools.run([["pg_dump", "--no-password", "--data-only", "--no-owner"] + ["--table=" + t for t in present], load])


def _restore_latest(settings, req, database, scratch):
    """The newest backup of `database` in backup_dest / backup_s3 (not failed verification), restored
    into a new database `scratch` by the restore engine; returns its id."""
    if not (req.backup_dest or req.backup_s3):
        raise PgopsError("Option rehearse_data needs the backups' location: option backup_dest and/or backup_s3.")
    entry = entry_from_catalog(storages_from_params(req.backup_dest, req.backup_s3, dest_option="backup_dest",
                                                    s3_option="backup_s3"), database=database, label=req.backup_label)
    encryption = Encryption(**req.backup_encryption) if req.backup_encryption else None

    def restore():
        request = RestoreRequest(entry, target_db=scratch, no_owner=True, validate=False, analyze=False, encryption=encryption,
                                 maintenance_db=database)
        Restore(settings, request).run()

    if encryption is None:
        restore()
    else:
        with encryption:
            restore()
    return entry.backup_id
