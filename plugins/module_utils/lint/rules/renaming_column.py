# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""renaming-column: ALTER TABLE (or VIEW, MATERIALIZED VIEW, FOREIGN TABLE) ... RENAME COLUMN
breaks the application version still running, which uses the old name. The rename itself is
instant, so the severity does not follow the table's size."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import ObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_COLUMN:
        yield Hit(table_name(node.relation), ACCESS_EXCLUSIVE, detail="Column %s becomes %s." % (node.subname, node.newname))


RULE = Rule(
    name="renaming-column",
    severity=WARNING,
    why="Renaming a column breaks every running application version that still uses the old name, from the moment "
        "the migration commits until the new version is deployed everywhere.",
    fix="Add a column with the new name, write both and backfill, switch reads in a release, then drop the old column "
        "in a later migration (or keep the old name and rename only in the application).",
    check=check,
    size_sensitive=False,
)
