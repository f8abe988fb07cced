# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""query_check engine: SQL assertions and query timings, read-only.

Every assertion and timing runs alone in a READ ONLY transaction that is rolled
back, under statement_timeout, so none can change data (the server refuses the
write, and the error names the assertion). A query is one statement: a second one
could end the read-only transaction. Timings are the server's own execution time
(EXPLAIN ANALYZE with TIMING OFF: no rows cross the network), the median of
`repeat` runs after a warm-up run; compared with a baseline of an earlier run,
a query slower by more than max_slowdown_pct fails the check. Optionally ANALYZE
first (outside the read-only transactions), so the planner sees fresh statistics.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math

try:
    import psycopg2
    import psycopg2.extras
    import psycopg2.sql
except ImportError:  # pragma: no cover - the module reports the missing library
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.connection import connect
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.sql_script import SqlScriptError, split_statements

_READ_ONLY = "25006"
_TIMEOUT = "57014"


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_items(items, option, keys):
    """`items` (list of dicts) with unique names and one SQL statement each; PgopsError otherwise."""
    seen = set()
    for position, item in enumerate(items or []):
        name = item.get("name")
        if not name:
            raise PgopsError("Option %s: item %d has no name." % (option, position + 1))
        if name in seen:
            raise PgopsError("Option %s: the name %r is used twice." % (option, name))
        seen.add(name)
        try:
            statements = split_statements(item.get("sql") or "")
        except SqlScriptError as exc:
            raise PgopsError("Option %s: %r: %s" % (option, name, exc.message))
        if len(statements) != 1:
            raise PgopsError("Option %s: %r must be exactly one SQL statement, got %d." % (option, name, len(statements)))
        item["sql"] = statements[0].text
        if "rows" in keys and item.get("rows") is not None and item.get("expect") is not None:
            raise PgopsError("Option %s: %r sets both expect and rows; an assertion checks one of them." % (option, name))
        if "rows" in keys and item.get("rows") is not None and item["rows"] < 0:
            raise PgopsError("Option %s: %r: rows must be 0 or more." % (option, name))
    return items


def load_baseline(value):
    """{name: median_ms} from an earlier result (a dict with `timings`), its `timings` list,
    or the path of a JSON file holding either; PgopsError naming option baseline otherwise."""
    if value is None or value == "" or value == {} or value == []:
        return {}
    if isinstance(value, str):
        try:
            with open(value) as handle:
                value = json.load(handle)
        except (IOError, OSError) as exc:
            raise PgopsError("Option baseline: cannot read %s: %s." % (value, exc.strerror or exc))
        except ValueError:
            raise PgopsError("Option baseline: %s is not JSON." % value)
    if isinstance(value, dict):
        value = value.get("timings")
    if not isinstance(value, list) or not all(isinstance(t, dict) and t.get("name") and _is_number(t.get("median_ms"))
                                              for t in value):
        raise PgopsError("Option baseline must be an earlier query_check result (or its timings list, or a JSON file "
                         "holding either) whose timings each have a name and a median_ms.")
    return dict((t["name"], float(t["median_ms"])) for t in value)


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def slowdown(before_ms, after_ms):
    """Percent by which `after_ms` is slower than `before_ms` (negative when faster)."""
    return round(100.0 * (after_ms - before_ms) / max(before_ms, 0.001), 1)


def judge_timing(timing, before_ms, max_slowdown_pct, min_slowdown_ms):
    """Add before_ms, slowdown_pct and slowed to a measured timing."""
    timing["before_ms"] = before_ms
    if before_ms is None:
        timing.update(slowdown_pct=None, slowed=False)
        return timing
    pct = slowdown(before_ms, timing["median_ms"])
    timing["slowdown_pct"] = pct
    timing["slowed"] = pct > max_slowdown_pct and timing["median_ms"] - before_ms >= min_slowdown_ms
    return timing


