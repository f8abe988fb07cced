# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups in a local directory (option dest): files 0600 in directories 0700.

A writer streams into '<key>.partial' and renames it to '<key>' only after
fsync of the file, then fsyncs the directory: a crash leaves a '.partial'
(incomplete_uploads reports '<key>', discard_incomplete removes it) and never
a truncated object under a key.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import io
import os
import tempfile

from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import ObjectInfo, Storage, StorageError, Writer, check_key

PARTIAL_SUFFIX = ".partial"
FILE_MODE = 0o600
DIR_MODE = 0o700
_WRITE_BUFFER = 256 * 1024
_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(Storage):
    """A directory that must exist; keys are paths below it."""

    def __init__(self, root, option="dest"):
        self.option = option
        self.root = os.path.abspath(root)
        self.location = self.root

    def path(self, key):
        """The file that holds `key`."""
        return os.path.join(self.root, *check_key(key, self.option).split("/"))

    def uri(self, key):
        return self.path(key)

    def error(self, exc, path, action="write"):
        """The StorageError sentence for an OSError met while doing `action` on `path`."""
        if exc.errno in _NO_SPACE:
            return StorageError("Option %s: no space left on device while writing %s." % (self.option, path),
                                details=dict(path=path, errno=exc.errno))
        if exc.errno in _NOT_WRITABLE and action == "write":
            return StorageError("Option %s: %s is not writable (%s)." % (self.option, path, exc.strerror),
                                details=dict(path=path, errno=exc.errno))
        if exc.errno == errno.ENOENT:
            return StorageError("Option %s: %s does not exist." % (self.option, path), details=dict(path=path, errno=exc.errno))
        return StorageError("Option %s: cannot %s %s (%s)." % (self.option, action, path, exc.strerror or exc),
                            details=dict(path=path, errno=exc.errno))

    def _check_root(self):
        if not os.path.exists(self.root):
            raise StorageError("Option %s: %s does not exist." % (self.option, self.root), details=dict(path=self.root))
        if not os.path.isdir(self.root):
            raise StorageError("Option %s: %s is not a directory." % (self.option, self.root), details=dict(path=self.root))

    def check_writable(self):
        self._check_root()
        try:
            fd, probe = tempfile.mkstemp(prefix=".pgops-write-probe-", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise self.error(exc, self.root)

    def make_parents(self, key):
        """Create the directories of `key` below the root (mode 0700, whatever the umask)."""
        self._check_root()
        current = self.root
        for part in check_key(key, self.option).split("/")[:-1]:
            current = os.path.join(current, part)
            try:
                os.mkdir(current, DIR_MODE)
                os.chmod(current, DIR_MODE)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise self.error(exc, current)
                if not os.path.isdir(current):
                    raise StorageError("Option %s: %s is not a directory." % (self.option, current), details=dict(path=current))
        return current

    def writer(self, key):
        return LocalWriter(self, key)

    def put_atomic(self, key, data):
        with self.writer(key) as handle:
            handle.write(data)
            handle.commit()

    def reader(self, key):
        path = self.path(key)
        try:
            return open(path, "rb")
        except OSError as exc:
            raise self.error(exc, path, "read")

    def _walk(self, prefix, want_partial):
        """(key, path) of files below the root whose key starts with `prefix`, partial ones or complete ones."""
        self._check_root()
        start = self.root
        if "/" in prefix:
            start = os.path.join(self.root, *prefix.rsplit("/", 1)[0].split("/"))
        if not os.path.isdir(start):
            return []

        def failed(exc):
            raise self.error(exc, exc.filename or start, "read")

        found = []
        for directory, dummy, files in os.walk(start, onerror=failed):
            for name in files:
                if name.endswith(PARTIAL_SUFFIX) != want_partial:
                    continue
                path = os.path.join(directory, name)
                key = os.path.relpath(path, self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    found.append((key, path))
        return sorted(found)

    def list(self, prefix=""):
        result = []
        for key, path in self._walk(prefix, want_partial=False):
            try:
                stat = os.stat(path)
            except OSError as exc:
                if exc.errno == errno.ENOENT:  # deleted while we listed
                    continue
                raise self.error(exc, path, "read")
            result.append(ObjectInfo(key, stat.st_size, stat.st_mtime))
        return result

    def delete(self, keys):
        for key in keys:
            self._remove(self.path(key))

    def _remove(self, path):
        """Remove a file (gone already is fine) and then its directories left empty."""
        try:
            os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise self.error(exc, path, "delete")
        self._prune(os.path.dirname(path))

    def _prune(self, directory):
        """Remove `directory` and its parents while they are empty, up to (not including) the root."""
        while directory != self.root and directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    def exists(self, key):
        return os.path.isfile(self.path(key))

    def _partials(self, prefix):
        """(key being written, its '.partial' file) for every partial file whose key starts with `prefix`."""
        found = []
        for partial_key, path in self._walk("", want_partial=True):
            key = partial_key[:-len(PARTIAL_SUFFIX)]
            if key.startswith(prefix):
                found.append((key, path))
        return found

    def incomplete_uploads(self, prefix=""):
        return [key for key, dummy in self._partials(prefix)]

    def discard_incomplete(self, prefix=""):
        discarded = []
        for key, path in self._partials(prefix):
            self._remove(path)
            discarded.append(key)
        return discarded


class LocalWriter(Writer):
    """Streams into '<key>.partial'; commit() makes it '<key>'."""

    def __init__(self, storage, key):
        self.storage = storage
        self.key = key
        self.path = storage.path(key)
        self.partial = self.path + PARTIAL_SUFFIX
        self.bytes_written = 0
        self.abort_error = None
        self.state = "open"
        storage.make_parents(key)
        try:
            # A '.partial' left by a crashed run is ours to replace.
            try:
                os.unlink(self.partial)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        except OSError as exc:
            raise storage.error(exc, self.partial)
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError as exc:
            os.close(fd)
            self._remove_partial()
            raise storage.error(exc, self.partial)
        self.handle = io.open(fd, "wb", buffering=_WRITE_BUFFER)

    def _fail(self, exc):
        """Remove the partial file and return the StorageError for `exc`."""
        self.state = "failed"
        self._close_quietly()
        self._remove_partial()
        return self.storage.error(exc, self.path)

    def _close_quietly(self):
        try:
            self.handle.close()
        except (OSError, ValueError):
            # close() flushes; with the disk full that fails again, and the fd is closed anyway.
            pass

    def _remove_partial(self):
        try:
            os.unlink(self.partial)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                return exc
        return None

    def _require_open(self, action):
        if self.state != "open":
            raise StorageError("Option %s: cannot %s %s: the writer is %s." % (self.storage.option, action, self.path, self.state))

    def write(self, data):
        self._require_open("write")
        try:
            self.handle.write(data)
        except OSError as exc:
            raise self._fail(exc)
        self.bytes_written += len(data)

    def commit(self):
        self._require_open("commit")
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            os.rename(self.partial, self.path)
        except OSError as exc:
            raise self._fail(exc)
        self.state = "committed"
        try:
            _fsync_directory(os.path.dirname(self.path))
        except OSError as exc:
            raise self.storage.error(exc, os.path.dirname(self.path))

    def abort(self):
        if self.state in ("committed", "aborted"):
            return
        self._close_quietly()
        exc = self._remove_partial()
        if exc is not None:
            self.abort_error = self.storage.error(exc, self.partial, "remove")
            return
        self.state = "aborted"
