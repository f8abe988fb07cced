# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""transaction-nesting: BEGIN inside a transaction (an explicit one, or a migration file its
runner wraps in one), and COMMIT or ROLLBACK in a wrapped file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import TransactionStmtKind
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import WARNING, Hit, Rule
from ansible_collections.pgops.runbook.plugins.module_utils.sql_script import header_directives

# By name: pglast may be missing when this file is imported.
_BEGIN = ("TRANS_STMT_BEGIN", "TRANS_STMT_START")
_END = ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK")


def _wrapped(statement, state):
    """Whether the runner wraps this source in a transaction. Outside an explicit transaction that is
    statement.in_transaction; inside one, the engine's own test, which for a file holding a transaction
    statement (not one of those that must run outside a transaction) comes down to its no-transaction directive."""
    if not state.explicit_transaction:
        return statement.in_transaction
    if not statement.source.wrapped:
        return False
    try:
        return "no-transaction" not in header_directives(statement.source.text)
    except PgopsError:
        return True


def check(statement, state):
    node = statement.node
    if not isinstance(node, ast.TransactionStmt):
        return
    if node.kind.name in _BEGIN:
        if state.transaction_depth > 0:
            yield Hit(detail="A transaction is already open here: this BEGIN does nothing (PostgreSQL only warns), and the "
                             "first COMMIT or ROLLBACK ends the outer transaction.")
        elif _wrapped(statement, state):
            yield Hit(detail="The runner already wraps this file in a transaction: this BEGIN does nothing, and a COMMIT "
                             "meant for it ends the runner's transaction halfway through the file.")
    elif node.kind.name in _END and _wrapped(statement, state):
        if node.kind == TransactionStmtKind.TRANS_STMT_COMMIT:
            detail = "The runner wraps this file in a transaction: this COMMIT ends it, so the statements before it stay even if " \
                     "a later one fails, and the ones after it run outside any transaction."
        else:
            detail = "The runner wraps this file in a transaction: this ROLLBACK undoes the statements before it, the ones " \
                     "after it run outside any transaction, and the runner can still record the file as applied."
        yield Hit(detail=detail)


RULE = Rule(
    name="transaction-nesting",
    severity=WARNING,
    why="PostgreSQL has no nested transactions: a BEGIN inside a transaction is ignored and the next COMMIT or ROLLBACK "
        "ends the outer one, so the migration is no longer all-or-nothing.",
    fix="Leave transaction control to the runner (pgops.runbook.migrate wraps each file); to run statements outside a "
        "transaction, start the file with -- pgops: no-transaction; use SAVEPOINT for a partial rollback.",
    check=check,
    size_sensitive=False,
)
