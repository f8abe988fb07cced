# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load a reference-data file into its table, in one transaction.

The file is streamed with COPY into a temporary table of the target's column types,
checked (keys present and unique), compared with the table, and then - unless in check
mode or nothing differs - rows missing from the table are inserted, rows whose values
differ are updated (one INSERT ... ON CONFLICT on the key's unique index) and, with
prune, rows absent from the file are deleted. The table is locked against other
writers (SHARE ROW EXCLUSIVE) from the comparison to the commit, so the counts are the
changes made; a run killed at any point leaves the table as it was.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    import psycopg2
    from psycopg2 import sql
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None
    sql = None

from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.reference_data.sources import open_source

STAGING = "pgops_reference_rows"
_COPY_LINE = re.compile(r"COPY %s, line (\d+)(?:, column (\w+))?" % STAGING)


class LoadRequest:
    """The validated options of the reference_data module."""

    def __init__(self, path, table, key, fmt="auto", delimiter=",", prune=False, lock_timeout=10, diff_rows=20,
                 check_mode=False):
        if not table or not table.strip():
            raise PgopsError("Option table must name a table, for example public.appointment_types.")
        if not key or any(not k or not str(k).strip() for k in key):
            raise PgopsError("Option key must list the key column(s) that identify a row, for example [code].")
        if len(set(key)) != len(key):
            raise PgopsError("Option key names a column twice.")
        if lock_timeout < 0:
            raise PgopsError("Option lock_timeout must be 0 (wait for ever) or more seconds.")
        if diff_rows < 0:
            raise PgopsError("Option diff_rows must be 0 or more.")
        self.path, self.table, self.key = path, table, list(key)
        self.format, self.delimiter, self.prune = fmt, delimiter, prune
        self.lock_timeout, self.diff_rows, self.check_mode = lock_timeout, diff_rows, check_mode


def load_reference_data(settings, request):
    """Load the file; the result dict with the counts (and the bounded row changes)."""
    source = open_source(request.path, request.format, request.delimiter)
    for column in request.key:
        if column not in source.columns:
            raise PgopsError("Option key: column %s is not among the columns of %s (%s)." % (
                column, request.path, ", ".join(source.columns)))
    conn, dummy = connect(settings, application_name="pgops.runbook.reference_data", autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = %s", ("%ds" % request.lock_timeout,))
            target = _resolve_table(cur, request)
            columns = _check_columns(cur, request, source, target)
            _lock(cur, target)
            _stage(cur, source, target)
            _check_keys(cur, request, source)
            plan = _compare(cur, request, source, target, columns)
            if request.check_mode or not plan["changed"]:
                conn.rollback()
            else:
                _write(cur, request, source, target, columns, plan)
                conn.commit()
    except psycopg2.Error as exc:
        raise PgopsError(_explain(exc, request, source))
    finally:
        conn.close()
    plan["table"] = "%s.%s" % target[1:]
    plan["path"] = request.path
    return plan


def _resolve_table(cur, request):
    try:
        cur.execute("SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)", (request.table,))
    except psycopg2.Error:
        raise PgopsError("Option table: %r is not a valid table name." % request.table)
    row = cur.fetchone()
    if row is None:
        raise PgopsError("Option table: there is no table %s in database %s." % (request.table, cur.connection.info.dbname))
    if row[3] not in ("r", "p"):
        raise PgopsError("Option table: %s is not a table." % request.table)
    return row[0], row[1], row[2]


def _check_columns(cur, request, source, target):
    """{column: (type, identity always)} of the file's columns, each checked against the table."""
    cur.execute("SELECT attname, format_type(atttypid, atttypmod), attidentity, attgenerated FROM pg_attribute "
                "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped", (target[0],))
    table = dict((r[0], r[1:]) for r in cur.fetchall())
    columns = {}
    for column in source.columns:
        if column not in table:
            raise PgopsError("File %s: column %s is not a column of table %s.%s." % (
                request.path, column, target[1], target[2]))
        if table[column][2]:
            raise PgopsError("File %s: column %s of table %s.%s is generated and cannot be loaded." % (
                request.path, column, target[1], target[2]))
        columns[column] = (table[column][0], table[column][1] == "a")
    cur.execute("SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisunique "
                "AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid", (target[0],))
    if not any(set(r[0]) == set(request.key) for r in cur.fetchall()):
        raise PgopsError("Option key: table %s.%s has no unique index or constraint on exactly (%s), which loading by "
                         "key needs." % (target[1], target[2], ", ".join(request.key)))
    return columns


def _lock(cur, target):
    """Other writers wait (readers do not) until the commit; a second load of the table waits too."""
    cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(target[1], target[2])))


