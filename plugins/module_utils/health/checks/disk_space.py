# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""disk_space: free space on the filesystems holding the data directory and the
tablespaces, when the module runs on the database host (the runbooks ask for
30 % free before a migration)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, Outcome, grade_below, worst

SQL = """
SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       (SELECT json_agg(json_build_object('name', spcname, 'location', pg_tablespace_location(oid)))
        FROM pg_tablespace WHERE pg_tablespace_location(oid) <> '') AS tablespaces
"""

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "local socket")


def _local_identifier(data_directory):
    """The system identifier in the local pg_control, or None when unreadable."""
    try:
        with open(os.path.join(data_directory, "global", "pg_control"), "rb") as handle:
            return str(struct.unpack("<Q", handle.read(8))[0])
    except (IOError, OSError, struct.error):
        return None


def _same_host(context, system_identifier):
    data_directory = context.setting("data_directory")
    if not data_directory or not os.path.isdir(data_directory):
        return False
    local_id = _local_identifier(data_directory)
    if local_id is not None:
        return local_id == system_identifier
    host = context.connection_settings.effective()["host"]
    return host.startswith("/") or host in _LOOPBACK


def unavailable(context):
    if not context.setting("data_directory"):
        return "the login role may not read data_directory (grant pg_read_all_settings or pg_monitor)"
    return None


def free_space(path):
    """(free %, free bytes, total bytes) as df reports them (space usable by non-root)."""
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    total = used + avail
    return (round(100.0 * avail / total, 2) if total else 100.0), avail, total


def evaluate(rows, thresholds, context):
    row = rows[0]
    if not _same_host(context, row["system_identifier"]):
        return Outcome("skipped", "Skipped: the module does not run on the database host (%s is not this machine's "
                       "data directory)." % context.setting("data_directory"))
    paths = [("data_directory", context.setting("data_directory"))]
    paths += [("tablespace " + t["name"], t["location"]) for t in (row["tablespaces"] or [])]
    seen, details = {}, []
    for label, path in paths:
        device = os.stat(path).st_dev
        if device in seen:
            seen[device]["holds"].append(label)
            continue
        pct, avail, total = free_space(path)
        entry = dict(path=path, holds=[label], free_pct=pct, free_bytes=avail, size_bytes=total,
                     status=grade_below(pct, thresholds["warning_free_pct"], thresholds["critical_free_pct"]))
        seen[device] = entry
        details.append(entry)
    low = min(details, key=lambda d: d["free_pct"])
    text = "; ".join("%s (%s): %.1f %% free" % (d["path"], ", ".join(d["holds"]), d["free_pct"]) for d in details)
    return Outcome(worst(d["status"] for d in details), text + ".", low["free_pct"], details)


CHECK = HealthCheck(
    name="disk_space",
    description=("Free space on the filesystems of the data directory and tablespaces, below warning_free_pct / "
                 "critical_free_pct; skipped unless the module runs on the database host."),
    sql=SQL,
    evaluate=evaluate,
    unavailable=unavailable,
    thresholds=dict(warning_free_pct=30, critical_free_pct=10),
)
