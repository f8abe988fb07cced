# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""server_version: the server's major version against the minimum supported."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, Outcome, grade_below


def evaluate(rows, thresholds, context):
    num = context.server_version_num
    major = num // 10000
    status = grade_below(major, thresholds["warning_below"], thresholds["critical_below"])
    text = "PostgreSQL %s" % context.row["server_version"]
    if status != "ok":
        text += ", older than %s" % (thresholds["critical_below"] if status == "critical" else thresholds["warning_below"])
    return Outcome(status, text + ".", major, dict(server_version=context.row["server_version"], server_version_num=num))


CHECK = HealthCheck(
    name="server_version",
    description="The server's major version; warning below warning_below (community support ended), critical below critical_below.",
    evaluate=evaluate,
    thresholds=dict(warning_below=15, critical_below=12),
)
