# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""require-lock-timeout: a statement taking a strong lock, with no lock_timeout set by the
migration or by its runner (the migrate module sets one), can queue every later query."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, SHARE, WARNING, Hit, Rule, table_name

# By name: pglast may be missing when this file is imported.
_LOCKING = ("AlterTableStmt", "RenameStmt", "DropStmt", "TruncateStmt", "IndexStmt", "ClusterStmt")


def check(statement, state):
    node = statement.node
    if state.lock_timeout_set or type(node).__name__ not in _LOCKING:
        return
    if isinstance(node, ast.IndexStmt):
        if not node.concurrent:
            yield Hit(table_name(node.relation), SHARE)
        return
    relation = getattr(node, "relation", None)
    yield Hit(table_name(relation) if isinstance(relation, ast.RangeVar) else None, ACCESS_EXCLUSIVE)


RULE = Rule(
    name="require-lock-timeout",
    severity=WARNING,
    why="Without lock_timeout, a statement waiting for its lock behind a long transaction makes every later query on the "
        "table wait behind it.",
    fix="SET lock_timeout = '2s' before it (and retry on failure), or run the migration with pgops.runbook.migrate, which sets it.",
    check=check,
    size_sensitive=False,
)
