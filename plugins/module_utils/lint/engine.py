# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration_lint's engine: parse each source with PostgreSQL's own grammar (pglast),
walk its statements in order (tracking explicit transactions, SET lock_timeout and the
tables the migration itself creates), run every selected rule on each statement, and
turn the hits into findings: the rule, severity, file, line, statement, the lock and
table, the table's size when connected, why it is dangerous and the safe way.

With a connection, a size-sensitive finding follows the real table: info under
small_table_rows / small_table_bytes, error over large_table_rows. A statement on a
table created earlier in the same migration never warns. Suppressions are comments:
`-- pgops-lint: ignore <rule>[, <rule>]` in (or just before) a statement, or
`-- pgops-lint: ignore-file <rule>` anywhere in a file; an unused one is reported."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

try:
    import pglast
    from pglast import ast as pg_ast
    from pglast.enums import TransactionStmtKind
    HAS_PGLAST = True
except ImportError:
    HAS_PGLAST = False

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ERROR, INFO, SEVERITIES, WARNING, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.registry import RULES
from ansible_collections.pgops.runbook.plugins.module_utils.sql_script import SqlScriptError, describe, header_directives, \
    needs_no_transaction, split_statements

_SUPPRESSION = re.compile(r"--\s*pgops-lint\s*:\s*(ignore-file|ignore)\s+([A-Za-z0-9_, -]+)", re.IGNORECASE)
DEFAULT_THRESHOLDS = dict(small_table_rows=10000, small_table_bytes=10 * 1024 * 1024, large_table_rows=1000000)


class Source:
    """One input: a file, an inline `sql`, or a pending migration. `wrapped` says whether its
    runner puts it in a transaction (a migration file, unless it is a no-transaction one)."""

    def __init__(self, name, text, wrapped):
        self.name = name
        self.text = text
        self.wrapped = wrapped


class LintStatement:
    """One parsed statement and where it is."""

    def __init__(self, source, node, text, line, index, in_transaction, nodes=()):
        self.source = source
        self.node = node
        self.text = text
        self.line = line
        self.index = index
        self.in_transaction = in_transaction
        self._nodes = nodes  # every statement's node in the source (None where one did not parse)

    def following(self):
        """The parsed statements after this one in the same source (a rule whose fix is a later statement looks here)."""
        return [node for node in self._nodes[self.index + 1:] if node is not None]


class LintState:
    """What the statements before this one did, in this source."""

    def __init__(self, server_version_num, lock_timeout_set):
        self.server_version_num = server_version_num
        self.lock_timeout_set = lock_timeout_set
        self.created_tables = set()  # schema.name as written, or name when unqualified: use note_created_table
        self.created_indexes = set()  # index names (and schema.name) created earlier in this source
        self.explicit_transaction = False
        self.transaction_depth = 0
        self._memory = {}

    def memory(self, rule_name, factory=dict):
        """A rule's own notes about the statements before this one in this source (made by `factory` on first use)."""
        if rule_name not in self._memory:
            self._memory[rule_name] = factory()
        return self._memory[rule_name]

    def note_created_table(self, name):
        """Record a table (schema.name or name, as written) created or renamed into place in this source."""
        self.created_tables.add(name)

    def table_created_here(self, name):
        """Whether the table `name` (schema.name or name, as written) was created earlier in this source. An unqualified
        name matches a table of that name created in any schema; public.t also matches a table created as plain t."""
        if not name:
            return False
        if name in self.created_tables:
            return True
        if "." in name:
            schema, bare = name.rsplit(".", 1)
            return schema == "public" and bare in self.created_tables
        return any(created.rsplit(".", 1)[-1] == name for created in self.created_tables)

    def index_created_here(self, name):
        """Whether the index `name` (schema.name or name) was created earlier in this source."""
        return bool(name) and (name in self.created_indexes or name.split(".")[-1] in self.created_indexes)


def require_pglast():
    if not HAS_PGLAST:
        raise PgopsError("The pglast Python library is required on the host that runs migration_lint (pip install pglast).")


