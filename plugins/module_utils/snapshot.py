# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""db_snapshot: what the runbooks compare before and after a migration or restore.

A snapshot is taken in one REPEATABLE READ, read-only transaction (every figure
from the same instant) with a fixed number of statements: exact row counts too
are gathered server-side in one statement. The schema fingerprint hashes a
normalised description of every user object; per-object hashes are kept so a
comparison can name what changed. Names are printed with search_path set to
pg_catalog, so every user object is schema-qualified and OIDs never appear.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json

try:
    import psycopg2
    import psycopg2.extensions
    import psycopg2.extras
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import not_extension_member, user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect, explain_query_error
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

SNAPSHOT_FORMAT = 1

_USER_RELATION = user_namespace("n") + " AND " + not_extension_member("c.oid")

CONTEXT_SQL = """
SELECT current_database() AS database, current_setting('server_version') AS server_version,
       current_setting('server_version_num')::int AS server_version_num, now() AS taken_at,
       pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate, d.datctype AS ctype,
       pg_get_userbyid(d.datdba) AS owner
FROM pg_database d WHERE d.datname = current_database()
"""

# reltuples is -1 (PostgreSQL 14+) or 0 for a table never vacuumed or analyzed.
TABLES_SQL = """
SELECT n.nspname || '.' || c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS estimated_rows,
       {exact} AS exact_rows,
       pg_table_size(c.oid) AS table_bytes, pg_indexes_size(c.oid) AS index_bytes,
       pg_total_relation_size(c.oid) AS total_bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND """ + _USER_RELATION + """
ORDER BY 1
"""

# count(*) of every table in this one statement: the server formats each query
# with %I (identifiers quoted by PostgreSQL itself) and runs it via query_to_xml.
# A materialized view created WITH NO DATA cannot be read: its count is NULL.
EXACT_COUNT = ("CASE WHEN c.relkind = 'm' AND NOT c.relispopulated THEN NULL ELSE "
               "(xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), "
               "false, true, '')))[1]::text::bigint END")

INDEXES_SQL = """
SELECT n.nspname || '.' || c.relname AS name, i.indrelid::regclass::text AS "table",
       i.indisvalid AS valid, i.indisunique AS "unique", i.indisprimary AS "primary",
       pg_get_indexdef(i.indexrelid) AS definition, pg_relation_size(i.indexrelid) AS bytes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE """ + _USER_RELATION + """
ORDER BY 1
"""

CONSTRAINTS_SQL = """
SELECT CASE WHEN k.conrelid <> 0 THEN k.conrelid::regclass::text ELSE k.contypid::regtype::text END
       || '.' || k.conname AS name,
       CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key' WHEN 'u' THEN 'unique'
                      WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' ELSE k.contype::text END AS type,
       pg_get_constraintdef(k.oid) AS definition, k.convalidated AS validated
FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
WHERE """ + user_namespace("n") + " AND " + not_extension_member("k.oid", "pg_constraint") + """
ORDER BY 1
"""

# One row per schema object: (kind, name, normalised description). Column order is
# the order among live columns, so a dump and restore (which drops the gaps
# dropped columns leave in attnum) keeps the same fingerprint.
SCHEMA_OBJECTS_SQL = """
SELECT 'table' AS kind, n.nspname || '.' || c.relname AS name,
       json_build_object('kind', c.relkind, 'persistence', c.relpersistence,
         'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
         'columns', (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                                      pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                                                      CASE WHEN a.attcollation <> t.typcollation THEN co.collname END)
                                     ORDER BY a.attnum)
                     FROM pg_attribute a
                     JOIN pg_type t ON t.oid = a.atttypid
                     LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                     LEFT JOIN pg_collation co ON co.oid = a.attcollation
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))::text AS description
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND """ + _USER_RELATION + """
UNION ALL
SELECT 'view', n.nspname || '.' || c.relname, c.relkind::text || ' ' || pg_get_viewdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND """ + _USER_RELATION + """
UNION ALL
SELECT 'index', n.nspname || '.' || c.relname, pg_get_indexdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('i', 'I') AND """ + _USER_RELATION + """
UNION ALL
SELECT 'sequence', n.nspname || '.' || c.relname,
       json_build_array(format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)::text
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE """ + _USER_RELATION + """
UNION ALL
SELECT 'constraint', CASE WHEN k.conrelid <> 0 THEN k.conrelid::regclass::text ELSE k.contypid::regtype::text END
                     || '.' || k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
WHERE """ + user_namespace("n") + " AND " + not_extension_member("k.oid", "pg_constraint") + """
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
       json_build_array(p.prokind::text, l.lanname, pg_get_function_result(p.oid), p.provolatile, p.prosecdef,
                        p.proisstrict, p.proconfig, md5(p.prosrc))::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE """ + user_namespace("n") + " AND " + not_extension_member("p.oid", "pg_proc") + """
UNION ALL
SELECT 'trigger', c.oid::regclass::text || '.' || tg.tgname, pg_get_triggerdef(tg.oid)
FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT tg.tgisinternal AND """ + _USER_RELATION + """
UNION ALL
SELECT 'type', t.oid::regtype::text,
       CASE t.typtype WHEN 'e' THEN (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                                     WHERE e.enumtypid = t.oid)::text
                      WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull::text
                                    || coalesce(' default ' || t.typdefault, '')
                      ELSE t.typtype::text END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd') AND """ + user_namespace("n") + " AND " + not_extension_member("t.oid", "pg_type") + """
UNION ALL
SELECT 'extension', e.extname, e.extversion FROM pg_extension e
"""


