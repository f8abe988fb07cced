# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A safe restore: checked before anything is touched, restored beside the target,
validated, and only then put in place.

1. check: the manifest, the server and client versions, the target's state, and a
   read of the stored backup (sha256, decryption, decompression, pg_restore's table
   of contents) -- a corrupt byte or a wrong passphrase stops here, before any
   database exists;
2. restore into a new database <target>__restoring_<id> (pg_restore with jobs, or
   psql with ON_ERROR_STOP for plain SQL), reading the stored bytes again and
   checking their sha256 once more;
3. validate: exact row counts and the schema fingerprint against the manifest's
   snapshot; ANALYZE;
4. put in place, in one short step: rename it to the target (mode new), or (mode
   replace) close the target to new sessions, end its sessions, and rename the
   target to <target>__pre_restore_<time> and the new database to the target in one
   transaction. Anything failing before that leaves the target as it was; the
   half-restored database is dropped (or named for cleanup when it cannot be).

Restores of one target are serialised by an advisory lock.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
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

from ansible_collections.pgops.runbook.plugins.module_utils.backup.engine import (
    CHUNK, BackupRequest, read_stored, run_backup,
)
from ansible_collections.pgops.runbook.plugins.module_utils.backup.stages import COMPRESSORS, decompress_stage
from ansible_collections.pgops.runbook.plugins.module_utils.client_tools import ClientTools, PipelineError
from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect, explain_query_error
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.restore.globals_sql import roles_script
from ansible_collections.pgops.runbook.plugins.module_utils.snapshot import compare_snapshots, take_snapshot
from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage

# Advisory lock class for restores (ASCII "pgor"); the second key is the target database.
LOCK_CLASS = 0x70676F72
RESTORING = "__restoring_"
PRE_RESTORE = "__pre_restore_"
MAX_NAME = 63
# GUCs whose value is a list: ALTER DATABASE ... SET takes them as separate literals.
LIST_SETTINGS = ("search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries")


