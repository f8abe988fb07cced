# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A verified, streamed backup: pg_dump -> [compress] -> [encrypt] -> sha256 -> sinks.

In one pass, with bounded memory: the dump is hashed as it is written to every
destination (a local .partial file and/or an S3 multipart upload), and made
visible only after every process of the pipeline exited 0. pg_dump runs on a
snapshot exported by our own REPEATABLE READ transaction, in which the table
snapshot of the manifest is read at the same time: its row counts describe
exactly what was dumped. The manifest is written last; a backup without one
is not a backup. Two backups of one database to one place are serialised by an
advisory lock on the server.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time

try:
    import psycopg2
    import psycopg2.extras
    import psycopg2.sql
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.backup.catalog import MANIFEST_NAME
from ansible_collections.pgops.runbook.plugins.module_utils.backup.retention import RetentionPolicy, apply_retention
from ansible_collections.pgops.runbook.plugins.module_utils.backup.stages import (
    COMPRESSORS, compress_stage, compression_level as checked_compression_level, decompress_stage,
)
from ansible_collections.pgops.runbook.plugins.module_utils.client_tools import ClientTools
from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.snapshot import compare_snapshots, read_snapshot, run_statement, take_snapshot
from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage

MANIFEST_FORMAT = 1
CHUNK = 1024 * 1024
# pg_dump ends with "-- PostgreSQL database dump complete", pg_dumpall with "... cluster dump complete".
PLAIN_TRAILER = b" dump complete\n"
# Advisory lock class for backups (ASCII "pgob"); the second key is the destination.
LOCK_CLASS = 0x70676F62

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class BackupRequest:
    """Validated backup parameters (the module's options, minus connection ones)."""

    def __init__(self, storages, type="full", format="custom", compression="gzip", compression_level=None,
                 schemas=None, exclude_schemas=None, tables=None, exclude_tables=None, exclude_table_data=None,
                 encryption=None, verify="list", label=None, tags=None, lock_wait_timeout=None, lock_wait=600,
                 client_bindir=None, retention=None, include_globals=False, jobs=1, work_dir=None):
        if not storages:
            raise PgopsError("Give at least one destination: option dest and/or option s3.")
        if label is not None and not _LABEL_RE.match(label):
            raise PgopsError("Option label must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter "
                             "or digit, got %r." % label)
        if type == "globals" and format != "plain":
            format = "plain"  # pg_dumpall writes SQL only
        if format == "directory":
            if encryption:
                raise PgopsError("Option encryption is not available with format directory yet; use format custom.")
            if compression not in ("gzip", "none"):
                raise PgopsError("Option compression %s needs format custom or plain: PostgreSQL 15's pg_dump "
                                 "compresses directory archives with gzip only." % compression)
        self.storages = storages
        self.type = type
        self.format = format
        self.compression = compression
        self.compression_level = checked_compression_level(compression, compression_level)
        self.schemas = schemas or []
        self.exclude_schemas = exclude_schemas or []
        self.tables = tables or []
        self.exclude_tables = exclude_tables or []
        self.exclude_table_data = exclude_table_data or []
        self.encryption = encryption
        self.verify = verify
        self.label = label
        self.tags = tags or {}
        self.lock_wait_timeout = lock_wait_timeout
        self.lock_wait = lock_wait
        self.client_bindir = client_bindir
        self.retention = retention or RetentionPolicy()
        if include_globals and type != "full":
            raise PgopsError("Option include_globals goes with type full only (type globals dumps them alone).")
        self.include_globals = include_globals
        if jobs < 1 or (jobs > 1 and format != "directory"):
            raise PgopsError("Option jobs must be 1, or more with format directory, got %s." % jobs)
        self.jobs = jobs
        if work_dir is not None and not os.path.isdir(work_dir):
            raise PgopsError("Option work_dir: %s does not exist." % work_dir)
        self.work_dir = work_dir
        if type in ("schema", "globals") and self.exclude_table_data:
            raise PgopsError("Option exclude_table_data makes no sense with type %s." % type)

    @property
    def compress_in_pg_dump(self):
        # PostgreSQL 15's pg_dump compresses custom archives with gzip only.
        return self.format in ("custom", "directory") and self.compression == "gzip"

    def file_name(self, database):
        if self.format == "directory":
            return database + ".dir"
        name = database + (".sql" if self.format == "plain" else ".dump")
        if self.compression != "none" and not self.compress_in_pg_dump:
            name += COMPRESSORS[self.compression][1]
        if self.encryption:
            name += ".gpg"
        return name


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def make_backup_id(database, label, when):
    return "%s-%s%s" % (database, when.strftime("%Y%m%dT%H%M%SZ"), "-" + label if label else "")


