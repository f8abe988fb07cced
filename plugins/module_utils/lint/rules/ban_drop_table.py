# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ban-drop-table: DROP TABLE loses the data and breaks the application version still running.
One finding per table; a table created earlier in the same source is fine (the engine drops
the finding)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import DropBehavior, ObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, ERROR, Hit, Rule
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.require_concurrent_index_deletion import dotted


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
        detail = "CASCADE also drops the views and foreign keys that depend on it." if node.behavior == DropBehavior.DROP_CASCADE else None
        for names in node.objects or ():
            yield Hit(dotted(names), ACCESS_EXCLUSIVE, detail=detail)


RULE = Rule(
    name="ban-drop-table",
    severity=ERROR,
    why="DROP TABLE deletes the table and its data for good, and breaks every running application version that still uses it.",
    fix="Stop using the table in a release first; drop it in a later migration, after a backup (or rename it aside and drop it later).",
    check=check,
    size_sensitive=False,
)