def _json_safe(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


def object_hash(kind, name, description):
    return hashlib.sha256(("%s\0%s\0%s" % (kind, name, description)).encode("utf-8")).hexdigest()[:16]


def fingerprint_of(schema_objects):
    """The schema fingerprint: sha256 over the sorted per-object hashes."""
    digest = hashlib.sha256()
    for key in sorted(schema_objects):
        digest.update(("%s=%s\n" % (key, schema_objects[key])).encode("utf-8"))
    return digest.hexdigest()


def take_snapshot(settings, exact_counts=False, lock_timeout_s=30, descriptions=False):
    """Read the snapshot of the database `settings` points at, in a transaction of its own
    (with descriptions, also each schema object's normalised definition, for a readable diff).
    Returns (snapshot, statements sent)."""
    session = dict(search_path="pg_catalog", lock_timeout="%ds" % lock_timeout_s)
    conn, dummy = connect(settings, application_name="pgops.runbook db_snapshot", autocommit=True, session_options=session)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            run_statement(cur, "a consistent snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot, statements = read_snapshot(cur, exact_counts, descriptions)
            run_statement(cur, "the end of the snapshot", "ROLLBACK")
    finally:
        conn.close()
    return snapshot, statements + 2


def run_statement(cur, what, sql, params=None):
    """Execute one statement; rows as JSON-safe dicts. Errors become one PgopsError sentence."""
    try:
        cur.execute(sql, params)
    except psycopg2.Error as exc:
        raise PgopsError(explain_query_error(exc, what))
    if not cur.description:
        return []
    return [dict((k, _json_safe(v)) for k, v in r.items()) for r in cur.fetchall()]


def read_snapshot(cur, exact_counts=False, descriptions=False):
    """The snapshot, read through `cur` (a RealDictCursor) inside the caller's REPEATABLE
    READ transaction, e.g. the one whose snapshot pg_dump uses. Names are printed
    schema-qualified only when search_path is pg_catalog: the caller sets it.
    Returns (snapshot, statements sent)."""
    head = run_statement(cur, "the database's description", CONTEXT_SQL)[0]
    tables = run_statement(cur, "tables", TABLES_SQL.replace("{exact}", EXACT_COUNT if exact_counts else "NULL::bigint"))
    indexes = run_statement(cur, "indexes", INDEXES_SQL)
    constraints = run_statement(cur, "constraints", CONSTRAINTS_SQL)
    objects = run_statement(cur, "the schema description", SCHEMA_OBJECTS_SQL)

    schema_objects = dict(("%s %s" % (o["kind"], o["name"]), object_hash(o["kind"], o["name"], o["description"]))
                          for o in objects)
    table_map = {}
    for t in tables:
        rows_value = t["exact_rows"] if exact_counts else t["estimated_rows"]
        table_map[t["name"]] = dict(kind=t["kind"], rows=rows_value, estimated_rows=t["estimated_rows"],
                                    table_bytes=t["table_bytes"], index_bytes=t["index_bytes"], total_bytes=t["total_bytes"])
    snapshot = dict(
        format=SNAPSHOT_FORMAT,
        database=head["database"],
        server_version=head["server_version"],
        server_version_num=head["server_version_num"],
        taken_at=head["taken_at"],
        encoding=head["encoding"],
        collate=head["collate"],
        ctype=head["ctype"],
        owner=head["owner"],
        exact_counts=bool(exact_counts),
        tables=table_map,
        indexes=dict((i.pop("name"), i) for i in indexes),
        constraints=dict((c.pop("name"), c) for c in constraints),
        schema_objects=schema_objects,
        fingerprint=fingerprint_of(schema_objects),
        total_bytes=sum(t["total_bytes"] for t in tables),
    )
    if descriptions:
        snapshot["schema_descriptions"] = dict(("%s %s" % (o["kind"], o["name"]), o["description"]) for o in objects)
    return snapshot, 5


def load_snapshot(value, option="compare_to"):
    """A snapshot from a dict or a JSON file path; PgopsError naming `option` otherwise."""
    if isinstance(value, str):
        try:
            with open(value) as handle:
                value = json.load(handle)
        except (IOError, OSError) as exc:
            raise PgopsError("Option %s: cannot read %s: %s." % (option, value, exc.strerror or exc))
        except ValueError:
            raise PgopsError("Option %s: %s is not a JSON snapshot." % (option, value))
    if not isinstance(value, dict) or not all(k in value for k in ("tables", "indexes", "constraints", "fingerprint")):
        raise PgopsError("Option %s must be a snapshot made by db_snapshot (a dict or a JSON file with tables, "
                         "indexes, constraints and fingerprint)." % option)
    return value


def _row_change(before, after, tolerance_pct):
    if before is None or after is None:
        return None
    change = abs(after - before)
    pct = 100.0 * change / max(before, 1)
    return round(pct, 2) if pct > tolerance_pct else None


def compare_snapshots(baseline, current, row_tolerance_pct=0.0):
    """The differences between two snapshots, each {kind, object, before, after, message}."""
    diffs = []

    def add(kind, obj, before, after, message):
        diffs.append(dict(kind=kind, object=obj, before=before, after=after, message=message))

    old_tables, new_tables = baseline["tables"], current["tables"]
    for name in sorted(set(old_tables) - set(new_tables)):
        add("table_removed", name, old_tables[name].get("rows"), None, "Table %s is gone." % name)
    for name in sorted(set(new_tables) - set(old_tables)):
        add("table_added", name, None, new_tables[name].get("rows"), "Table %s is new." % name)
    for name in sorted(set(old_tables) & set(new_tables)):
        before, after = old_tables[name].get("rows"), new_tables[name].get("rows")
        pct = _row_change(before, after, row_tolerance_pct)
        if pct is not None:
            add("rows_changed", name, before, after, "Table %s has %s rows, %s before (%.2f %% change, tolerance %s %%)."
                % (name, after, before, pct, row_tolerance_pct))

    old_idx, new_idx = baseline["indexes"], current["indexes"]
    for name in sorted(set(old_idx) - set(new_idx)):
        add("index_lost", name, old_idx[name].get("definition"), None, "Index %s is gone." % name)
    for name in sorted(set(new_idx)):
        if not new_idx[name].get("valid", True) and (name not in old_idx or old_idx[name].get("valid", True)):
            add("index_invalid", name, True if name in old_idx else None, False, "Index %s is invalid." % name)

    old_con, new_con = baseline["constraints"], current["constraints"]
    for name in sorted(set(old_con) - set(new_con)):
        add("constraint_lost", name, old_con[name].get("definition"), None, "Constraint %s is gone." % name)
    for name in sorted(set(new_con)):
        if not new_con[name].get("validated", True) and (name not in old_con or old_con[name].get("validated", True)):
            add("constraint_not_valid", name, True if name in old_con else None, False,
                "Constraint %s is NOT VALID." % name)

    if baseline["fingerprint"] != current["fingerprint"]:
        old_obj, new_obj = baseline.get("schema_objects") or {}, current.get("schema_objects") or {}
        changed = sorted(k for k in set(old_obj) | set(new_obj) if old_obj.get(k) != new_obj.get(k))
        add("fingerprint_changed", "schema", baseline["fingerprint"], current["fingerprint"],
            "The schema fingerprint changed (%d objects differ%s)." % (
                len(changed), ": " + ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else "") if changed else ""))
        for key in changed:
            state = "added" if key not in old_obj else "removed" if key not in new_obj else "changed"
            add("schema_object_" + state, key, old_obj.get(key), new_obj.get(key), "Schema object %s %s." % (key, state))
    return diffs