def backup_keys(req, database, when):
    """(backup id, key of the dump, key of the manifest) for a backup started `when`."""
    backup_id = make_backup_id(database, req.label, when)
    prefix = "%s/%s/" % (database, backup_id)
    return backup_id, prefix + req.file_name(database), prefix + MANIFEST_NAME


def dump_command(req, snapshot_id):
    """pg_dump (or pg_dumpall) arguments for `req`; the database comes from the service file."""
    if req.type == "globals":
        return ["pg_dumpall", "--globals-only", "--no-password"]
    args = ["pg_dump", "--no-password", "--format=" + req.format]
    if snapshot_id:
        args.append("--snapshot=" + snapshot_id)
    if req.format in ("custom", "directory"):
        args.append("--compress=%d" % (req.compression_level if req.compress_in_pg_dump else 0))
    if req.type == "schema":
        args.append("--schema-only")
    elif req.type == "data":
        args.append("--data-only")
    if req.lock_wait_timeout:
        args.append("--lock-wait-timeout=%ds" % req.lock_wait_timeout)
    if req.schemas or req.tables:
        args.append("--strict-names")  # a pattern that matches nothing is an error, not an empty dump
    for option, values in (("--schema=", req.schemas), ("--exclude-schema=", req.exclude_schemas),
                           ("--table=", req.tables), ("--exclude-table=", req.exclude_tables),
                           ("--exclude-table-data=", req.exclude_table_data)):
        args.extend(option + value for value in values)
    return args


def stream_stages(req, dump):
    stages = [dump]
    if req.compression != "none" and not req.compress_in_pg_dump:
        stages.append(compress_stage(req.compression, req.compression_level))
    if req.encryption:
        stages.append(req.encryption.encrypt_stage())
    return stages


class StreamSink:
    """The pipeline's consumer: hashes and counts the stored bytes while writing
    them to every destination, in one pass."""

    def __init__(self, writers):
        self.writers = writers
        self.sha256 = hashlib.sha256()
        self.size = 0

    def __call__(self, stream):
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            self.sha256.update(chunk)
            self.size += len(chunk)
            for writer in self.writers:
                writer.write(chunk)


def _missing_tables(req, conn):
    """Tables named in `tables` that match nothing: refused before any data is written."""
    missing = []
    with conn.cursor() as cur:
        for pattern in req.tables:
            cur.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f') AND "
                        "(n.nspname || '.' || c.relname ~ %s OR c.relname ~ %s)",
                        (_glob_regex(pattern), _glob_regex(pattern)))
            if cur.fetchone()[0] == 0:
                missing.append(pattern)
    return missing


def _glob_regex(pattern):
    """pg_dump's -t pattern (with * and ?) as an anchored regular expression, unquoted."""
    pattern = pattern.replace('"', "")
    return "^" + re.escape(pattern).replace("\\*", ".*").replace("\\?", ".") + "$"


def _lock_key(database):
    # One lock per database, whatever the destinations: under it, leftovers of this
    # database's failed backups can be discarded everywhere, and retention can run.
    return "backup|%s" % database


