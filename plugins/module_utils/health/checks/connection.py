# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""connection: the server answers, and how long connecting took."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, Outcome, grade_above


def evaluate(rows, thresholds, context):
    latency_ms = round(context.connect_seconds * 1000.0, 1)
    status = grade_above(latency_ms, thresholds["warning_ms"], thresholds["critical_ms"])
    return Outcome(status, "Connected as %s to %s in %.1f ms." % (
        context.row["login_role"], context.row["database"], latency_ms), latency_ms)


CHECK = HealthCheck(
    name="connection",
    description="Connects and measures the time it took (ms), TLS and authentication included.",
    evaluate=evaluate,
    thresholds=dict(warning_ms=1000, critical_ms=5000),
)