def select_rules(rules=None, exclude_rules=None):
    """The rules to run: all, or those named in `rules`, minus `exclude_rules` (unknown names refused)."""
    known = dict((rule.name, rule) for rule in RULES)
    for option, names in (("rules", rules), ("exclude_rules", exclude_rules)):
        unknown = sorted(set(names or []) - set(known))
        if unknown:
            raise PgopsError("Option %s: unknown rule %s (known: %s)." % (option, ", ".join(unknown), ", ".join(sorted(known))))
    chosen = [known[name] for name in rules] if rules else list(RULES)
    return [rule for rule in chosen if rule.name not in set(exclude_rules or [])]


def _line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def _statements(source):
    """[(node or None, text, line, error, text with the comments before it)] of a source, in order;
    a source that does not parse gives one entry with the parser's message and position."""
    data = source.text.encode("utf-8")
    try:
        parsed = pglast.parse_sql(source.text)
    except pglast.parser.ParseError as exc:
        return _statements_one_by_one(source.text, exc)
    out = []
    previous_end = 0
    for raw in parsed:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(data)
        # The comments between the previous statement and this one belong to it (suppressions in them apply to it).
        lead = data[previous_end:start].decode("utf-8", "replace").lstrip(";")
        chunk = data[start:end].decode("utf-8", "replace")
        body = re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*\s*", "", chunk, flags=re.S)
        offset = len(data[:start].decode("utf-8", "replace")) + len(chunk) - len(body)
        out.append((raw.stmt, body.strip(), _line_of(source.text, offset), None, (lead + chunk)))
        previous_end = end
    return out


def _parse_error(text, exc):
    """(line within `text`, message) of a pglast ParseError (its location is a byte offset)."""
    location = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
    offset = len(text.encode("utf-8")[:location].decode("utf-8", "ignore"))
    return _line_of(text, offset), str(exc.args[0] if exc.args else exc)


def _statements_one_by_one(text, error):
    """When a source does not parse whole: split it where psql would and parse each statement,
    so one bad statement is one finding and the others are still judged."""
    try:
        pieces = split_statements(text)
    except SqlScriptError:
        pieces = []
    if len(pieces) < 2:
        line, message = _parse_error(text, error)
        return [(None, text.strip(), line, message, text)]
    out = []
    for piece in pieces:
        try:
            parsed = pglast.parse_sql(piece.text)
        except pglast.parser.ParseError as exc:
            line, message = _parse_error(piece.text, exc)
            out.append((None, piece.text.strip(), piece.line + line - 1, message, piece.text))
            continue
        out.extend((raw.stmt, piece.text.strip(), piece.line, None, piece.text) for raw in parsed)
    return out


def _suppressions(text):
    """([(kind, set of rules, line)]) of the suppression comments in `text`."""
    found = []
    for match in _SUPPRESSION.finditer(text):
        names = set(n.strip().lower() for n in re.split(r"[,\s]+", match.group(2)) if n.strip())
        found.append((match.group(1).lower(), names, _line_of(text, match.start())))
    return found


def lint(sources, rules, facts=None, thresholds=None, server_version_num=None, lock_timeout_set=False):
    """Findings (dicts) for `sources` with `rules`; `facts(table)` gives {rows, bytes} or None when connected."""
    require_pglast()
    limits = dict(DEFAULT_THRESHOLDS)
    limits.update(thresholds or {})
    findings = []
    started = time.monotonic()
    count = 0
    for source in sources:
        state = LintState(server_version_num, lock_timeout_set)
        file_suppressed = {}
        for kind, names, line in _suppressions(source.text):
            if kind == "ignore-file":
                for name in names:
                    file_suppressed[name] = dict(line=line, used=False)
        entries = _statements(source)
        nodes = tuple(entry[0] for entry in entries)
        wrapped = source.wrapped and _runs_in_transaction(source, entries)
        for index, (node, text, line, error, annotated) in enumerate(entries):
            count += 1
            if error is not None:
                findings.append(_finding("syntax-error", ERROR, source, line, text, why="the statement does not parse: %s" % error,
                                         fix="fix the SQL; nothing else in this file was inspected"))
                continue
            statement = LintStatement(source, node, text, line, index, wrapped or state.explicit_transaction, nodes)
            suppressed = dict((name, dict(line=line, used=False)) for kind, names, dummy in _suppressions(annotated)
                              if kind == "ignore" for name in names)
            for rule in rules:
                for hit in rule.check(statement, state) or ():
                    finding = _judge(rule, hit, statement, state, facts, limits)
                    if finding is None:
                        continue
                    if rule.name in suppressed:
                        suppressed[rule.name]["used"] = True
                        continue
                    if rule.name in file_suppressed:
                        file_suppressed[rule.name]["used"] = True
                        continue
                    findings.append(finding)
            _advance(statement, state)
            for name, mark in sorted(suppressed.items()):
                if not mark["used"]:
                    findings.append(_finding("unused-suppression", WARNING, source, mark["line"], text,
                                             why="the comment suppresses %s, which does not apply to this statement" % name,
                                             fix="remove the suppression (an unneeded one hides the next real finding)"))
        for name, mark in sorted(file_suppressed.items()):
            if not mark["used"]:
                findings.append(_finding("unused-suppression", WARNING, source, mark["line"], "",
                                         why="the file-wide suppression of %s matches nothing in the file" % name,
                                         fix="remove the suppression"))
    return findings, dict(statements=count, seconds=round(time.monotonic() - started, 4))