def run_backup(settings, req, check_mode=False):
    """Make the backup; returns the result dict (raises PgopsError on any failure)."""
    clock = time.monotonic()
    session = dict(search_path="pg_catalog", application_name="pgops.runbook backup")
    conn, dummy = connect(settings, application_name="pgops.runbook backup", autocommit=True, session_options=session)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            info = run_statement(cur, "the server's description",
                                 "SELECT current_database() AS database, current_setting('server_version') AS version, "
                                 "current_setting('server_version_num')::int AS version_num, "
                                 "pg_database_size(current_database()) AS bytes")[0]
        database = info["database"]
        tools = ClientTools(settings, info["version_num"] // 10000, req.client_bindir)
        dump_tool = "pg_dumpall" if req.type == "globals" else "pg_dump"
        tools.path(dump_tool)  # refuses a client older than the server, before anything is written
        if req.include_globals:
            tools.path("pg_dumpall")
        if req.verify == "list" and req.format == "custom":
            tools.path("pg_restore")
        missing = _missing_tables(req, conn)
        if missing:
            raise PgopsError("Option tables: %s matches no table in database %s." % (", ".join(missing), database))
        if check_mode:
            backup_id, dump_key, manifest_key = backup_keys(req, database, utc_now())
            destinations = [s.uri(dump_key) for s in req.storages]
            # What retention would delete once this backup exists (it would be kept).
            would_delete = apply_retention(req.storages, database, req.label, req.retention, utc_now(),
                                           check_mode=True, pending=1)
            return dict(changed=True, backup_id=backup_id, database=database, database_bytes=info["bytes"],
                        destinations=destinations, deleted=would_delete,
                        msg="Would back up %s (%d bytes on disk) to %s." % (database, info["bytes"], ", ".join(destinations)))
        for storage in req.storages:
            storage.check_writable()
        _take_lock(conn, database, req)
        # Under the lock no other backup of this database writes here: what an earlier,
        # failed run could not clean up (a .partial file, an upload the network cut
        # before it could be aborted) is discarded now.
        discarded = []
        for storage in req.storages:
            discarded.extend(storage.uri(key) for key in storage.discard_incomplete(database + "/"))
        # Under the lock: the id is unique in every destination (same-second backups wait a second).
        while True:
            started = utc_now()
            backup_id, dump_key, manifest_key = backup_keys(req, database, started)
            if not any(s.exists(manifest_key) or s.exists(dump_key) for s in req.storages):
                break
            time.sleep(1.0 - started.microsecond / 1e6)
        result = _dump(conn, settings, tools, req, info, backup_id, dump_key, manifest_key, started, clock)
        result["discarded_incomplete"] = discarded
        result["deleted"] = []
        if not result.get("failed"):  # retention follows a verified (or unverified by choice) backup only
            result["deleted"] = apply_retention(req.storages, database, req.label, req.retention, utc_now(),
                                                keep_ids=(backup_id,))
        return result
    finally:
        conn.close()


def _take_lock(conn, database, req):
    """Wait up to lock_wait seconds for another backup of this database to this place."""
    with conn.cursor() as cur:
        cur.execute("SET lock_timeout = %s", ("%ds" % req.lock_wait,))
        try:
            cur.execute("SELECT pg_advisory_lock(%s::int, hashtext(%s))", (LOCK_CLASS, _lock_key(database)))
        except psycopg2.Error as exc:
            if getattr(exc, "pgcode", None) == "55P03":
                raise PgopsError("Another backup of %s to the same destination is running; gave up waiting after %d s "
                                 "(option lock_wait)." % (database, req.lock_wait))
            raise
        cur.execute("RESET lock_timeout")


def run_alongside(run, while_running=None, cancel=None):
    """Return run(), with while_running() in a thread meanwhile (the manifest's row
    counts while pg_dump runs). If run() fails, cancel() stops the other (it may wait
    for a lock pg_dump gave up on); if the other fails, that fails the whole."""
    failure = []
    worker = None
    if while_running:
        def guarded():
            try:
                while_running()
            except Exception as exc:  # reported once run() is done
                failure.append(exc)
        worker = threading.Thread(target=guarded)
        worker.start()
    try:
        result = run()
    except BaseException:
        if worker and cancel:
            cancel()
        raise
    finally:
        if worker:
            worker.join()
    if failure:
        raise failure[0] if isinstance(failure[0], PgopsError) else PgopsError("%s" % failure[0])
    return result


def store(storages, key, fill):
    """Store under `key` in every storage what `fill(sink)` writes into the sink (which
    hashes and counts it in the same pass). Committed in every storage only when fill
    returned; otherwise aborted and deleted everywhere. Returns (sink, fill's result)."""
    writers = [storage.writer(key) for storage in storages]
    sink = StreamSink(writers)
    try:
        result = fill(sink)
        for writer in writers:
            writer.commit()
    except BaseException:
        for writer in writers:
            writer.abort()
        for storage in storages:  # some destinations may have committed before another failed
            storage.delete([key])
        raise
    return sink, result


def stream_into(tools, storages, key, stages, while_running=None, cancel=None):
    """Run `stages` and store their output under `key` in every storage (see store, and
    run_alongside for the last two arguments). Returns (sink, each stage's status)."""
    sink, (dummy, statuses) = store(storages, key, lambda sink: run_alongside(
        lambda: tools.run(stages, consume=sink), while_running, cancel))
    return sink, statuses


class DirectorySink:
    """What a directory-format dump stored: per-file sha256 and sizes, and one
    sha256 over them (the manifest's), in the shape StreamSink offers."""

    def __init__(self):
        self.files = {}
        self.keys = []
        self.size = 0

    @property
    def sha256(self):
        return hashlib.sha256(directory_digest_text(self.files).encode("utf-8"))


def directory_digest_text(files):
    """The text whose sha256 stands for a directory archive: one 'name sha256' line per file."""
    return "".join("%s %s\n" % (name, files[name]["sha256"]) for name in sorted(files))


def dump_directory(tools, req, snapshot_id, dump_key, while_running=None, cancel=None):
    """pg_dump --format=directory --jobs=N into a private work directory (pg_dump writes
    the files itself, in parallel), then each file into every storage, hashed as it is
    copied. Nothing is stored unless pg_dump exited 0; the work directory always goes."""
    work = tempfile.mkdtemp(prefix="pgops-dump-", dir=req.work_dir)
    os.chmod(work, 0o700)
    target = os.path.join(work, "archive")
    sink = DirectorySink()
    try:
        dummy, statuses = run_alongside(lambda: tools.run([dump_command(req, snapshot_id) + [
            "--jobs=%d" % req.jobs, "--file=" + target]]), while_running, cancel)
        for name in sorted(os.listdir(target)):
            key = "%s/%s" % (dump_key, name)
            sink.keys.append(key)
            with open(os.path.join(target, name), "rb") as handle:
                stored, dummy = store(req.storages, key, lambda file_sink: file_sink(handle))
            sink.files[name] = dict(sha256=stored.sha256.hexdigest(), size_bytes=stored.size)
            sink.size += stored.size
    except BaseException:
        for storage in req.storages:
            storage.delete(sink.keys)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sink, statuses


def globals_stages(req):
    """pg_dumpall --globals-only through the stream's compression and encryption."""
    stages = [["pg_dumpall", "--globals-only", "--no-password"]]
    if req.compression != "none":
        stages.append(compress_stage(req.compression, req.compression_level))
    if req.encryption:
        stages.append(req.encryption.encrypt_stage())
    return stages


def globals_file_name(req):
    name = "globals.sql"
    if req.compression != "none":
        name += COMPRESSORS[req.compression][1]
    return name + (".gpg" if req.encryption else "")


# The history tables of the migration tools our users run, newest applied first.
MIGRATION_HISTORIES = (
    ("prisma", "public._prisma_migrations",
     "SELECT migration_name FROM public._prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL "
     "ORDER BY finished_at DESC, migration_name DESC LIMIT 1"),
    ("alembic", "public.alembic_version", "SELECT string_agg(version_num, ',' ORDER BY version_num) FROM public.alembic_version"),
    ("django", "public.django_migrations", "SELECT app || '.' || name FROM public.django_migrations ORDER BY applied DESC, id DESC LIMIT 1"),
    ("flyway", "public.flyway_schema_history",
     "SELECT version FROM public.flyway_schema_history WHERE success AND version IS NOT NULL ORDER BY installed_rank DESC LIMIT 1"),
)


def migration_version(cur):
    """{tool: version} for every known migration history table in the database (in the
    dump's snapshot), or None when there is none."""
    found = {}
    for tool, table, sql in MIGRATION_HISTORIES:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL AND has_table_privilege(%s, 'SELECT') AS readable",
                    (table, table))
        row = cur.fetchone()
        if row and list(row.values() if isinstance(row, dict) else row)[0]:
            cur.execute(sql)
            value = cur.fetchone()
            found[tool] = list(value.values() if isinstance(value, dict) else value)[0] if value else None
    return found or None