class RestoreRequest:
    """Validated restore parameters (the module's options, minus connection ones)."""

    def __init__(self, entry, target_db=None, mode="new", confirm=None, drop_previous=False, pre_restore_backup=False,
                 backup_storages=None, jobs=1, single_transaction=False, no_owner=False, role=None, schemas=None,
                 tables=None, restore_globals=False, owner=None, tablespace=None, validate=True, analyze=True,
                 encryption=None, work_dir=None, lock_wait=600, disconnect_timeout=30, client_bindir=None,
                 maintenance_db="postgres"):
        manifest = entry.manifest
        self.entry = entry
        self.manifest = manifest
        self.type = manifest["type"]
        self.format = manifest["dump_format"]
        if self.type == "globals":
            if not restore_globals:
                raise PgopsError("Backup %s holds roles and tablespaces only (type globals): set option globals to "
                                 "restore its roles." % entry.backup_id)
            if target_db:
                raise PgopsError("Option target_db makes no sense with a globals backup, which holds no database.")
        else:
            if not target_db:
                raise PgopsError("Option target_db is required to restore backup %s." % entry.backup_id)
            if len(target_db.encode("utf-8")) > MAX_NAME:
                raise PgopsError("Option target_db must be at most 63 bytes, got %r." % target_db)
            if self.type == "data":
                raise PgopsError("Backup %s is data only (type data): it restores into an existing schema, which "
                                 "this module does not do; restore a full backup." % entry.backup_id)
        if mode == "replace" and confirm != target_db:
            raise PgopsError("Option confirm must equal target_db (%s) to replace it; got %s." % (
                target_db, "nothing" if confirm is None else repr(confirm)))
        if mode != "replace" and (drop_previous or pre_restore_backup):
            raise PgopsError("Options drop_previous and pre_restore_backup go with mode replace only.")
        if jobs < 1:
            raise PgopsError("Option jobs must be 1 or more, got %s." % jobs)
        if self.format == "plain":
            bad = [name for name, value in (("jobs", jobs > 1), ("no_owner", no_owner), ("role", role),
                                            ("schemas", schemas), ("tables", tables)) if value]
            if bad:
                raise PgopsError("Option %s is not available for a plain-format backup, which psql replays as it is."
                                 % bad[0])
        if jobs > 1 and single_transaction:
            raise PgopsError("Options jobs and single_transaction exclude each other: a parallel restore uses one "
                             "transaction per job.")
        if restore_globals and self.type != "globals" and not manifest.get("globals"):
            raise PgopsError("Option globals: backup %s was made without include_globals, so it holds no roles."
                             % entry.backup_id)
        needed = manifest.get("encryption")
        if needed:
            if encryption is None:
                raise PgopsError("Option encryption: backup %s is encrypted (%s); give encryption.%s." % (
                    entry.backup_id, needed.get("method"),
                    "private_key" if needed.get("method") == "gpg-public-key" else "passphrase"))
            if needed.get("method") == "gpg-public-key" and not encryption.private_key:
                raise PgopsError("Option encryption.private_key is required: backup %s is encrypted to the key %s."
                                 % (entry.backup_id, needed.get("recipient_fingerprint")))
            if needed.get("method") == "gpg-passphrase" and encryption.passphrase is None:
                raise PgopsError("Option encryption.passphrase is required: backup %s is encrypted with a passphrase."
                                 % entry.backup_id)
        if work_dir is not None and not os.path.isdir(work_dir):
            raise PgopsError("Option work_dir: %s does not exist." % work_dir)
        self.target_db = target_db
        self.mode = mode
        self.drop_previous = drop_previous
        self.pre_restore_backup = pre_restore_backup
        self.backup_storages = backup_storages or []
        if pre_restore_backup and not self.backup_storages:
            raise PgopsError("Option pre_restore_backup needs a place for the backup: option dest or s3.")
        self.jobs = jobs
        self.single_transaction = single_transaction
        self.no_owner = no_owner
        self.role = role
        self.schemas = schemas or []
        self.tables = tables or []
        self.restore_globals = restore_globals
        self.owner = owner
        self.tablespace = tablespace
        self.validate = validate
        self.analyze = analyze
        self.encryption = encryption
        self.work_dir = work_dir
        self.lock_wait = lock_wait
        self.disconnect_timeout = disconnect_timeout
        self.client_bindir = client_bindir
        self.maintenance_db = maintenance_db

    @property
    def subset(self):
        return bool(self.schemas or self.tables)

    def stream_stages(self):
        """Decrypt and decompress, as the manifest says the stored bytes were made."""
        stages = []
        if self.manifest.get("encryption"):
            stages.append(self.encryption.decrypt_stage())
        method = (self.manifest.get("compression") or {}).get("method") or "none"
        if (self.manifest.get("compression") or {}).get("where") == "stream" and method in COMPRESSORS:
            stages.append(decompress_stage(method))
        return stages

    @property
    def readable_in_place(self):
        """pg_restore can read the stored archive as it is (local, not encrypted or stream-compressed)."""
        return isinstance(self.entry.storage, LocalStorage) and self.format in ("custom", "directory") \
            and not self.stream_stages()


def _major(version_text):
    match = re.match(r"\s*(\d+)(?:\.(\d+))?", str(version_text))
    if not match:
        return None
    major = int(match.group(1))
    return float("%d.%s" % (major, match.group(2))) if major < 10 and match.group(2) else major


def _identifier(name):
    return psycopg2.sql.Identifier(name)


def _truncate(name, room):
    """`name` cut to `room` bytes of UTF-8 without splitting a character."""
    data = name.encode("utf-8")[:room]
    return data.decode("utf-8", "ignore")


def restoring_name(target, backup_id):
    return _truncate(target, MAX_NAME - len(RESTORING) - 8) + RESTORING + hashlib.sha256(backup_id.encode("utf-8")).hexdigest()[:8]


def previous_name(target, when):
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return _truncate(target, MAX_NAME - len(PRE_RESTORE) - len(stamp)) + PRE_RESTORE + stamp