def judge_assertion(assertion, rows, columns):
    """{name, ok, value, expected, message} for an assertion's result rows."""
    name = assertion["name"]
    if assertion.get("rows") is not None:
        expected = assertion["rows"]
        ok = len(rows) == expected
        return dict(name=name, ok=ok, value=len(rows), expected="%d rows" % expected,
                    message="%s: %d rows%s." % (name, len(rows), "" if ok else ", %d expected" % expected))
    expected = True if assertion.get("expect") is None else assertion["expect"]
    if len(rows) != 1 or len(columns) != 1:
        return dict(name=name, ok=False, value=None, expected=expected,
                    message="%s: returned %d rows of %d columns; an assertion with expect must return one value."
                    % (name, len(rows), len(columns)))
    value = rows[0][0]
    if isinstance(expected, bool) or isinstance(value, bool):
        ok = value is expected
    elif _is_number(expected) and _is_number(_plain(value)):
        ok = math.isclose(float(_plain(value)), float(expected))
    else:
        ok = str(_plain(value)) == str(expected)
    return dict(name=name, ok=ok, value=_plain(value), expected=expected,
                message="%s: %s%s." % (name, _plain(value), "" if ok else ", expected %s" % (expected,)))


def _plain(value):
    """A JSON-friendly value (Decimal -> int or float; other non-JSON types -> str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        number = float(value)
        return int(number) if number == int(number) else number
    except (TypeError, ValueError, OverflowError):
        return str(value)


def _plan_summary(plan):
    """The scans of an EXPLAIN plan, e.g. ['Seq Scan on patients', 'Index Scan on visits']."""
    found = []

    def walk(node):
        label = node.get("Node Type", "?")
        if node.get("Relation Name"):
            label += " on " + node["Relation Name"]
        if "Scan" in label or not node.get("Plans"):
            found.append(label)
        for child in node.get("Plans") or []:
            walk(child)

    walk(plan)
    return found


class QueryRunner:
    """One connection; each query alone in a rolled-back READ ONLY transaction."""

    def __init__(self, conn, statement_timeout_s):
        self.conn = conn
        self.statement_timeout_s = statement_timeout_s
        self.statements = 0

    def run(self, kind, name, sql, params=None):
        """(rows, column names) of one read-only statement; a PgopsError naming the item when it fails."""
        try:
            with self.conn.cursor() as cur:
                self.statements += 2
                cur.execute("BEGIN TRANSACTION READ ONLY")
                try:
                    self.statements += 1
                    cur.execute(sql, params)
                    rows = cur.fetchall() if cur.description else []
                    columns = [c[0] for c in cur.description or ()]
                finally:
                    if not self.conn.closed:
                        cur.execute("ROLLBACK")
            return rows, columns
        except psycopg2.Error as exc:
            raise self.explain(exc, kind, name)

    def explain(self, exc, kind, name):
        option = "assertions" if kind == "assertion" else "timings"
        detail = (getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)).strip().splitlines()
        detail = detail[0] if detail else type(exc).__name__
        code = getattr(exc, "pgcode", None)
        if self.conn.closed:
            return PgopsError("The connection to the server was lost during %s %r: %s." % (kind, name, detail))
        if code == _READ_ONLY:
            return PgopsError("Option %s: %s %r tries to change the database (%s); query_check only reads."
                              % (option, kind, name, detail))
        if code == _TIMEOUT:
            return PgopsError("The %s %r was cancelled after statement_timeout (%d s) - a slow query or a lock held "
                              "by another session: %s." % (kind, name, self.statement_timeout_s, detail))
        return PgopsError("The %s %r failed: %s." % (kind, name, detail))

    def time(self, timing, repeat):
        """median_ms, runs_ms and plan of one timed query: a warm-up run, then `repeat` measured runs."""
        explain = "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) " + timing["sql"]
        runs, plan = [], None
        for attempt in range(repeat + 1):
            rows, dummy = self.run("timing", timing["name"], explain)
            document = rows[0][0]
            if isinstance(document, str):
                document = json.loads(document)
            if attempt:
                runs.append(round(float(document[0]["Execution Time"]), 3))
                plan = document[0]["Plan"]
        return dict(name=timing["name"], median_ms=round(median(runs), 3), runs_ms=runs, plan=_plan_summary(plan))


def _analyze_targets(tables):
    targets = []
    for table in tables:
        parts = table.split(".")
        if not table or len(parts) > 2 or not all(parts):
            raise PgopsError("Option analyze_tables: %r is not a table name (table or schema.table)." % table)
        targets.append(psycopg2.sql.Identifier(*parts))
    return targets


def analyze(conn, tables):
    """ANALYZE `tables` (schema.table or table), or the whole database when empty; the statements sent."""
    with conn.cursor() as cur:
        try:
            if tables:
                cur.execute(psycopg2.sql.SQL("ANALYZE {}").format(psycopg2.sql.SQL(", ").join(_analyze_targets(tables))))
            else:
                cur.execute("ANALYZE")
        except psycopg2.Error as exc:
            detail = (getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)).strip()
            if getattr(exc, "pgcode", None) == "42P01":
                raise PgopsError("Option analyze_tables: %s." % detail)
            raise PgopsError("ANALYZE failed: %s." % detail)
    return 1


def run_query_check(settings, assertions=None, timings=None, repeat=5, baseline=None, max_slowdown_pct=50.0,
                    min_slowdown_ms=1.0, statement_timeout=30, analyze_first=False, analyze_tables=None, check_mode=False):
    """Connect once; ANALYZE when asked (not in check mode); run the assertions, then the timings."""
    if repeat < 1:
        raise PgopsError("Option repeat must be 1 or more, got %s." % repeat)
    if max_slowdown_pct < 0:
        raise PgopsError("Option max_slowdown_pct must be 0 or more, got %s." % max_slowdown_pct)
    if statement_timeout < 1:
        raise PgopsError("Option statement_timeout must be 1 second or more, got %s." % statement_timeout)
    if analyze_tables and not analyze_first:
        raise PgopsError("Option analyze_tables goes with analyze=true.")
    assertions = check_items([dict(a) for a in assertions or []], "assertions", ("rows",))
    timings = check_items([dict(t) for t in timings or []], "timings", ())
    before = load_baseline(baseline)
    if analyze_tables:
        _analyze_targets(analyze_tables)
    conn, dummy = connect(settings, application_name="pgops.runbook query_check",
                          session_options=dict(statement_timeout="%ds" % statement_timeout,
                                               idle_in_transaction_session_timeout="60s"))
    result = dict(changed=False, analyzed=[], assertions=[], timings=[])
    try:
        runner = QueryRunner(conn, statement_timeout)
        if analyze_first:
            result["analyzed"] = list(analyze_tables or ["(database)"])
            result["changed"] = True
            if not check_mode:
                runner.statements += analyze(conn, analyze_tables)
        for assertion in assertions:
            rows, columns = runner.run("assertion", assertion["name"], assertion["sql"])
            result["assertions"].append(judge_assertion(assertion, rows, columns))
        for timing in timings:
            measured = runner.time(timing, repeat)
            result["timings"].append(judge_timing(measured, before.get(timing["name"]), max_slowdown_pct, min_slowdown_ms))
        result["statements"] = runner.statements
    finally:
        conn.close()
    failing = [a for a in result["assertions"] if not a["ok"]]
    slowed = [t for t in result["timings"] if t["slowed"]]
    parts = []
    if failing:
        parts.append("%d of %d assertions failed: %s" % (len(failing), len(assertions),
                                                         "; ".join(a["message"].rstrip(".") for a in failing)))
    if slowed:
        described = ["%s %.3f ms -> %.3f ms (+%s %%, now %s)" % (
            t["name"], t["before_ms"], t["median_ms"], _number(t["slowdown_pct"]), ", ".join(t["plan"][:3])) for t in slowed]
        parts.append("%d of %d queries are more than %s %% slower than the baseline: %s" % (
            len(slowed), len(timings), _number(max_slowdown_pct), "; ".join(described)))
    result["failed"] = bool(parts)
    if parts:
        result["msg"] = ". ".join(parts) + "."
    else:
        result["msg"] = "%d assertions held; %d queries timed%s." % (
            len(assertions), len(timings), ", none slower than the baseline allows" if before and timings else "")
    return result


def _number(value):
    return ("%d" % value) if float(value) == int(value) else ("%s" % value)
