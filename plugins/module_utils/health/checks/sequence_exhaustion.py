# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sequence_exhaustion: sequences close to their limit, the limit being the lower
of the sequence's maximum and the type of the column it feeds (a bigint sequence
feeding an integer column overflows at 2^31)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, grade_above, worst, count_outcome

SQL = """
SELECT s.schemaname || '.' || s.sequencename AS sequence, s.last_value, s.min_value, s.max_value, s.increment_by,
       col.relation AS column_table, col.attname AS column_name, col.column_type,
       CASE col.column_type WHEN 'smallint' THEN 32767 WHEN 'integer' THEN 2147483647 END AS column_max
FROM pg_sequences s
JOIN pg_namespace n ON n.nspname = s.schemaname
JOIN pg_class sc ON sc.relname = s.sequencename AND sc.relnamespace = n.oid
LEFT JOIN LATERAL (
    SELECT d.refobjid::regclass::text AS relation, a.attname, format_type(a.atttypid, NULL) AS column_type
    FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = sc.oid AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    LIMIT 1) AS col ON true
WHERE s.last_value IS NOT NULL AND """ + user_namespace("n")


def usage_pct(row):
    """Percentage of the usable range already consumed."""
    limit = row["max_value"] if row["column_max"] is None else min(row["max_value"], row["column_max"])
    if row["increment_by"] > 0:
        span = float(limit - row["min_value"]) or 1.0
        return round(100.0 * (row["last_value"] - row["min_value"]) / span, 2)
    span = float(row["max_value"] - row["min_value"]) or 1.0
    return round(100.0 * (row["max_value"] - row["last_value"]) / span, 2)


def evaluate(rows, thresholds, context):
    found = []
    for row in rows:
        row["used_pct"] = usage_pct(row)
        if row["used_pct"] >= thresholds["warning_pct"]:
            found.append(row)
    found.sort(key=lambda r: -r["used_pct"])
    outcome = count_outcome(found, dict(warning_count=1), "sequences at %s %% of their range or more" % thresholds["warning_pct"],
                            lambda r: "%s %.1f %%%s" % (r["sequence"], r["used_pct"],
                                                       " (feeds %s column %s.%s)" % (r["column_type"], r["column_table"], r["column_name"])
                                                       if r["column_max"] else ""))
    if found:
        outcome.status = worst(grade_above(r["used_pct"], thresholds["warning_pct"], thresholds["critical_pct"]) for r in found)
    return outcome


CHECK = HealthCheck(
    name="sequence_exhaustion",
    description="Sequences that used warning_pct / critical_pct of their range, capped by the type of the column they feed.",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_pct=75, critical_pct=90),
)