def _dump(conn, settings, tools, req, info, backup_id, dump_key, manifest_key, started, clock):
    database = info["database"]
    snapshot_holder = {}
    globals_key = None
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        snapshot_id = None
        if req.type != "globals":
            if req.lock_wait_timeout:
                # The manifest's counts wait for locks no longer than pg_dump does.
                run_statement(cur, "the lock timeout", "SET lock_timeout = %s", ("%ds" % req.lock_wait_timeout,))
            run_statement(cur, "a consistent snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot_id = run_statement(cur, "an exported snapshot", "SELECT pg_export_snapshot() AS id")[0]["id"]

        def read_counts():
            # Exact row counts in the dump's own snapshot, read while pg_dump runs.
            snapshot_holder["snapshot"] = read_snapshot(cur, exact_counts=req.type != "schema")[0]
            snapshot_holder["migration_version"] = migration_version(cur)

        try:
            if req.format == "directory":
                sink, stages = dump_directory(tools, req, snapshot_id, dump_key, while_running=read_counts, cancel=conn.cancel)
            else:
                sink, stages = stream_into(tools, req.storages, dump_key, stream_stages(req, dump_command(req, snapshot_id)),
                                           while_running=read_counts if snapshot_id else None, cancel=conn.cancel)
                sink.keys = [dump_key]
        finally:
            if snapshot_id and not conn.closed:
                cur.execute("ROLLBACK")
    globals_part = None
    if req.include_globals:
        globals_key = dump_key.rsplit("/", 1)[0] + "/" + globals_file_name(req)
        try:
            globals_sink, globals_statuses = stream_into(tools, req.storages, globals_key, globals_stages(req))
        except BaseException:
            for storage in req.storages:  # all or nothing: the dump goes too
                storage.delete(sink.keys)
            raise
        stages = stages + globals_statuses
        globals_part = dict(file=globals_key.rsplit("/", 1)[1], size_bytes=globals_sink.size,
                            sha256=globals_sink.sha256.hexdigest())
    finished = utc_now()
    sha256 = sink.sha256.hexdigest()
    if req.format == "directory" and req.verify != "none":
        verification = verify_directory(req, tools, req.storages, dump_key, sink.files, snapshot_holder.get("snapshot"),
                                        settings, backup_id)
    else:
        verification = verify_backup(req, tools, req.storages[0], dump_key, sha256, snapshot_holder.get("snapshot"),
                                     settings=settings, backup_id=backup_id)
    if globals_part and req.verify != "none" and verification["status"] == "passed":
        globals_verification = verify_globals(req, tools, req.storages[0], globals_key, globals_part["sha256"])
        globals_part["verification"] = globals_verification
        if globals_verification["status"] == "failed":
            verification = dict(verification, status="failed", message="globals: " + globals_verification["message"])
    manifest = dict(
        format=MANIFEST_FORMAT,
        backup_id=backup_id,
        database=database,
        type=req.type,
        dump_format=req.format,
        file=os.path.basename(dump_key),
        compression=dict(method=req.compression, level=req.compression_level,
                         where="pg_dump" if req.compress_in_pg_dump else ("stream" if req.compression != "none" else None)),
        encryption=req.encryption.describe() if req.encryption else None,
        server_version=info["version"],
        client_version=tools.version("pg_dumpall" if req.type == "globals" else "pg_dump"),
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        size_bytes=sink.size,
        sha256=sha256,
        label=req.label,
        tags=req.tags,
        selection=dict(schemas=req.schemas, exclude_schemas=req.exclude_schemas, tables=req.tables,
                       exclude_tables=req.exclude_tables, exclude_table_data=req.exclude_table_data),
        snapshot=snapshot_holder.get("snapshot"),
        migration_version=snapshot_holder.get("migration_version"),
        files=getattr(sink, "files", None),
        jobs=req.jobs,
        globals=globals_part,
        verification=verification,
    )
    text = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    for storage in req.storages:
        storage.put_atomic(manifest_key, text)
    result = dict(
        changed=True,
        backup_id=backup_id,
        size_bytes=sink.size,
        sha256=sha256,
        duration_s=round(time.monotonic() - clock, 3),
        verified=verification["status"] == "passed",
        verification=verification,
        manifest=manifest,
        locations=[s.uri(dump_key) for s in req.storages],
        path=next((s.uri(dump_key) for s in req.storages if isinstance(s, LocalStorage)), None),
        s3_uri=next((s.uri(dump_key) for s in req.storages if not isinstance(s, LocalStorage)), None),
        stages=[dict(name=s["name"], returncode=s["returncode"]) for s in stages],
    )
    if verification["status"] == "failed":
        result["failed"] = True
        result["msg"] = "Backup %s was written but failed verification: %s" % (backup_id, verification["message"])
    return result


class ScriptScan:
    """Consumes the SQL script a dump restores to, in chunks: which tables have data
    (COPY lines) and whether pg_dump's completion line came at the end."""

    def __init__(self):
        self.tables = set()
        self.tail = b""
        self.carry = b""

    def __call__(self, stream):
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            text = self.carry + chunk
            start = 0
            while True:
                found = text.find(b"\nCOPY ", start)
                if found < 0:
                    break
                line_end = text.find(b"\n", found + 1)
                if line_end < 0:
                    break  # the line continues in the next chunk
                name = text[found + 6:line_end].split(b" (")[0].split(b" FROM")[0]
                self.tables.add(name.decode("utf-8", "replace").replace('"', ""))
                start = line_end
            self.carry = text[max(start, len(text) - 4096):]
            self.tail = (self.tail + chunk)[-4096:]


def scratch_database_name(backup_id):
    """A name for the verification database, unique per backup, within 63 bytes."""
    return "pgops_verify_" + hashlib.sha256(backup_id.encode("utf-8")).hexdigest()[:16]


def verify_backup(req, tools, storage, key, sha256, snapshot, settings=None, backup_id=""):
    """Read the stored backup back in one stream: its sha256 must match the one written
    and, when it can be decrypted, it is decrypted and decompressed, then either
    (list) turned into SQL (custom format: pg_restore), which must hold data for
    every table of the snapshot and end with pg_dump's completion line, or (restore)
    restored into a scratch database whose exact row counts and schema fingerprint
    must equal the manifest's; the scratch database is always dropped."""
    if req.verify == "none":
        return dict(status="skipped", method="none", message="verification was not requested")
    if req.verify == "list" and req.format == "custom" and not req.encryption and isinstance(storage, LocalStorage) \
            and (req.compression == "none" or req.compress_in_pg_dump):
        return verify_listing(req, tools, storage, key, sha256, snapshot)
    decryptable = not req.encryption or req.encryption.can_decrypt()
    restore = req.verify == "restore" and req.type == "full" and decryptable and snapshot is not None
    scratch = scratch_database_name(backup_id) if restore else None
    stages = []
    if req.encryption and decryptable:
        stages.append(req.encryption.decrypt_stage())
    if req.compression != "none" and not req.compress_in_pg_dump:
        stages.append(decompress_stage(req.compression))
    if restore and req.format == "custom":
        stages.append(["pg_restore", "--exit-on-error", "--no-owner", "--dbname=" + scratch])
    elif restore:
        stages.append(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname=" + scratch])
    elif req.format == "custom":
        stages.append(["pg_restore", "--file=-"])
    if not decryptable:
        stages = [["cat"]]  # only the checksum can be verified here
    if not restore:
        return _read_back(req, tools, storage, key, sha256, snapshot, stages, decryptable)
    return restore_and_compare(req, settings, backup_id, snapshot, lambda: _read_back(
        req, tools, storage, key, sha256, snapshot, stages, decryptable, check_script=False))


def verify_listing(req, tools, storage, key, sha256, snapshot):
    """A local custom archive read by nothing but pg_restore: the stored bytes' sha256
    against the one written (so they are exactly what pg_dump produced), then the table
    of contents pg_restore lists from the file, which must hold data for every table."""
    digest = hashlib.sha256()
    handle = storage.reader(key)
    try:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    finally:
        handle.close()
    if digest.hexdigest() != sha256:
        return dict(status="failed", method="checksum",
                    message="the stored bytes' sha256 %s differs from the one written, %s" % (digest.hexdigest(), sha256))
    try:
        toc, dummy = tools.run([["pg_restore", "--list", storage.path(key)]])
    except PgopsError as exc:
        return dict(status="failed", method="list", message="pg_restore cannot list the archive: %s" % exc)
    listed = set()
    entries = 0
    for line in toc.decode("utf-8", "replace").splitlines():
        if line and not line.startswith(";"):
            entries += 1
            match = re.search(r" TABLE DATA (\S+) (\S+) ", line)
            if match:
                listed.add("%s.%s" % (match.group(1), match.group(2)))
    missing = []
    if snapshot and req.type in ("full", "data"):
        missing = sorted(t for t, v in snapshot["tables"].items() if v["kind"] == "r" and t not in listed and _selected(req, t))
    if missing:
        return dict(status="failed", method="list", entries=entries,
                    message="the archive lists no data for %d tables: %s" % (len(missing), ", ".join(missing[:10])))
    return dict(status="passed", method="list", entries=entries, tables=len(listed),
                message="sha256 of the stored file matches and pg_restore lists %d entries, with data for %d tables"
                        % (entries, len(listed)))


def restore_and_compare(req, settings, backup_id, snapshot, run_restore):
    """Create the scratch database, let `run_restore()` fill it (it returns an outcome
    dict), compare the copy with the manifest's snapshot, always drop the database."""
    scratch = scratch_database_name(backup_id)
    admin, dummy = connect(settings, application_name="pgops.runbook backup verify")
    try:
        with admin.cursor() as cur:
            cur.execute(psycopg2.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg2.sql.Identifier(scratch)))
            cur.execute(psycopg2.sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s").format(
                psycopg2.sql.Identifier(scratch)), (snapshot["encoding"], snapshot["collate"], snapshot["ctype"]))
        try:
            outcome = run_restore()
            if outcome["status"] != "passed":
                return outcome
            restored, dummy = take_snapshot(settings.with_database(scratch), exact_counts=True)
            differences = restore_differences(req, snapshot, restored)
            if differences:
                return dict(status="failed", method="restore", differences=differences[:20],
                            message="the restored copy differs from the manifest: %s"
                                    % " ".join(d["message"] for d in differences[:5]))
            return dict(status="passed", method="restore", tables=len(restored["tables"]),
                        message="sha256 matches; restored into a scratch database, whose %d tables' exact row counts "
                                "and schema fingerprint equal the manifest's" % len(restored["tables"]))
        finally:
            with admin.cursor() as cur:
                cur.execute(psycopg2.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg2.sql.Identifier(scratch)))
    except psycopg2.Error as exc:
        return dict(status="failed", method="restore", message="the scratch database could not be used: %s"
                    % str(exc).strip().splitlines()[0])
    finally:
        admin.close()


