# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""update-without-where: an UPDATE with no WHERE (at the top level or in a WITH query)
rewrites every row of an existing table in one transaction."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ROW_EXCLUSIVE, WARNING, Hit, Rule, table_name


def modifying(node, kind):
    """The `kind` statements (UpdateStmt, DeleteStmt) in `node`: itself, and those in its WITH queries, at any depth."""
    if isinstance(node, kind):
        yield node
    with_clause = getattr(node, "withClause", None)
    for cte in (with_clause.ctes or ()) if with_clause is not None else ():
        yield from modifying(cte.ctequery, kind)


def check(statement, state):
    for update in modifying(statement.node, ast.UpdateStmt):
        if update.whereClause is None:
            yield Hit(table_name(update.relation), ROW_EXCLUSIVE, rewrites=True)


RULE = Rule(
    name="update-without-where",
    severity=WARNING,
    why="An UPDATE with no WHERE writes a new version of every row in one transaction: it locks each row until the end "
        "(blocking every other writer of the table), doubles the table's size until vacuum, and floods the WAL.",
    fix="Update in batches of a few thousand rows by key range, each in its own transaction (or add the WHERE that was meant).",
    check=check,
)
