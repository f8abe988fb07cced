# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""adding-required-field: ADD COLUMN ... NOT NULL (or PRIMARY KEY, which implies it) without a
DEFAULT, or with DEFAULT NULL, fails on any table that has rows: every existing row would get
NULL. A column that fills itself is fine: serial types (their default is nextval), identity
and generated columns. A NOT NULL domain cannot be seen without the catalog and is not
reported. It is about correctness, not lock cost: the severity does not follow the table's size."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, alter_table_commands, type_name

SERIAL_TYPES = ("serial", "serial2", "serial4", "serial8", "smallserial", "bigserial")
REQUIRES_A_VALUE = ("CONSTR_NOTNULL", "CONSTR_PRIMARY")  # by name: pglast may be missing at import


def _null(expr):
    """Whether a default expression is NULL (DEFAULT NULL, DEFAULT NULL::text): no default at all."""
    if isinstance(expr, ast.TypeCast):
        return _null(expr.arg)
    return isinstance(expr, ast.A_Const) and bool(expr.isnull)


def _fills_itself(constraint):
    if constraint.contype == ConstrType.CONSTR_DEFAULT:
        return not _null(constraint.raw_expr)
    return constraint.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED)


def check(statement, state):
    for table, cmd in alter_table_commands(statement.node, AlterTableType.AT_AddColumn):
        column = cmd.def_
        if not isinstance(column, ast.ColumnDef):
            continue
        constraints = [c for c in column.constraints or () if isinstance(c, ast.Constraint)]
        required = column.is_not_null or any(c.contype.name in REQUIRES_A_VALUE for c in constraints)
        if required and not any(_fills_itself(c) for c in constraints) and type_name(column.typeName) not in SERIAL_TYPES:
            yield Hit(table, ACCESS_EXCLUSIVE, detail="Column %s." % column.colname)


RULE = Rule(
    name="adding-required-field",
    severity=WARNING,
    why="ADD COLUMN ... NOT NULL without a DEFAULT fails as soon as the table has a row (the new column would be NULL in it).",
    fix="Add the column with a constant DEFAULT (instant on PostgreSQL 11+), or add it nullable, backfill it in batches, "
        "then make it NOT NULL through a validated CHECK constraint.",
    check=check,
    size_sensitive=False,
)