def verify_directory(req, tools, storages, dump_key, files, snapshot, settings, backup_id):
    """A directory archive: every stored file's sha256 is checked against the one written;
    with a local copy, pg_restore then reads every file (list: to SQL, checked as for the
    other formats; restore: into a scratch database, in parallel with jobs)."""
    storage = storages[0]
    for name in sorted(files):
        digest = hashlib.sha256()
        handle = storage.reader("%s/%s" % (dump_key, name))
        try:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
        finally:
            handle.close()
        if digest.hexdigest() != files[name]["sha256"]:
            return dict(status="failed", method="checksum", message="file %s of the archive differs from what was written" % name)
    if not isinstance(storage, LocalStorage):
        return dict(status="passed", method="checksum", files=len(files),
                    message="every file's sha256 matches; pg_restore needs a local copy (dest) to read the contents")
    path = storage.path(dump_key)
    if req.verify == "restore" and req.type == "full" and snapshot is not None:
        def run_restore():
            try:
                tools.run([["pg_restore", "--exit-on-error", "--no-owner", "--jobs=%d" % req.jobs,
                            "--dbname=" + scratch_database_name(backup_id), path]])
            except PgopsError as exc:
                return dict(status="failed", method="restore", message="the restore failed: %s" % exc)
            return dict(status="passed", method="restore", message="restored")
        return restore_and_compare(req, settings, backup_id, snapshot, run_restore)
    scan = ScriptScan()
    try:
        tools.run([["pg_restore", "--file=-", path]], consume=scan)
    except PgopsError as exc:
        return dict(status="failed", method="read-back", message="pg_restore could not read the archive: %s" % exc)
    return script_outcome(req, scan, snapshot, "every file's sha256 matches; pg_restore read the whole archive")


