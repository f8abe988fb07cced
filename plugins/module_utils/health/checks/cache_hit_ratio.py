# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cache_hit_ratio: share of block reads served from shared buffers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import OK, HealthCheck, Outcome, grade_below

SQL = "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()"


def evaluate(rows, thresholds, context):
    hit, read = rows[0]["blks_hit"], rows[0]["blks_read"]
    total = hit + read
    if total < thresholds["min_blocks"]:
        return Outcome(OK, "Only %d block reads since the statistics were reset: too few to judge." % total, None,
                       dict(blks_hit=hit, blks_read=read))
    pct = 100.0 * hit / total
    status = grade_below(pct, thresholds["warning_below_pct"], thresholds["critical_below_pct"])
    return Outcome(status, "%.2f %% of block reads hit shared buffers." % pct, round(pct, 2), dict(blks_hit=hit, blks_read=read))


CHECK = HealthCheck(
    name="cache_hit_ratio",
    description="Percentage of block reads served from shared buffers in this database (judged after min_blocks reads).",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_below_pct=90, critical_below_pct=None, min_blocks=1000),
)
