# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""database_size: the size of the database, against optional limits."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, Outcome, grade_above

SQL = "SELECT pg_database_size(current_database()) AS bytes"


def evaluate(rows, thresholds, context):
    size = rows[0]["bytes"]
    status = grade_above(size, thresholds["warning_bytes"], thresholds["critical_bytes"])
    return Outcome(status, "Database %s is %.1f MB." % (context.row["database"], size / 1048576.0), size)


CHECK = HealthCheck(
    name="database_size",
    description="Size of the database in bytes; warning_bytes and critical_bytes are unset by default.",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_bytes=None, critical_bytes=None),
)