def verify_globals(req, tools, storage, key, sha256):
    """Read the stored globals back: sha256, then decrypted and decompressed to the end of
    pg_dumpall's script."""
    decryptable = not req.encryption or req.encryption.can_decrypt()
    stages = []
    if req.encryption and decryptable:
        stages.append(req.encryption.decrypt_stage())
    if req.compression != "none":
        stages.append(decompress_stage(req.compression))
    if not decryptable or not stages:
        stages = [["cat"]]
    return _read_back(req, tools, storage, key, sha256, None, stages, decryptable)


def restore_differences(req, expected, restored):
    """What differs between the manifest's snapshot and the restored copy. With a
    selection (schemas, tables, exclusions) only the selected tables' rows are compared."""
    if not (req.schemas or req.exclude_schemas or req.tables or req.exclude_tables or req.exclude_table_data):
        return compare_snapshots(expected, restored, 0)
    differences = []
    for table, facts in sorted(expected["tables"].items()):
        if facts["kind"] != "r" or not _selected(req, table):
            continue
        got = restored["tables"].get(table, {}).get("rows")
        if got != facts["rows"]:
            differences.append(dict(kind="rows_changed", object=table, before=facts["rows"], after=got,
                                    message="Table %s has %s rows restored, %s in the manifest." % (table, got, facts["rows"])))
    return differences


