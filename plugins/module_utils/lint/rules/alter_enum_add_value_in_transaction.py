# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alter-enum-add-value-in-transaction: ALTER TYPE ... ADD VALUE inside a transaction block
fails before PostgreSQL 12; from 12 on the new value cannot be used until the transaction
commits."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ERROR, INFO, Hit, Rule


def check(statement, state):
    node = statement.node
    if not (isinstance(node, ast.AlterEnumStmt) and node.oldVal is None and statement.in_transaction):
        return  # RENAME VALUE (oldVal set) runs anywhere; outside a transaction ADD VALUE is fine
    enum = ".".join(part.sval for part in node.typeName)
    refused = state.server_version_num is not None and state.server_version_num < 120000
    if refused:
        detail = "Type %s, value '%s': before PostgreSQL 12 the server refuses it (\"ALTER TYPE ... ADD VALUE cannot run " \
                 "inside a transaction block\")." % (enum, node.newVal)
    else:
        detail = "Type %s, value '%s': an INSERT, UPDATE or comparison using it later in this transaction fails with " \
                 "\"unsafe use of new value\"; nothing else is wrong on PostgreSQL 12+%s." % (
                     enum, node.newVal, "" if state.server_version_num is not None else " (before 12 it would fail outright)")
    yield Hit(detail=detail, severity=ERROR if refused else INFO)


RULE = Rule(
    name="alter-enum-add-value-in-transaction",
    severity=ERROR,
    why="ALTER TYPE ... ADD VALUE runs inside a transaction block here: before PostgreSQL 12 that fails, and from 12 on "
        "the new value cannot be used until the transaction commits.",
    fix="Put the ADD VALUE in a migration of its own that runs outside a transaction (-- pgops: no-transaction), and use "
        "the new value in a later migration.",
    check=check,
    size_sensitive=False,
)
