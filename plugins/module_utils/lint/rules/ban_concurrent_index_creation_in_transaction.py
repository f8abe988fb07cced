# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ban-concurrent-index-creation-in-transaction: CREATE INDEX CONCURRENTLY, DROP INDEX
CONCURRENTLY and REINDEX CONCURRENTLY inside a transaction block (an explicit BEGIN, or a
migration file its runner wraps in a transaction) fail."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import ObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ERROR, Hit, Rule, table_name

_FALSE = ("0", "f", "fa", "fal", "fals", "false", "n", "no", "of", "off")


def option_enabled(option):
    """Whether a boolean DefElem option (CONCURRENTLY, CONCURRENTLY false, CONCURRENTLY 0, ...) is on."""
    if option.arg is None:
        return True
    if isinstance(option.arg, ast.Integer):
        return option.arg.ival != 0
    return not (isinstance(option.arg, ast.String) and option.arg.sval.lower() in _FALSE)


def _table(relation, state):
    # The engine drops hits on a table created earlier in the migration; this failure happens there too.
    name = table_name(relation)
    return None if state.table_created_here(name) else name


def check(statement, state):
    if not statement.in_transaction:
        return
    node = statement.node
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        yield Hit(_table(node.relation, state), detail="CREATE INDEX CONCURRENTLY on %s." % table_name(node.relation))
    elif isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_INDEX and node.concurrent:
        names = ", ".join(".".join(part.sval for part in name) for name in node.objects or ())
        yield Hit(detail="DROP INDEX CONCURRENTLY %s." % names)
    elif isinstance(node, ast.ReindexStmt) and any(o.defname == "concurrently" and option_enabled(o) for o in node.params or ()):
        kind = node.kind.name.replace("REINDEX_OBJECT_", "")  # INDEX, TABLE, SCHEMA, DATABASE, SYSTEM
        target = table_name(node.relation) if node.relation is not None else (node.name or "")
        yield Hit(detail=("REINDEX %s CONCURRENTLY %s" % (kind, target)).strip() + ".")


RULE = Rule(
    name="ban-concurrent-index-creation-in-transaction",
    severity=ERROR,
    why="CREATE INDEX, DROP INDEX and REINDEX CONCURRENTLY refuse to run inside a transaction block (\"cannot run inside a "
        "transaction block\"): the migration fails, and with it everything else in the transaction.",
    fix="Put the statement alone in its own migration file (pgops.runbook.migrate then runs it outside a transaction, or "
        "start the file with -- pgops: no-transaction), with no BEGIN around it.",
    check=check,
    size_sensitive=False,
)