def read_stored(tools, storage, key, stages, consume=None, dbname=None, send=True):
    """Stream the object stored under `key` through the client-tool pipeline `stages`
    (none: `consume` reads the bytes directly), hashing the stored bytes on the way.
    With send=False only the hash is taken (the stages see an empty input). A storage
    read failure (a cut S3 connection) is raised as itself, not as the pipeline's
    error it causes. Returns (sha256 hex, consume's result or the output)."""
    digest = hashlib.sha256()
    source = storage.reader(key)
    failure = []

    def feed(write_fd):
        pipe = os.fdopen(write_fd, "wb")
        try:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                digest.update(chunk)
                if pipe is not None and send:
                    try:
                        pipe.write(chunk)
                    except BrokenPipeError:
                        pipe = None  # the reader stopped early: its exit status says why
        except Exception as exc:  # raised by the caller once the pipeline has ended
            failure.append(exc)
        finally:
            source.close()
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass

    read_fd, write_fd = os.pipe()
    feeder = threading.Thread(target=feed, args=(write_fd,))
    feeder.start()
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            if stages:
                output, dummy = tools.run(stages, consume=consume, stdin=pipe, dbname=dbname)
            else:
                output = consume(pipe)
    except BaseException:
        feeder.join()
        if failure:
            raise failure[0]
        raise
    feeder.join()
    if failure:
        raise failure[0]
    return digest.hexdigest(), output


