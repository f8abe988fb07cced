# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backup a restore reads: `src` (a local path or s3:// URI of a backup made by
the backup module) or `backup_id` / `latest` looked up in the catalog of `dest` / `s3`.
Either way the result is a BackupEntry whose manifest has been read and checked
for the facts the restore relies on."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import posixpath

from ansible_collections.pgops.runbook.plugins.module_utils.backup.catalog import MANIFEST_NAME, BackupEntry, read_catalog
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import StorageError
from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage

TYPES = ("full", "schema", "data", "globals")
FORMATS = ("custom", "directory", "plain")


def split_s3_uri(uri):
    """('bucket', 'key') of s3://bucket/key; PgopsError naming option src otherwise."""
    rest = uri[len("s3://"):]
    bucket, dummy, key = rest.partition("/")
    if not bucket or not key.strip("/"):
        raise PgopsError("Option src must be a local path or s3://bucket/key of a backup, got %r." % uri)
    return bucket, key.strip("/")


def check_manifest(manifest, where):
    """The manifest, if it describes a backup this restore can read; PgopsError otherwise."""
    if not isinstance(manifest, dict):
        raise PgopsError("The manifest of %s is not a JSON object." % where)
    missing = [k for k in ("backup_id", "database", "type", "dump_format", "file", "sha256", "server_version")
               if not manifest.get(k)]
    if missing:
        raise PgopsError("The manifest of %s lacks %s: not a backup made by pgops.runbook.backup." % (where, ", ".join(missing)))
    if manifest.get("format") != 1:
        raise PgopsError("The manifest of %s has format %r; this restore reads format 1." % (where, manifest.get("format")))
    if manifest["type"] not in TYPES or manifest["dump_format"] not in FORMATS:
        raise PgopsError("The manifest of %s names an unknown type %r or format %r."
                         % (where, manifest["type"], manifest["dump_format"]))
    if "/" in manifest["file"] or manifest["file"] in (".", ".."):
        raise PgopsError("The manifest of %s names an invalid file %r." % (where, manifest["file"]))
    return manifest


def _read_manifest(storage, key, where):
    try:
        text = storage.get(key)
    except StorageError as exc:
        raise PgopsError("Option src: no manifest.json beside the backup %s (%s)" % (where, exc.message.rstrip(".")) + ".")
    try:
        return check_manifest(json.loads(text.decode("utf-8")), where)
    except ValueError:
        raise PgopsError("The manifest of %s is not valid JSON." % where)


def entry_from_src(src, s3_params=None, s3_factory=None):
    """The backup at `src`: the dump file, its directory, or its manifest.json."""
    if src.startswith("s3://"):
        bucket, key = split_s3_uri(src)
        params = dict(s3_params or {})
        if params.get("bucket") and params["bucket"] != bucket:
            raise PgopsError("Option s3.bucket (%s) differs from the bucket in option src (%s)." % (params["bucket"], bucket))
        params["bucket"] = bucket
        params.pop("prefix", None)
        probe = s3_factory(params, "")
        if key.endswith("/" + MANIFEST_NAME) or key == MANIFEST_NAME:
            directory = posixpath.dirname(key)
        elif probe.exists(posixpath.join(posixpath.dirname(key), MANIFEST_NAME)):
            directory = posixpath.dirname(key)
        else:
            directory = key
        storage = s3_factory(params, directory)
    else:
        path = os.path.abspath(src)
        if not os.path.exists(path):
            raise PgopsError("Option src: %s does not exist." % src)
        if os.path.basename(path) == MANIFEST_NAME:
            directory = os.path.dirname(path)
        elif os.path.isdir(path) and os.path.exists(os.path.join(path, MANIFEST_NAME)):
            directory = path
        else:
            directory = os.path.dirname(path)
        storage = LocalStorage(directory, option="src")
    where = storage.location
    manifest = _read_manifest(storage, MANIFEST_NAME, where)
    keys = [info.key for info in storage.list("")]
    entry = BackupEntry(storage, manifest, keys, base="")
    if not entry.stored_keys():
        raise PgopsError("Option src: the dump file %s named by the manifest is missing in %s." % (manifest["file"], where))
    entry.catalog_root = _catalog_root(src, manifest, directory)
    return entry


def _catalog_root(src, manifest, directory):
    """The local directory holding <database>/<backup_id>/ when src sits in that layout (for
    the pre-restore backup), else None."""
    if src.startswith("s3://"):
        return None
    backup_dir = os.path.basename(directory)
    database_dir = os.path.basename(os.path.dirname(directory))
    if backup_dir == manifest["backup_id"] and database_dir == manifest["database"]:
        return os.path.dirname(os.path.dirname(directory))
    return None


def entry_from_catalog(storages, database=None, backup_id=None, label=None):
    """The backup `backup_id` (any database unless `database` is given), or the newest backup
    of `database` (with `label`) whose verification did not fail; the first storage that
    holds it wins (local before S3)."""
    candidates = []
    for order, storage in enumerate(storages):
        complete, dummy = read_catalog(storage, database)
        for entry in complete:
            if backup_id is not None and entry.backup_id != backup_id:
                continue
            if backup_id is None and (label is not None and entry.label != label or entry.verification_status == "failed"):
                continue
            check_manifest(entry.manifest, storage.uri(entry.manifest_key))
            candidates.append((entry.finished_at, entry.backup_id, -order, entry))
    where = " and ".join(s.location for s in storages)
    if not candidates:
        if backup_id is not None:
            raise PgopsError("Option backup_id: no backup %s in %s." % (backup_id, where))
        raise PgopsError("Option latest: no backup of database %s%s in %s (backups that failed verification are "
                         "not restored)." % (database, " with label %s" % label if label else "", where))
    candidates.sort(key=lambda c: c[:3])
    entry = candidates[-1][3]
    entry.catalog_root = None
    return entry
