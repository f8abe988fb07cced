# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""renaming-table: ALTER TABLE ... RENAME TO, or ALTER TABLE ... SET SCHEMA, breaks the
application version still running, which uses the old name. The rename itself is instant, so
the severity does not follow the table's size. Renaming a table the same source created is
fine (the engine drops the finding); this module then adds the new name to the engine's
created tables, so later statements on the renamed table are treated as on a new table too. A
rename followed, in the same source, by a view under the old name (the fix) is not reported."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import ObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name


def _old_name_kept_as_view(statement, relation):
    """Whether a later statement of the migration creates a view under the old name (the rule's own fix)."""
    for later in statement.following():
        if isinstance(later, ast.ViewStmt) and later.view.relname == relation.relname \
                and (later.view.schemaname or "public") == (relation.schemaname or "public"):
            return True
    return False


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_TABLE:
        if state.table_created_here(table_name(node.relation)):
            schema = node.relation.schemaname
            state.note_created_table("%s.%s" % (schema, node.newname) if schema else node.newname)
        if not _old_name_kept_as_view(statement, node.relation):
            yield Hit(table_name(node.relation), ACCESS_EXCLUSIVE, detail="It becomes %s." % node.newname)
    elif isinstance(node, ast.AlterObjectSchemaStmt) and node.objectType == ObjectType.OBJECT_TABLE:
        if state.table_created_here(table_name(node.relation)):
            state.note_created_table("%s.%s" % (node.newschema, node.relation.relname))
        yield Hit(table_name(node.relation), ACCESS_EXCLUSIVE, detail="It moves to schema %s." % node.newschema)


RULE = Rule(
    name="renaming-table",
    severity=WARNING,
    why="Renaming a table (or moving it to another schema) breaks every running application version that still uses "
        "the old name, from the moment the migration commits until the new version is deployed everywhere.",
    fix="Keep the old name; or, in the same migration, rename it and CREATE VIEW <old name> AS SELECT * FROM <new name> "
        "(a simple view accepts writes), then drop the view once no running version uses the old name.",
    check=check,
    size_sensitive=False,
)
