# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every migration tool adapter speaks: a migration the project has, the state the
database records, and the plan between them. One result shape for every tool."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError


class Migration:
    """One migration of the project: `version` (the tool's id), `name`, its SQL when the tool
    can render it, and the sha256 of its file when the tool checks for drift."""

    def __init__(self, version, name, sql=None, checksum=None, path=None, kind="versioned", undo=None):
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = checksum
        self.path = path
        self.kind = kind  # versioned | repeatable
        self.undo = undo  # the undo migration (SQL tool) or down.sql (Prisma), when the project has one

    def describe(self, with_sql=True):
        out = dict(version=self.version, name=self.name)
        if with_sql:
            out["sql"] = self.sql
        return out


class MigrationFailed(PgopsError):
    """A migration (or the tool running it) failed; `lock_timeout` when it gave up waiting for a lock."""

    def __init__(self, message, lock_timeout=False, details=None):
        PgopsError.__init__(self, message, details)
        self.lock_timeout = lock_timeout


class Conflict:
    """Something that makes applying unsafe; the run is refused while any exists."""

    def __init__(self, kind, version, message):
        self.kind = kind
        self.version = version
        self.message = message

    def describe(self):
        return dict(kind=self.kind, version=self.version, message=self.message)


class Status:
    """What the database records against what the project has."""

    def __init__(self, current, applied, pending, conflicts=None, known=None):
        self.current = current  # the version the database is at (None: nothing applied)
        self.applied = applied  # [version] in the order applied
        self.pending = pending  # [Migration] in the order they would apply
        self.conflicts = conflicts or []
        self.known = known or []  # every Migration of the project, in order


_VERSION_PART = re.compile(r"\d+")


def version_key(version):
    """Sort key of a dotted/underscored numeric version ('1.10' after '1.9')."""
    parts = re.split(r"[._]", str(version))
    if not parts or not all(_VERSION_PART.fullmatch(p) for p in parts):
        raise PgopsError("Version %r is not numbers separated by '.' or '_'." % (version,))
    key = [int(p) for p in parts]
    while len(key) > 1 and key[-1] == 0:
        key.pop()  # 1.0 == 1
    return tuple(key)
