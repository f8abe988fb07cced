# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""truncate: TRUNCATE removes every row of each table it names (ban-truncate-cascade
reports the CASCADE form on top of this)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.TruncateStmt):
        for relation in node.relations or ():
            # One hit per table: the engine drops those on a table the migration created itself.
            yield Hit(table_name(relation), ACCESS_EXCLUSIVE)


RULE = Rule(
    name="truncate",
    severity=WARNING,
    why="TRUNCATE removes every row of the table at once (no WHERE, no row-by-row undo once committed) and holds ACCESS "
        "EXCLUSIVE until the transaction ends: nothing can read or write the table meanwhile.",
    fix="Make sure the data is meant to go (and is backed up); to remove only some rows, DELETE ... WHERE in batches.",
    check=check,
    size_sensitive=False,
)