def _read_back(req, tools, storage, key, sha256, snapshot, stages, decryptable, check_script=True):
    """Stream the stored bytes through `stages`, hashing them on the way."""
    scan = ScriptScan()
    try:
        stored_sha256, dummy = read_stored(tools, storage, key, stages, consume=scan, send=decryptable)
    except PgopsError as exc:
        return dict(status="failed", method="read-back", message="reading the stored archive back failed: %s" % exc)
    if stored_sha256 != sha256:
        return dict(status="failed", method="checksum",
                    message="the stored bytes' sha256 %s differs from the one written, %s" % (stored_sha256, sha256))
    if not decryptable:
        return dict(status="passed", method="checksum",
                    message="sha256 of the stored bytes matches; the contents were not read (no decryption key here)")
    if not check_script:
        return dict(status="passed", method="restore", message="sha256 matches and the restore succeeded")
    return script_outcome(req, scan, snapshot, "sha256 matches; the whole dump was read back, decompressed%s"
                          % (" and restored to SQL" if req.format == "custom" else ""))


def script_outcome(req, scan, snapshot, what):
    """Judge the SQL a dump restored to: pg_dump's completion line, and data for every selected table."""
    if PLAIN_TRAILER not in scan.tail:
        return dict(status="failed", method="read-back", message="the dump does not end with pg_dump's completion line")
    missing = []
    if snapshot and req.type in ("full", "data"):
        missing = sorted(t for t, v in snapshot["tables"].items()
                         if v["kind"] == "r" and t not in scan.tables and _selected(req, t))
    if missing:
        return dict(status="failed", method="read-back", tables=len(scan.tables),
                    message="the dump has no data for %d tables: %s" % (len(missing), ", ".join(missing[:10])))
    return dict(status="passed", method="read-back", tables=len(scan.tables),
                message="%s and has data for %d tables" % (what, len(scan.tables)))


def _selected(req, table):
    """Whether `table` (schema.name) was meant to be in the dump, given the selection options."""
    schema, dummy, name = table.partition(".")
    if req.schemas and schema not in req.schemas:
        return False
    if schema in req.exclude_schemas:
        return False
    patterns = [(_glob_regex(p)) for p in req.tables]
    if patterns and not any(re.match(p, table) or re.match(p, name) for p in patterns):
        return False
    if any(re.match(_glob_regex(p), table) or re.match(_glob_regex(p), name) for p in req.exclude_tables + req.exclude_table_data):
        return False
    return True
