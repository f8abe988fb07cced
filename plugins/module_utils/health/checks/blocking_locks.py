# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""blocking_locks: sessions waiting for a lock, and who blocks them (pg_blocking_pids)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, duration_outcome

SQL = """
SELECT a.pid, a.usename AS user, a.datname AS database,
       pg_blocking_pids(a.pid) AS blocked_by,
       round(extract(epoch FROM now() - coalesce(l.{waitstart}, a.query_start))::numeric, 1)::float AS seconds,
       l.mode AS wanted_mode, l.locktype,
       CASE WHEN l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            THEN l.relation::regclass::text END AS relation,
       left(a.query, %(text)s) AS query,
       (SELECT json_agg(json_build_object('pid', b.pid, 'user', b.usename, 'state', b.state,
                                          'transaction_seconds', round(extract(epoch FROM now() - b.xact_start)::numeric, 1),
                                          'query', left(b.query, %(text)s)))
        FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))) AS blockers
FROM pg_stat_activity a
JOIN LATERAL (SELECT * FROM pg_locks pl WHERE pl.pid = a.pid AND NOT pl.granted LIMIT 1) l ON true
WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
  AND cardinality(pg_blocking_pids(a.pid)) > 0
  AND now() - coalesce(l.{waitstart}, a.query_start) >= make_interval(secs => %(seconds)s)
ORDER BY seconds DESC
LIMIT 50
"""


def statement(context, thresholds):
    # pg_locks.waitstart exists from PostgreSQL 14; before, the query's start time stands in.
    waitstart = "l.waitstart" if context.server_version_num >= 140000 else "NULL::timestamptz"
    return SQL.replace("l.{waitstart}", waitstart), dict(text=context.query_text(), seconds=thresholds["warning_seconds"])


def evaluate(rows, thresholds, context):
    return duration_outcome(rows, thresholds, "sessions blocked by a lock",
                            lambda r: "pid %s waits for %s on %s held by pid %s" % (
                                r["pid"], r["wanted_mode"], r["relation"] or r["locktype"],
                                ", ".join(str(p) for p in r["blocked_by"])))


CHECK = HealthCheck(
    name="blocking_locks",
    description="Sessions waiting for a lock for warning_seconds / critical_seconds or longer, with the sessions blocking them.",
    sql=statement,
    evaluate=evaluate,
    thresholds=dict(warning_seconds=5, critical_seconds=60),
)
