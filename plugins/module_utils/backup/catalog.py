# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog of backups in one storage: every <database>/<backup_id>/ with its
manifest. A backup without a readable manifest is incomplete, never a backup.
backup_info, retention and the backup_freshness health check read it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

MANIFEST_NAME = "manifest.json"


class BackupEntry:
    """One complete backup: its manifest and where its files are. `base` is the key of
    the backup's directory (default <database>/<backup_id>; "" when the storage is
    rooted at the backup's own directory, as for a restore's src)."""

    def __init__(self, storage, manifest, keys, base=None):
        self.storage = storage
        self.manifest = manifest
        self.keys = sorted(keys)
        self.backup_id = manifest["backup_id"]
        self.database = manifest["database"]
        self.label = manifest.get("label")
        self.finished_at = manifest.get("finished_at") or ""
        self.verification_status = (manifest.get("verification") or {}).get("status", "unknown")
        if base is None:
            base = "%s/%s" % (self.database, self.backup_id)
        self.base = base
        self.dump_key = self.key(manifest.get("file", ""))
        self.manifest_key = self.key(MANIFEST_NAME)

    def key(self, name):
        """The key of file `name` of this backup."""
        return "%s/%s" % (self.base, name) if self.base else name

    @property
    def verified(self):
        return self.verification_status == "passed"

    def stored_keys(self):
        """The keys of the dump: one file, or every file of a directory archive
        (empty when any file the manifest lists is missing)."""
        files = self.manifest.get("files")
        if not files:
            return [self.dump_key] if self.dump_key in self.keys else []
        wanted = ["%s/%s" % (self.dump_key, name) for name in sorted(files)]
        return wanted if all(k in self.keys for k in wanted) else []

    def stored_sha256(self, chunk_size=1024 * 1024):
        """sha256 of the dump as it is stored now, read back in one stream (StorageError when
        unreadable); for a directory archive, the sha256 over its files' sha256 as the manifest has it."""
        files = self.manifest.get("files")
        digests = {}
        for key in self.stored_keys() or [self.dump_key]:
            digest = hashlib.sha256()
            handle = self.storage.reader(key)
            try:
                for chunk in iter(lambda: handle.read(chunk_size), b""):
                    digest.update(chunk)
            finally:
                handle.close()
            digests[key[len(self.dump_key) + 1:] if files else key] = dict(sha256=digest.hexdigest())
        if not files:
            return digests[self.dump_key]["sha256"]
        text = "".join("%s %s\n" % (name, digests[name]["sha256"]) for name in sorted(digests))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def summary(self):
        """What backup_info returns for it."""
        m = self.manifest
        return dict(backup_id=self.backup_id, database=self.database, label=self.label, tags=m.get("tags") or {},
                    type=m.get("type"), format=m.get("dump_format"), started_at=m.get("started_at"),
                    finished_at=self.finished_at, size_bytes=m.get("size_bytes"), sha256=m.get("sha256"),
                    verified=self.verified, verification=m.get("verification"), location=self.storage.uri(self.dump_key),
                    manifest_location=self.storage.uri(self.manifest_key), encryption=m.get("encryption"),
                    compression=m.get("compression"), server_version=m.get("server_version"))


class IncompleteBackup:
    """A backup directory without a usable manifest (a crash, a half-done delete)."""

    def __init__(self, storage, database, backup_id, keys, reason):
        self.storage = storage
        self.database = database
        self.backup_id = backup_id
        self.keys = sorted(keys)
        self.reason = reason

    def summary(self):
        return dict(backup_id=self.backup_id, database=self.database, reason=self.reason,
                    locations=[self.storage.uri(k) for k in self.keys])


def read_catalog(storage, database=None):
    """(complete backups sorted oldest first, incomplete ones) under `storage`."""
    groups = {}
    for info in storage.list((database + "/") if database else ""):
        parts = info.key.split("/")
        if len(parts) < 3:
            continue  # not <database>/<backup_id>/<file> (or <file>/<part> of a directory archive)
        groups.setdefault((parts[0], parts[1]), []).append(info.key)
    complete, incomplete = [], []
    for (db, backup_id), keys in sorted(groups.items()):
        manifest_key = "%s/%s/%s" % (db, backup_id, MANIFEST_NAME)
        if manifest_key not in keys:
            incomplete.append(IncompleteBackup(storage, db, backup_id, keys, "no manifest"))
            continue
        try:
            manifest = json.loads(storage.get(manifest_key).decode("utf-8"))
            if manifest.get("backup_id") != backup_id or manifest.get("database") != db:
                raise ValueError("the manifest describes another backup")
            entry = BackupEntry(storage, manifest, keys)
            if not entry.stored_keys():
                raise ValueError("its dump file %s is missing (or a part of it)" % manifest.get("file"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            incomplete.append(IncompleteBackup(storage, db, backup_id, keys, "unusable manifest: %s" % exc))
            continue
        complete.append(entry)
    complete.sort(key=lambda e: (e.finished_at, e.backup_id))
    return complete, incomplete
