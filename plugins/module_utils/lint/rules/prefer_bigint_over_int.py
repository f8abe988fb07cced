# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prefer-bigint-over-int: an integer, smallint or (small)serial column defined by CREATE TABLE
or ALTER TABLE ... ADD COLUMN runs out at 2^31 (2^15), and widening it later rewrites the table."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType, ObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import INFO, Hit, Rule, table_name

# The built-in names (int and integer parse as pg_catalog.int4, smallint as pg_catalog.int2).
NARROW = {"int4": "integer", "int2": "smallint"}
# Pseudo-types PostgreSQL expands to an integer column with a sequence (only when written unqualified).
NARROW_SERIALS = {"serial": "integer", "serial4": "integer", "smallserial": "smallint", "serial2": "smallint"}


def columns(node):
    """(RangeVar, ColumnDef) of the columns a CREATE TABLE (not a temporary one) or an ALTER TABLE ... ADD COLUMN defines."""
    if isinstance(node, ast.CreateStmt):
        if node.relation.relpersistence == "t":
            return
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef) and element.typeName is not None and not element.typeName.pct_type:
                yield node.relation, element
    elif isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
        for cmd in node.cmds or ():
            column = cmd.def_ if cmd.subtype == AlterTableType.AT_AddColumn else None
            if isinstance(column, ast.ColumnDef) and column.typeName is not None and not column.typeName.pct_type:
                yield node.relation, column


def reported_table(relation, state):
    """The table to report. The engine drops hits on a table created earlier in the migration (no lock
    hazard there), but a column type is as wrong on a new table: such a hit names no table (the detail does)."""
    name = table_name(relation)
    return None if state.table_created_here(name) else name


def _narrow(type_node):
    names = [n.sval for n in type_node.names]
    if len(names) == 1 and names[0] in NARROW_SERIALS:
        return NARROW_SERIALS[names[0]], True
    if len(names) == 1 or (len(names) == 2 and names[0] == "pg_catalog"):
        return NARROW.get(names[-1]), False
    return None, False


def check(statement, state):
    for relation, column in columns(statement.node):
        kind, serial = _narrow(column.typeName)
        if kind is None:
            continue
        identity = any(c.contype == ConstrType.CONSTR_IDENTITY for c in column.constraints or ())
        detail = "Column %s of %s is %s%s." % (column.colname, table_name(relation), kind,
                                               ", filled from a sequence that will run out" if serial or identity else "")
        yield Hit(reported_table(relation, state), detail=detail)


RULE = Rule(
    name="prefer-bigint-over-int",
    severity=INFO,
    why="An integer column holds at most 2,147,483,647 (a smallint 32,767): once an id or counter reaches it every INSERT "
        "fails, and widening the column then rewrites the whole table under ACCESS EXCLUSIVE.",
    fix="Use bigint (bigint GENERATED ALWAYS AS IDENTITY for ids): 4 more bytes per row cost less than that migration.",
    check=check,
    size_sensitive=False,
)