def _runs_in_transaction(source, entries):
    """Whether a migration runner wraps this file in a transaction: not when it says
    no-transaction, nor when every statement must run outside one (the migrate module's rule, which
    reads the files before it knows the server: so the server version is not asked here either)."""
    try:
        if "no-transaction" in header_directives(source.text):
            return False
    except PgopsError:
        pass
    texts = [entry[1] for entry in entries if entry[3] is None]
    return not (texts and all(needs_no_transaction(text) for text in texts))


def _advance(statement, state):
    """What this statement changes for the next ones."""
    node = statement.node
    if HAS_PGLAST and isinstance(node, pg_ast.TransactionStmt):
        if node.kind in (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START):
            state.explicit_transaction = True
            state.transaction_depth += 1
        elif node.kind in (TransactionStmtKind.TRANS_STMT_COMMIT, TransactionStmtKind.TRANS_STMT_ROLLBACK):
            state.explicit_transaction = False
            state.transaction_depth = 0
    elif HAS_PGLAST and isinstance(node, pg_ast.VariableSetStmt) and (node.name or "").lower() == "lock_timeout":
        state.lock_timeout_set = True
    elif HAS_PGLAST and isinstance(node, pg_ast.IndexStmt) and node.idxname:
        state.created_indexes.add(node.idxname)
        if node.relation is not None and node.relation.schemaname:
            state.created_indexes.add("%s.%s" % (node.relation.schemaname, node.idxname))
    elif HAS_PGLAST and isinstance(node, (pg_ast.CreateStmt, pg_ast.CreateTableAsStmt)):
        relation = node.relation if isinstance(node, pg_ast.CreateStmt) else node.into.rel
        state.note_created_table(table_name(relation))


def _judge(rule, hit, statement, state, facts, limits):
    """The finding for a hit, or None when it does not apply (a table this migration created)."""
    table = hit.table
    if state.table_created_here(table):
        return None
    severity = hit.severity or rule.severity
    size = facts(table) if facts and table else None
    if size and rule.size_sensitive:
        if (size["rows"] is not None and size["rows"] < limits["small_table_rows"]) and size["bytes"] < limits["small_table_bytes"]:
            severity = INFO
        elif size["rows"] is not None and size["rows"] > limits["large_table_rows"]:
            severity = ERROR
    why = rule.why + (" %s" % hit.detail if hit.detail else "")
    return _finding(rule.name, severity, statement.source, statement.line, statement.text, why=why, fix=rule.fix,
                    lock=hit.lock, table=table, size=size)


def _finding(rule, severity, source, line, text, why, fix, lock=None, table=None, size=None):
    return dict(rule=rule, severity=severity, file=source.name, line=line, statement=describe(text, 200), lock=lock,
                table=table, table_rows=size["rows"] if size else None, table_bytes=size["bytes"] if size else None,
                why=why, fix=fix)


def summarize(findings, statements, fail_on):
    """The summary dict and whether the policy fails the run."""
    counts = dict((severity, len([f for f in findings if f["severity"] == severity])) for severity in SEVERITIES)
    failing = {"error": (ERROR,), "warning": (ERROR, WARNING), "never": ()}[fail_on]
    fails = any(f["severity"] in failing for f in findings)
    line = "%d statements: %d errors, %d warnings, %d info" % (statements, counts[ERROR], counts[WARNING], counts[INFO])
    return dict(counts, statements=statements, line=line, failed=fails), fails
