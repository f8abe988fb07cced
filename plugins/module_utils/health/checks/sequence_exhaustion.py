# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sequence_exhaustion: sequences close to their limit, the limit being the lower
of the sequence's maximum and the type of the column it feeds (a bigint sequence
feeding an integer column overflows at 2^31).

Reading a sequence's last value (pg_sequence_last_value) locks the sequence until
the statement ends, so one statement over thousands of sequences can exhaust the
server's shared lock table, for every session. The values are therefore read in
chunks of a tenth of the lock table (max_locks_per_transaction x (max_connections +
max_prepared_transactions); 640 sequences with the defaults), after one statement
listing them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, grade_above, worst, count_outcome

MIN_CHUNK = 100

LIST_SQL = """
SELECT sc.oid AS seqrelid, n.nspname || '.' || sc.relname AS sequence, s.seqmin AS min_value, s.seqmax AS max_value,
       s.seqincrement AS increment_by, col.relation AS column_table, col.attname AS column_name, col.column_type,
       CASE col.column_type WHEN 'smallint' THEN 32767 WHEN 'integer' THEN 2147483647 END AS column_max,
       CASE col.column_type WHEN 'smallint' THEN -32768 WHEN 'integer' THEN -2147483648 END AS column_min
FROM pg_sequence s
JOIN pg_class sc ON sc.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = sc.relnamespace
LEFT JOIN (
    SELECT d.objid, d.refobjid::regclass::text AS relation, a.attname, format_type(a.atttypid, NULL) AS column_type
    FROM pg_depend d
    JOIN pg_sequence owned ON owned.seqrelid = d.objid
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')) AS col ON col.objid = sc.oid
WHERE """ + user_namespace("n") + """
ORDER BY sc.oid
"""

# Sequences the login role may not read are left out, as pg_sequences does.
VALUES_SQL = """
SELECT seqrelid, pg_sequence_last_value(seqrelid) AS last_value
FROM unnest(%(oids)s::oid[]) AS seqrelid
WHERE has_sequence_privilege(seqrelid, 'SELECT,USAGE')
"""


def usage_pct(row):
    """Percentage of the usable range already consumed (counting down too), the
    range ending where the sequence or the column it feeds ends."""
    if row["increment_by"] > 0:
        limit = row["max_value"] if row.get("column_max") is None else min(row["max_value"], row["column_max"])
        span = float(limit - row["min_value"]) or 1.0
        return 100.0 * (row["last_value"] - row["min_value"]) / span
    limit = row["min_value"] if row.get("column_min") is None else max(row["min_value"], row["column_min"])
    span = float(row["max_value"] - limit) or 1.0
    return 100.0 * (row["max_value"] - row["last_value"]) / span


def evaluate(rows, thresholds, context):
    found = []
    for row in rows:
        if row.get("last_value") is None:  # never used, or not readable
            continue
        pct = usage_pct(row)
        if pct >= thresholds["warning_pct"]:
            row["status"] = grade_above(pct, thresholds["warning_pct"], thresholds["critical_pct"])
            row["used_pct"] = round(pct, 2)
            row.pop("seqrelid", None)
            found.append(row)
    found.sort(key=lambda r: -r["used_pct"])

    def describe(row):
        feeds = " (feeds %s column %s.%s)" % (row["column_type"], row["column_table"], row["column_name"])
        return "%s %.1f %%%s" % (row["sequence"], row["used_pct"], feeds if row["column_max"] else "")

    noun = "sequences at %s %% of their range or more" % thresholds["warning_pct"]
    outcome = count_outcome(found, dict(warning_count=1), noun, describe)
    if found:
        outcome.status = worst(r["status"] for r in found)
    return outcome


def chunk_size(context):
    """A tenth of the server's shared lock table, at least MIN_CHUNK."""
    slots = int(context.setting("max_locks_per_transaction") or 64) * (
        int(context.setting("max_connections") or 100) + int(context.setting("max_prepared_transactions") or 0))
    return max(MIN_CHUNK, slots // 10)


def run(context, thresholds):
    sequences = context.query(LIST_SQL)
    by_oid = dict((row["seqrelid"], row) for row in sequences)
    oids = list(by_oid)
    chunk = chunk_size(context)
    for start in range(0, len(oids), chunk):
        for value in context.query(VALUES_SQL, dict(oids=oids[start:start + chunk])):
            by_oid[value["seqrelid"]]["last_value"] = value["last_value"]
    return evaluate(sequences, thresholds, context)


CHECK = HealthCheck(
    name="sequence_exhaustion",
    description=("Sequences that used warning_pct / critical_pct of their range, capped by the type of the column "
                 "they feed. Reads the sequences a tenth of the server's lock table at a time (reading one locks it)."),
    run=run,
    thresholds=dict(warning_pct=75, critical_pct=90),
)
