# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""orphaned_records (opt-in): child rows whose parent is missing, for every foreign
key (NOT VALID ones and disabled triggers let them in) and for relationships the
schema does not declare. One anti-join per relationship, each under its own
statement_timeout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import psycopg2
    from psycopg2 import sql
except ImportError:  # pragma: no cover
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import OK, WARNING, HealthCheck, Outcome, grade_above, worst

FOREIGN_KEYS_SQL = """
SELECT c.conname, cn.nspname AS child_schema, cc.relname AS child_table,
       pn.nspname AS parent_schema, pc.relname AS parent_table, c.convalidated AS validated,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS child_columns,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS parent_columns
FROM pg_constraint c
JOIN pg_class cc ON cc.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
JOIN pg_class pc ON pc.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.contype = 'f' AND """ + user_namespace("cn") + """
ORDER BY cn.nspname, cc.relname, c.conname
"""


def _table(name, default_schema="public"):
    schema, dummy, table = name.rpartition(".")
    return sql.Identifier(schema or default_schema, table)


def anti_join(child, child_columns, parent, parent_columns):
    """count(*) of child rows (no key column NULL, as MATCH SIMPLE) with no parent row."""
    not_null = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(col)) for col in child_columns)
    match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
                                  for c, p in zip(child_columns, parent_columns))
    return sql.SQL("SELECT count(*) AS n FROM {} AS c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})").format(
        child, not_null, parent, match)


def relationships(context):
    """Declared foreign keys plus the user's undeclared relationships, as
    (label, child identifier, child columns, parent identifier, parent columns)."""
    found = []
    for fk in context.query(FOREIGN_KEYS_SQL):
        found.append(("%s.%s.%s%s" % (fk["child_schema"], fk["child_table"], fk["conname"], "" if fk["validated"] else " (NOT VALID)"),
                      sql.Identifier(fk["child_schema"], fk["child_table"]), fk["child_columns"],
                      sql.Identifier(fk["parent_schema"], fk["parent_table"]), fk["parent_columns"]))
    for rel in context.options.get("relationships") or []:
        found.append(("%s.%s -> %s.%s" % (rel["child_table"], rel["child_column"], rel["parent_table"], rel["parent_column"]),
                      _table(rel["child_table"]), [rel["child_column"]], _table(rel["parent_table"]), [rel["parent_column"]]))
    return found


def run(context, thresholds):
    checked = relationships(context)
    details, statuses = [], []
    context.query("SELECT set_config('statement_timeout', %s, false)", ("%dms" % thresholds["statement_timeout_ms"],))
    try:
        for label, child, child_columns, parent, parent_columns in checked:
            try:
                orphans = context.query(anti_join(child, child_columns, parent, parent_columns))[0]["n"]
            except psycopg2.Error as exc:
                if context.conn.closed:
                    raise
                message = (getattr(exc.diag, "message_primary", None) or str(exc)).strip()
                details.append(dict(relationship=label, orphans=None, status=WARNING, error=message))
                statuses.append(WARNING)
                continue
            status = grade_above(orphans, thresholds["warning_count"], thresholds["critical_count"])
            details.append(dict(relationship=label, orphans=orphans, status=status))
            statuses.append(status)
    finally:
        if not context.conn.closed:
            previous = context.setting("statement_timeout")  # milliseconds, as pg_settings shows it
            context.query("SELECT set_config('statement_timeout', %s, false)", ((previous or "0") + "ms",))
    bad = [d for d in details if d["status"] != OK]
    total = sum(d["orphans"] or 0 for d in details)
    if not bad:
        return Outcome(OK, "No orphaned rows under %d relationships." % len(details), 0, details)
    text = "; ".join("%s: %s" % (d["relationship"], "%d orphaned rows" % d["orphans"] if d["orphans"] is not None
                                 else "not checked (%s)" % d["error"]) for d in bad)
    return Outcome(worst(statuses), text + ".", total, details)


CHECK = HealthCheck(
    name="orphaned_records",
    description=("Opt-in. Counts child rows without a parent for every foreign key and every relationship in the "
                 "relationships option, each query under statement_timeout_ms; critical at critical_count orphans."),
    run=run,
    opt_in=True,
    thresholds=dict(warning_count=None, critical_count=1, statement_timeout_ms=10000),
)