def _stage(cur, source, target):
    names = sql.SQL(", ").join(sql.Identifier(c) for c in source.columns)
    cur.execute(sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
        sql.Identifier(STAGING), names, sql.Identifier(target[1], target[2])))
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER {}, ENCODING 'UTF8')").format(
        sql.Identifier(STAGING), names, sql.Literal(getattr(source, "delimiter", ",")))
    handle = source.open()
    try:
        cur.copy_expert(copy.as_string(cur), handle, size=65536)
    finally:
        handle.close()


def _key_match(alias_a, alias_b, key):
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(sql.Identifier(alias_a), sql.Identifier(k), sql.Identifier(alias_b), sql.Identifier(k))
        for k in key)


def _check_keys(cur, request, source):
    for column in request.key:
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(sql.Identifier(STAGING), sql.Identifier(column)))
        nulls = cur.fetchone()[0]
        if nulls:
            raise PgopsError("File %s: %d row(s) have no value in key column %s." % (request.path, nulls, column))
    keys = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in request.key)
    cur.execute(sql.SQL("SELECT {}, count(*) FROM {} GROUP BY {} HAVING count(*) > 1 LIMIT 1").format(
        keys, sql.Identifier(STAGING), keys))
    row = cur.fetchone()
    if row:
        raise PgopsError("File %s has %d rows with key %s; each key may appear once." % (
            request.path, row[-1], _key_text(request.key, row[:-1])))


def _key_text(key, values):
    return ", ".join("%s=%s" % (k, v) for k, v in zip(key, values))


def _differs(columns, left, right):
    """`(left.c::text, ...) IS DISTINCT FROM (right.c::text, ...)` over `columns` (text: every type compares)."""
    def side(alias):
        return sql.SQL(", ").join(sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(c)) for c in columns)
    return sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(side(left), side(right))


def _compare(cur, request, source, target, columns):
    """The counts of what loading would do, and up to diff_rows rows of each kind."""
    table = sql.Identifier(target[1], target[2])
    staging = sql.Identifier(STAGING)
    values = [c for c in source.columns if c not in request.key]
    differs = _differs(values, "t", "s") if values else sql.SQL("false")
    cur.execute(sql.SQL("SELECT count(*) FILTER (WHERE t.ctid IS NULL), count(*) FILTER (WHERE t.ctid IS NOT NULL AND {}), "
                        "count(*) FILTER (WHERE t.ctid IS NOT NULL AND NOT ({})) FROM {} s LEFT JOIN {} t ON {}").format(
        differs, differs, staging, table, _key_match("t", "s", request.key)))
    inserted, updated, unchanged = cur.fetchone()
    deleted = 0
    if request.prune:
        cur.execute(sql.SQL("SELECT count(*) FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
            table, staging, _key_match("t", "s", request.key)))
        deleted = cur.fetchone()[0]
    plan = dict(inserted=inserted, updated=updated, deleted=deleted, unchanged=unchanged,
                changed=bool(inserted or updated or deleted), columns=list(source.columns), key=list(request.key))
    plan["changes"] = _changes(cur, request, source, table, values, differs) if request.diff_rows else []
    return plan


