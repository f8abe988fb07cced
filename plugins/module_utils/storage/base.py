# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one storage interface backup, restore and backup_info share.

A backend (local directory, S3 bucket) is one class implementing `Storage`
and one implementing `Writer`. Keys are relative to the storage root and use
'/' as separator; nothing is visible under a key until its writer commits.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError


class StorageError(PgopsError):
    """One sentence naming the user's option (dest, s3, s3.bucket, ...); never a secret."""


class ObjectInfo:
    """One stored object: `key` relative to the storage root, `size` in bytes, `modified` as epoch seconds."""

    __slots__ = ("key", "size", "modified")

    def __init__(self, key, size, modified):
        self.key = key
        self.size = int(size)
        self.modified = float(modified)

    def __eq__(self, other):
        return isinstance(other, ObjectInfo) and (self.key, self.size, self.modified) == (other.key, other.size, other.modified)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.key, self.size, self.modified))

    def __repr__(self):
        return "ObjectInfo(key=%r, size=%d, modified=%r)" % (self.key, self.size, self.modified)


def check_key(key, option):
    """`key` if it is a relative '/'-separated path without empty, '.' or '..' parts; StorageError otherwise."""
    if not isinstance(key, str) or not key or key.startswith("/") or "\\" in key or "\0" in key:
        raise StorageError("Option %s: invalid object key %r." % (option, key))
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise StorageError("Option %s: invalid object key %r." % (option, key))
    return key


class Storage:
    """Where backups live. Subclasses implement every method that raises NotImplementedError."""

    option = "dest"
    location = ""

    def uri(self, key):
        """Where `key` is, as the user would write it: a path or an s3:// URI."""
        return self.location.rstrip("/") + "/" + check_key(key, self.option)

    def check_writable(self):
        """Raise StorageError unless objects can be written here (tries it, before any data)."""
        raise NotImplementedError

    def writer(self, key):
        """A streaming Writer for `key`; nothing is visible under `key` until commit()."""
        raise NotImplementedError

    def put_atomic(self, key, data):
        """Store a small object (a manifest) all or nothing."""
        raise NotImplementedError

    def reader(self, key):
        """A binary file-like object with read(n) and close(), streaming the object's content."""
        raise NotImplementedError

    def get(self, key):
        """The whole content of a (small) object as bytes."""
        handle = self.reader(key)
        try:
            return handle.read()
        finally:
            handle.close()

    def list(self, prefix=""):
        """Every complete object whose key starts with `prefix` (recursive), as ObjectInfo sorted by key."""
        raise NotImplementedError

    def delete(self, keys):
        """Delete the objects named in `keys`; keys that do not exist are ignored."""
        raise NotImplementedError

    def exists(self, key):
        """True when a complete object is stored under `key`."""
        raise NotImplementedError

    def incomplete_uploads(self, prefix=""):
        """Keys of uploads begun and neither committed nor cleaned up (crashed or failed writers)."""
        raise NotImplementedError

    def discard_incomplete(self, prefix=""):
        """Remove what incomplete_uploads(prefix) reports; returns the keys removed."""
        raise NotImplementedError


class Writer:
    """Streams one object. Use as a context manager: an exception inside the block aborts;
    leaving it normally does nothing, the caller commits explicitly."""

    bytes_written = 0
    # Why the last abort() could not clean up (a StorageError), or None: abort never raises.
    abort_error = None

    def write(self, data):
        raise NotImplementedError

    def commit(self):
        """Make the object visible under its key, complete, or raise StorageError."""
        raise NotImplementedError

    def abort(self):
        """Discard everything written; best effort, never raises (see abort_error)."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is not None:
            self.abort()
        return False
