# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""require-concurrent-index-deletion: DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE
on the index's table. One finding per index named; an index created earlier in the same
source is ignored (the engine tracks them). The finding has no table:
the statement names the index, not its table."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import ObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule


def dotted(names):
    """schema.name (or name) of a pglast name list (a tuple of String), without a database part."""
    parts = [n.sval for n in names or () if isinstance(n, ast.String)]
    return ".".join(parts[-2:]) if parts else None


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_INDEX and not node.concurrent:
        for names in node.objects or ():
            index = dotted(names)
            if not state.index_created_here(index):
                yield Hit(None, ACCESS_EXCLUSIVE, detail="Index %s." % index)


RULE = Rule(
    name="require-concurrent-index-deletion",
    severity=WARNING,
    why="DROP INDEX takes ACCESS EXCLUSIVE on the index's table: it waits behind every running query on it, and every "
        "query queued behind it, reads included, waits too.",
    fix="DROP INDEX CONCURRENTLY (one index per statement), alone in a migration that runs outside a transaction.",
    check=check,
)