def _changes(cur, request, source, table, values, differs):
    """Up to diff_rows rows of each kind: {action, key, before, after} with the values as text."""
    limit = sql.Literal(request.diff_rows)
    staging = sql.Identifier(STAGING)
    match = _key_match("t", "s", request.key)

    def text_of(alias, cols):
        return sql.SQL(", ").join(sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(c)) for c in cols) \
            if cols else sql.SQL("NULL")

    keys = request.key
    changes = []
    cur.execute(sql.SQL("SELECT {}, {} FROM {} s WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {}) LIMIT {}").format(
        text_of("s", keys), text_of("s", values), staging, table, match, limit))
    for row in cur.fetchall():
        changes.append(dict(action="insert", key=dict(zip(keys, row[:len(keys)])), before=None,
                            after=dict(zip(values, row[len(keys):])) if values else {}))
    if values:
        cur.execute(sql.SQL("SELECT {}, {}, {} FROM {} s JOIN {} t ON {} WHERE {} LIMIT {}").format(
            text_of("s", keys), text_of("t", values), text_of("s", values), staging, table, match, differs, limit))
        n = len(values)
        for row in cur.fetchall():
            old = dict(zip(values, row[len(keys):len(keys) + n]))
            new = dict(zip(values, row[len(keys) + n:]))
            changed = [c for c in values if old[c] != new[c]]
            changes.append(dict(action="update", key=dict(zip(keys, row[:len(keys)])),
                                before=dict((c, old[c]) for c in changed), after=dict((c, new[c]) for c in changed)))
    if request.prune:
        cur.execute(sql.SQL("SELECT {} FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {}) LIMIT {}").format(
            text_of("t", keys), table, staging, match, limit))
        for row in cur.fetchall():
            changes.append(dict(action="delete", key=dict(zip(keys, row)), before={}, after=None))
    return changes


def _write(cur, request, source, target, columns, plan):
    table = sql.Identifier(target[1], target[2])
    staging = sql.Identifier(STAGING)
    if plan["deleted"]:
        cur.execute(sql.SQL("DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
            table, staging, _key_match("t", "s", request.key)))
    if not (plan["inserted"] or plan["updated"]):
        return
    names = sql.SQL(", ").join(sql.Identifier(c) for c in source.columns)
    values = [c for c in source.columns if c not in request.key]
    overriding = sql.SQL(" OVERRIDING SYSTEM VALUE") if any(columns[c][1] for c in source.columns) else sql.SQL("")
    conflict = sql.SQL(", ").join(sql.Identifier(k) for k in request.key)
    if values:
        action = sql.SQL("DO UPDATE SET {} WHERE {}").format(
            sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in values),
            _differs(values, "t", "excluded"))
    else:
        action = sql.SQL("DO NOTHING")
    cur.execute(sql.SQL("INSERT INTO {} AS t ({}){} SELECT {} FROM {} ON CONFLICT ({}) {}").format(
        table, names, overriding, names, staging, conflict, action))


def _explain(exc, request, source):
    """One sentence for a failed load; the file and line when COPY names one."""
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]).strip()
    detail = getattr(diag, "message_detail", None)
    context = getattr(diag, "context", None) or ""
    code = getattr(exc, "pgcode", None)
    found = _COPY_LINE.search(context)
    if found:
        line = int(found.group(1))
        if "unterminated CSV quoted field" in message and hasattr(source, "unclosed_quote_line"):
            line = source.unclosed_quote_line() or line
            message = "a quoted field opens here and is never closed"
        where = source.where(line)
        column = " (column %s)" % found.group(2) if found.group(2) else ""
        return "File %s%s: %s." % (where, column, message)
    if code == "23503":
        return "Loading %s into %s failed and nothing was changed: %s%s." % (
            request.path, request.table, message, " (%s)" % detail if detail else "")
    if code == "23502":
        return ("Loading %s into %s failed and nothing was changed: %s; the file must give that column a value, or the "
                "table a default." % (request.path, request.table, message))
    if code == "55P03":
        return "Loading %s into %s gave up waiting for a lock another session holds (lock_timeout %d s); nothing was changed." % (
            request.path, request.table, request.lock_timeout)
    return "Loading %s into %s failed and nothing was changed: %s%s." % (
        request.path, request.table, message, " (%s)" % detail if detail else "")