class Restore:
    """One restore run; `run()` returns the result dict or raises PgopsError."""

    def __init__(self, settings, req, check_mode=False, diff=False):
        self.settings = settings
        self.req = req
        self.check_mode = check_mode
        self.diff = diff
        self.admin = None
        self.tools = None
        self.timings = {}
        self.result = dict(changed=False, backup_id=req.entry.backup_id, source=req.entry.storage.uri(req.entry.dump_key),
                           target_db=req.target_db, previous_db=None, mode=req.mode)

    # -- helpers -------------------------------------------------------------------------

    def _connect_admin(self, attempts=1):
        """A session on the maintenance database; retried (a server restarting) when attempts > 1."""
        for attempt in range(attempts):
            try:
                conn, dummy = connect(self.settings.with_database(self.req.maintenance_db),
                                      application_name="pgops.runbook restore", autocommit=True)
                return conn
            except PgopsError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)
        return None

    def _query(self, sql, params=None, what="the server"):
        try:
            with self.admin.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        except psycopg2.Error as exc:
            raise PgopsError(explain_query_error(exc, what))

    def _database(self, name):
        rows = self._query("SELECT d.datname, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, "
                           "d.datctype, d.datallowconn, d.datconnlimit, d.datacl::text[], d.oid, "
                           "shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = %s", (name,),
                           what="database %s" % name)
        if not rows:
            return None
        keys = ("name", "owner", "encoding", "collate", "ctype", "allow_connections", "connection_limit", "acl", "oid", "comment")
        return dict(zip(keys, rows[0]))

    def _timed(self, name, function, *args):
        started = time.monotonic()
        try:
            return function(*args)
        finally:
            self.timings[name] = round(time.monotonic() - started, 3)

    # -- the run -------------------------------------------------------------------------

    def run(self):
        clock = time.monotonic()
        req = self.req
        self.admin = self._connect_admin()
        try:
            server = self._query("SELECT current_setting('server_version_num')::int")[0][0]
            self._check_versions(server)
            if req.type == "globals":
                return self._globals_only(clock)
            target = self._database(req.target_db)
            if req.mode == "new" and target is not None:
                raise PgopsError("Option target_db: database %s already exists; mode new restores into a new database "
                                 "only (use mode replace with confirm to replace it)." % req.target_db)
            if req.mode == "replace" and target is None:
                raise PgopsError("Option target_db: database %s does not exist, so there is nothing to replace "
                                 "(use mode new)." % req.target_db)
            self._take_lock()
            self.result["discarded_restoring"] = self._discard_leftovers()
            self.restoring = restoring_name(req.target_db, req.entry.backup_id)
            self.result["restoring_db"] = self.restoring
            spool = None
            try:
                try:
                    spool = self._timed("check_s", self._check_backup)
                except PipelineError as exc:
                    raise PgopsError("Backup %s cannot be read: %s; nothing was restored." % (req.entry.backup_id, exc),
                                     details=exc.details)
                if self.check_mode:
                    return self._plan(target, clock)
                if req.pre_restore_backup:
                    self.result["pre_restore_backup"] = self._timed("pre_restore_backup_s", self._backup_target)
                roles = self._restore_globals() if req.restore_globals else None
                if roles is not None:
                    self.result["roles"] = roles
                self._create_restoring(target)
                try:
                    self._timed("restore_s", self._restore, spool)
                    if req.validate:
                        self._timed("validate_s", self._validate)
                    if self.diff:
                        self.result["diff"] = self._diff(target)
                    if req.analyze:
                        self._timed("analyze_s", self._analyze)
                    self._timed("swap_s", self._put_in_place, target)
                except BaseException as exc:
                    self._abandon(exc)
                    raise
            finally:
                if spool:
                    shutil.rmtree(spool, ignore_errors=True)
            if req.drop_previous and self.result["previous_db"]:
                self._query(psycopg2.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(_identifier(self.result["previous_db"])))
                self.result["previous_dropped"] = True
            self.result.update(changed=True, duration_s=round(time.monotonic() - clock, 3), timings=self.timings)
            self.result["msg"] = self._summary()
            return self.result
        finally:
            if self.admin is not None and not self.admin.closed:
                self.admin.close()

    def _check_versions(self, server_num):
        req = self.req
        server_major = server_num // 10000
        backup_major = _major(req.manifest["server_version"])
        if backup_major is None or backup_major > server_major:
            raise PgopsError("Backup %s comes from PostgreSQL %s, newer than the target server (%d): restore it on a "
                             "server of version %s or later."
                             % (req.entry.backup_id, req.manifest["server_version"], server_major, backup_major))
        self.tools = ClientTools(self.settings, server_major, req.client_bindir)
        tool = "pg_restore" if req.format in ("custom", "directory") else "psql"
        self.tools.path(tool)
        if req.restore_globals or req.type == "globals":
            self.tools.path("psql")
        archive_client = req.manifest.get("client_version")
        if tool == "pg_restore" and archive_client and _major(archive_client) > self.tools.version("pg_restore"):
            raise PgopsError("Backup %s was written by pg_dump %s; pg_restore %s cannot read it (option client_bindir)."
                             % (req.entry.backup_id, archive_client, self.tools.version("pg_restore")))

    def _take_lock(self):
        req = self.req
        try:
            with self.admin.cursor() as cur:
                cur.execute("SET lock_timeout = %s", ("%ds" % req.lock_wait,))
                cur.execute("SELECT pg_advisory_lock(%s::int, hashtext(%s))", (LOCK_CLASS, req.target_db))
                cur.execute("RESET lock_timeout")
        except psycopg2.Error as exc:
            if getattr(exc, "pgcode", None) == "55P03":
                raise PgopsError("Another restore into %s is running; gave up waiting after %d s (option lock_wait)."
                                 % (req.target_db, req.lock_wait))
            raise PgopsError(explain_query_error(exc, "the restore lock"))

    def _discard_leftovers(self):
        """Under the lock: databases <target>__restoring_* left by a restore that died (killed,
        server restarted) are ours; they are dropped."""
        prefix = _truncate(self.req.target_db, MAX_NAME - len(RESTORING) - 8) + RESTORING
        rows = self._query("SELECT datname FROM pg_database WHERE left(datname, %s) = %s AND length(datname) = %s",
                           (len(prefix), prefix, len(prefix) + 8))
        for (name,) in rows:
            self._query(psycopg2.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(_identifier(name)), what="database %s" % name)
        return [name for (name,) in rows]

    # -- 1. check ------------------------------------------------------------------------

    def _check_backup(self):
        """Read the stored backup once before anything is created: sha256, decryption,
        decompression and pg_restore's table of contents. Returns a spool directory
        when the restore will read a local copy made in this pass (jobs > 1 or a
        directory archive from S3), else None."""
        req = self.req
        entry = req.entry
        spool = None
        if req.format == "directory":
            spool = None if isinstance(entry.storage, LocalStorage) else self._spool_directory()
            self._check_directory(spool)
            return spool
        stages = req.stream_stages()
        if req.jobs > 1 and not req.readable_in_place and not self.check_mode:
            spool = tempfile.mkdtemp(prefix="pgops-restore-", dir=req.work_dir)
            os.chmod(spool, 0o700)
            path = os.path.join(spool, "archive")
            try:
                with open(path, "wb") as handle:
                    sha256, dummy = read_stored(self.tools, entry.storage, entry.dump_key, stages,
                                                consume=lambda stream: _copy(stream, handle, path))
                self._check_sha256(sha256)
                self._list(path)
            except BaseException:
                shutil.rmtree(spool, ignore_errors=True)
                raise
            self.result["path"] = "spooled"
            return spool
        if req.format == "custom":
            if req.readable_in_place:
                sha256, dummy = read_stored(self.tools, entry.storage, entry.dump_key, [], consume=_drain)
                self._check_sha256(sha256)
                self._list(entry.storage.path(entry.dump_key))
                self.result["path"] = "direct"
            else:
                sha256, listing = read_stored(self.tools, entry.storage, entry.dump_key, stages, consume=self._list_stream)
                self._check_sha256(sha256)
                if "error" in listing:  # raised only now: a failing gpg or decompressor upstream is the cause to name
                    raise PgopsError("Backup %s cannot be read by pg_restore: %s; nothing was restored."
                                     % (entry.backup_id, listing["error"]))
                self._check_toc(listing["toc"])
                self.result["path"] = "streamed"
        else:
            sha256, tail = read_stored(self.tools, entry.storage, entry.dump_key, stages, consume=_drain_keep_tail)
            self._check_sha256(sha256)
            if b" dump complete\n" not in tail:
                raise PgopsError("Backup %s does not end with pg_dump's completion line: it is truncated; nothing was "
                                 "restored." % entry.backup_id)
            self.result["path"] = "streamed"
        return spool

    def _check_sha256(self, sha256, what=None):
        expected = self.req.manifest["sha256"] if what is None else what[1]
        if sha256 != expected:
            raise PgopsError("Backup %s is damaged: the stored bytes' sha256 %s differs from the manifest's %s%s; "
                             "nothing was restored." % (self.req.entry.backup_id, sha256, expected,
                                                        " (file %s)" % what[0] if what else ""))

    def _list(self, path):
        try:
            toc, dummy = self.tools.run([["pg_restore", "--list", path]])
        except PgopsError as exc:
            raise PgopsError("Backup %s cannot be read by pg_restore: %s; nothing was restored." % (self.req.entry.backup_id, exc))
        self._check_toc(toc)

    def _list_stream(self, stream):
        """pg_restore --list of a custom archive arriving on `stream` ({toc} or {error}). pg_restore stops
        reading after the table of contents; the rest is read to the end anyway, so
        decryption (and GPG's integrity check) and decompression run over every byte."""
        read_fd, write_fd = os.pipe()
        outcome = {}

        def lister():
            with os.fdopen(read_fd, "rb") as pipe:
                try:
                    outcome["toc"], dummy = self.tools.run([["pg_restore", "--list"]], stdin=pipe)
                except PgopsError as exc:
                    outcome["error"] = exc

        worker = threading.Thread(target=lister)
        worker.start()
        pipe = os.fdopen(write_fd, "wb")
        try:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                if pipe is not None:
                    try:
                        pipe.write(chunk)
                    except BrokenPipeError:
                        pipe = None
        finally:
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
            worker.join()
        return outcome

    def _check_toc(self, toc):
        entries = [line for line in toc.decode("utf-8", "replace").splitlines() if line and not line.startswith(";")]
        if not entries:
            raise PgopsError("Backup %s lists no objects; nothing was restored." % self.req.entry.backup_id)
        self.result["archive_entries"] = len(entries)

    def _spool_directory(self):
        spool = tempfile.mkdtemp(prefix="pgops-restore-", dir=self.req.work_dir)
        os.chmod(spool, 0o700)
        self.result["path"] = "spooled"
        return spool

    def _check_directory(self, spool):
        """Every file of a directory archive against the manifest's per-file sha256 (copied into
        `spool` on the way when the archive is in S3), then pg_restore's table of contents."""
        entry = self.req.entry
        files = entry.manifest.get("files") or {}
        target = os.path.join(spool, "archive") if spool else entry.storage.path(entry.dump_key)
        if spool:
            os.mkdir(target, 0o700)
        for name in sorted(files):
            key = "%s/%s" % (entry.dump_key, name)
            if spool:
                path = os.path.join(target, name)
                with open(path, "wb") as handle:
                    sha256, dummy = read_stored(self.tools, entry.storage, key, [], consume=lambda s: _copy(s, handle, path))
            else:
                sha256, dummy = read_stored(self.tools, entry.storage, key, [], consume=_drain)
            self._check_sha256(sha256, (name, files[name]["sha256"]))
        if not spool:
            self.result["path"] = "direct"
        self._list(target)
        self.archive_path = target

    # -- 2. restore ----------------------------------------------------------------------

    def _backup_target(self):
        req = self.req
        backup = run_backup(self.settings.with_database(req.target_db),
                            BackupRequest(req.backup_storages, label="pre-restore", client_bindir=req.client_bindir))
        if backup.get("failed"):
            raise PgopsError("The pre-restore backup of %s failed, so nothing was restored: %s" % (req.target_db, backup["msg"]))
        return dict(backup_id=backup["backup_id"], locations=backup["locations"], verified=backup["verified"])

    def _restore_globals(self):
        """Roles from the globals file (a globals backup, or the one beside a full backup):
        created when missing, existing ones left alone; one transaction."""
        req = self.req
        entry = req.entry
        if req.type == "globals":
            key, sha256 = entry.dump_key, req.manifest["sha256"]
        else:
            key, sha256 = entry.key(req.manifest["globals"]["file"]), req.manifest["globals"]["sha256"]
        stages = req.stream_stages() if req.type == "globals" else self._globals_stages()
        got, script = read_stored(self.tools, entry.storage, key, stages or [["cat"]])
        self._check_sha256(got, (key.rsplit("/", 1)[-1], sha256))
        roles = [name for (name,) in self._query("SELECT rolname FROM pg_roles")]
        databases = [name for (name,) in self._query("SELECT datname FROM pg_database")]
        sql, report = roles_script(script.decode("utf-8"), roles, databases)
        if report["created"] and not self.check_mode:
            read_fd, write_fd = os.pipe()
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(sql.encode("utf-8"))
            with os.fdopen(read_fd, "rb") as pipe:
                self.tools.run([["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]], stdin=pipe,
                               dbname=req.maintenance_db)
            self.result["changed"] = True
        return report

    def _globals_stages(self):
        req = self.req
        stages = []
        if req.manifest.get("encryption"):
            stages.append(req.encryption.decrypt_stage())
        method = (req.manifest.get("compression") or {}).get("method") or "none"
        if method in COMPRESSORS:  # the globals file goes through the stream's compression
            stages.append(decompress_stage(method))
        return stages

    def _create_restoring(self, target):
        req = self.req
        snapshot = req.manifest.get("snapshot") or {}
        owner = req.owner or (target or {}).get("owner")
        parts = [psycopg2.sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(_identifier(self.restoring))]
        params = []
        for keyword, value in (("ENCODING", snapshot.get("encoding")), ("LC_COLLATE", snapshot.get("collate")),
                               ("LC_CTYPE", snapshot.get("ctype"))):
            if value:
                parts.append(psycopg2.sql.SQL(" %s %%s" % keyword))
                params.append(value)
        if owner:
            parts.append(psycopg2.sql.SQL(" OWNER {}").format(_identifier(owner)))
        if req.tablespace:
            parts.append(psycopg2.sql.SQL(" TABLESPACE {}").format(_identifier(req.tablespace)))
        self._query(psycopg2.sql.Composed(parts), params, what="creating database %s" % self.restoring)
        self.result["changed"] = True
        if target is not None:
            self._copy_database_properties(target)

    def _copy_database_properties(self, target):
        """What pg_dump keeps outside the archive (without --create): the target's own
        grants, per-database settings, connection limit and comment."""
        new = _identifier(self.restoring)
        if target["acl"]:
            self._query(psycopg2.sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(new))
            rows = self._query("SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, "
                               "a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a "
                               "WHERE d.datname = %s", (target["name"],))
            for grantee, privilege, grantable in rows:
                self._query(psycopg2.sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    psycopg2.sql.SQL(privilege), new, _identifier(grantee) if grantee else psycopg2.sql.SQL("PUBLIC"),
                    psycopg2.sql.SQL(" WITH GRANT OPTION" if grantable else "")))
        rows = self._query("SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, s.setconfig "
                           "FROM pg_db_role_setting s WHERE s.setdatabase = %s", (target["oid"],))
        for role, settings in rows:
            for setting in settings or []:
                name, dummy, value = setting.partition("=")
                values = [v.strip() for v in value.split(",")] if name in LIST_SETTINGS else [value]
                prefix = psycopg2.sql.SQL("ALTER ROLE {} IN DATABASE {}").format(_identifier(role), new) if role \
                    else psycopg2.sql.SQL("ALTER DATABASE {}").format(new)
                self._query(psycopg2.sql.SQL("{} SET {} TO {}").format(
                    prefix, _identifier(name), psycopg2.sql.SQL(", ").join(psycopg2.sql.Literal(v) for v in values)))
        if target["connection_limit"] != -1:
            self._query(psycopg2.sql.SQL("ALTER DATABASE {} CONNECTION LIMIT %s").format(new), (target["connection_limit"],))
        if target["comment"]:
            self._query(psycopg2.sql.SQL("COMMENT ON DATABASE {} IS %s").format(new), (target["comment"],))

    def _restore_options(self):
        req = self.req
        args = ["pg_restore", "--exit-on-error", "--dbname=" + self.restoring]
        if req.no_owner:
            args.append("--no-owner")
        if req.role:
            args.append("--role=" + req.role)
        if req.jobs > 1:
            args.append("--jobs=%d" % req.jobs)
        elif req.single_transaction:
            args.append("--single-transaction")
        args.extend("--schema=" + schema for schema in req.schemas)
        args.extend("--table=" + table for table in req.tables)
        return args

    def _restore(self, spool):
        req = self.req
        entry = req.entry
        if req.format == "directory":
            self.tools.run([self._restore_options() + [self.archive_path]])
        elif spool:
            self.tools.run([self._restore_options() + [os.path.join(spool, "archive")]])
        elif req.readable_in_place and req.format == "custom":
            # pg_restore reads the file itself (and seeks in it for jobs); its sha256 was checked just before.
            self.tools.run([self._restore_options() + [entry.storage.path(entry.dump_key)]])
        else:
            last = self._restore_options() if req.format == "custom" else \
                ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname=" + self.restoring] + \
                (["--single-transaction"] if req.single_transaction else [])
            sha256, dummy = read_stored(self.tools, entry.storage, entry.dump_key, req.stream_stages() + [last])
            self._check_sha256(sha256)

    # -- 3. validate ---------------------------------------------------------------------

    def _validate(self):
        req = self.req
        expected = req.manifest.get("snapshot")
        if not expected:
            self.result["validation"] = dict(status="skipped", message="the manifest holds no snapshot to compare with")
            return
        restored, dummy = take_snapshot(self.settings.with_database(self.restoring), exact_counts=True)
        tables = {}
        for name, facts in sorted(expected["tables"].items()):
            if facts.get("kind") == "r" and self._selected(name):
                tables[name] = dict(expected=facts.get("rows"), restored=restored["tables"].get(name, {}).get("rows"))
        if req.subset:
            differences = [dict(kind="rows_changed", object=name, before=t["expected"], after=t["restored"],
                                message="Table %s has %s rows restored, %s in the manifest." % (name, t["restored"], t["expected"]))
                           for name, t in tables.items() if t["expected"] != t["restored"]]
        elif req.type == "schema":
            differences = [d for d in compare_snapshots(expected, restored) if d["kind"] != "rows_changed"]
        else:
            differences = compare_snapshots(expected, restored)
        if req.type == "schema":
            tables = {}
        self.result["validation"] = dict(
            status="failed" if differences else "passed", tables=tables, differences=differences[:50],
            fingerprint=None if req.subset else dict(expected=expected["fingerprint"], restored=restored["fingerprint"]))
        if self.diff:
            self.result["restored_snapshot"] = restored
        if differences:
            raise PgopsError("The restored copy of backup %s differs from its manifest: %s" % (
                req.entry.backup_id, " ".join(d["message"] for d in differences[:5])), details=dict(validation=self.result["validation"]))

    def _diff(self, target, restored=None):
        """Tables and row counts before (the target, estimates) and after (the restored copy)."""
        before = ""
        if target is not None:
            before = render_tables(take_snapshot(self.settings.with_database(self.req.target_db))[0])
        if restored is None:
            restored = self.result.pop("restored_snapshot", None) or \
                take_snapshot(self.settings.with_database(self.restoring), exact_counts=True)[0]
        return dict(before=before, after=render_tables(restored),
                    before_header="%s (now)" % self.req.target_db if target else "%s (absent)" % self.req.target_db,
                    after_header="%s (restored from %s)" % (self.req.target_db, self.req.entry.backup_id))

    def _selected(self, table):
        schema, dummy, name = table.partition(".")
        if self.req.schemas and schema not in self.req.schemas:
            return False
        return not self.req.tables or name in self.req.tables or table in self.req.tables

    def _analyze(self):
        conn, dummy = connect(self.settings.with_database(self.restoring), application_name="pgops.runbook restore analyze")
        try:
            with conn.cursor() as cur:
                cur.execute("ANALYZE")
        except psycopg2.Error as exc:
            raise PgopsError(explain_query_error(exc, "ANALYZE of the restored database"))
        finally:
            conn.close()

    # -- 4. put in place -----------------------------------------------------------------

    def _put_in_place(self, target):
        req = self.req
        restoring = _identifier(self.restoring)
        wanted = _identifier(req.target_db)
        if target is None:
            self._query(psycopg2.sql.SQL("ALTER DATABASE {} RENAME TO {}").format(restoring, wanted),
                        what="renaming %s to %s" % (self.restoring, req.target_db))
            return
        previous = previous_name(req.target_db, datetime.datetime.now(datetime.timezone.utc))
        self._query(psycopg2.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(wanted))
        try:
            self._end_sessions(req.target_db)
            with self.admin.cursor() as cur:
                cur.execute("BEGIN")
                try:
                    cur.execute(psycopg2.sql.SQL("ALTER DATABASE {} RENAME TO {}").format(wanted, _identifier(previous)))
                    cur.execute(psycopg2.sql.SQL("ALTER DATABASE {} RENAME TO {}").format(restoring, wanted))
                    cur.execute(psycopg2.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                        _identifier(previous), psycopg2.sql.SQL("true" if target["allow_connections"] else "false")))
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
        except psycopg2.Error as exc:
            self._reopen(req.target_db, target)
            raise PgopsError(explain_query_error(exc, "the swap of %s and %s" % (req.target_db, self.restoring)))
        except BaseException:
            self._reopen(req.target_db, target)
            raise
        self.result["previous_db"] = previous

    def _end_sessions(self, name):
        """Terminate every session on database `name` (closed to new ones) and wait until they are gone."""
        deadline = time.monotonic() + self.req.disconnect_timeout
        while True:
            rows = self._query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            if not rows:
                return
            self.result["sessions_terminated"] = self.result.get("sessions_terminated", 0) + len(rows)
            if time.monotonic() > deadline:
                raise PgopsError("Sessions on %s did not end within %d s (option disconnect_timeout); it was left in "
                                 "place." % (name, self.req.disconnect_timeout))
            time.sleep(0.2)

    def _reopen(self, name, target):
        try:
            self._query(psycopg2.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                _identifier(name), psycopg2.sql.SQL("true" if target["allow_connections"] else "false")))
        except PgopsError:
            pass

    def _abandon(self, exc):
        """After a failure before the swap: drop the half-restored database (reconnecting
        if the server went away) and say so in the error."""
        try:
            if self.admin is None or self.admin.closed or self.admin.get_transaction_status() == 4:
                self.admin = self._connect_admin(attempts=30)
            self._query(psycopg2.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_identifier(self.restoring)))
            note = "the half-restored database %s was dropped" % self.restoring
        except Exception as cleanup:  # the original error matters more; name what is left
            note = "the half-restored database %s could not be dropped (%s): drop it, or a later restore of %s will" % (
                self.restoring, str(cleanup).strip().splitlines()[0] if str(cleanup).strip() else type(cleanup).__name__,
                self.req.target_db)
        if isinstance(exc, PgopsError):
            untouched = "database %s was not touched" % self.req.target_db if self.req.mode == "replace" \
                else "database %s was not created" % self.req.target_db
            exc.message = "%s; %s; %s." % (exc.message.rstrip("."), untouched, note)
            exc.details.setdefault("restoring_db", self.restoring)

    # -- results -------------------------------------------------------------------------

    def _plan(self, target, clock):
        req = self.req
        what = "replace %s (keeping it as %s__pre_restore_<time>)" % (req.target_db, req.target_db) if target \
            else "create %s" % req.target_db
        if self.diff and req.manifest.get("snapshot"):
            self.result["diff"] = self._diff(target, req.manifest["snapshot"])
        self.result.update(changed=True, duration_s=round(time.monotonic() - clock, 3), timings=self.timings,
                           msg="Backup %s is intact (sha256 matches, %s); would restore it into %s and %s."
                               % (req.entry.backup_id, "readable" if req.format != "plain" else "complete", self.restoring, what))
        return self.result

    def _globals_only(self, clock):
        report = self._restore_globals()
        self.result.update(roles=report, changed=bool(report["created"]), duration_s=round(time.monotonic() - clock, 3),
                           msg="%s %d roles (%s); %d existing roles left alone." % (
                               "Would create" if self.check_mode else "Created", len(report["created"]),
                               ", ".join(report["created"]) or "none", len(report["left_alone"])))
        return self.result

    def _summary(self):
        r = self.result
        text = "Restored backup %s into %s in %.1f s" % (r["backup_id"], r["target_db"], r["duration_s"])
        validation = r.get("validation")
        if validation:
            text += "; validation %s" % validation["status"]
        if r["previous_db"]:
            text += "; the previous database is %s" % r["previous_db"]
            if r.get("previous_dropped"):
                text += " (dropped)"
        return text + "."


def render_tables(snapshot):
    """One line per table: name and row count (for --diff)."""
    return "".join("%s rows=%s\n" % (name, facts.get("rows")) for name, facts in sorted(snapshot["tables"].items()))


def _drain(stream):
    for dummy in iter(lambda: stream.read(CHUNK), b""):
        pass


def _drain_keep_tail(stream):
    """Read a stream to its end; returns its last 64 KiB (where pg_dump's completion line is)."""
    tail = b""
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        tail = (tail + chunk)[-65536:]
    return tail


def _copy(stream, handle, path):
    try:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            handle.write(chunk)
        handle.flush()
    except OSError as exc:
        raise PgopsError("Option work_dir: cannot write the local copy %s: %s." % (path, exc.strerror or exc))
