# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""adding-field-with-default: ADD COLUMN with a volatile default (any default before
PostgreSQL 11) rewrites the whole table under ACCESS EXCLUSIVE. A serial or identity column
is such a column too (every row gets nextval()), and so is a stored generated column; a
serial with PRIMARY KEY is left to adding-serial-primary-key-field, which says more."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.adding_serial_primary_key_field import SERIAL_TYPES
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, alter_table_commands, type_name

# Defaults that are evaluated once, not per row: constants, casts of constants, and these functions.
STABLE_FUNCTIONS = ("now", "current_timestamp", "current_date", "statement_timestamp", "transaction_timestamp",
                    "localtimestamp", "current_user", "session_user")


def _volatile(expr):
    if isinstance(expr, ast.A_Const):
        return False
    if isinstance(expr, ast.TypeCast):
        return _volatile(expr.arg)
    if isinstance(expr, ast.SQLValueFunction):
        return False
    if isinstance(expr, ast.FuncCall):
        name = expr.funcname[-1].sval.lower()
        return name not in STABLE_FUNCTIONS or bool(expr.args)
    return True


def _sequence_filled(column):
    """'serial' / 'identity' when every existing row of the new column gets a nextval() (unless it is the primary key)."""
    kinds = set(c.contype for c in column.constraints or () if isinstance(c, ast.Constraint))
    if ConstrType.CONSTR_PRIMARY in kinds:
        return None
    if type_name(column.typeName) in SERIAL_TYPES:
        return "a %s" % type_name(column.typeName)
    if ConstrType.CONSTR_IDENTITY in kinds:
        return "an identity column"
    return None


def _generated(column):
    return any(isinstance(c, ast.Constraint) and c.contype == ConstrType.CONSTR_GENERATED for c in column.constraints or ())


def check(statement, state):
    for table, cmd in alter_table_commands(statement.node, AlterTableType.AT_AddColumn):
        if not isinstance(cmd.def_, ast.ColumnDef):
            continue
        filled = _sequence_filled(cmd.def_)
        if filled:
            yield Hit(table, ACCESS_EXCLUSIVE, rewrites=True,
                      detail="Column %s is %s: every existing row is given nextval() of its sequence." % (cmd.def_.colname, filled))
        elif _generated(cmd.def_):
            yield Hit(table, ACCESS_EXCLUSIVE, rewrites=True,
                      detail="Column %s is a stored generated column: it is computed and written for every existing row."
                      % cmd.def_.colname)
        for constraint in cmd.def_.constraints or ():
            if constraint.contype != ConstrType.CONSTR_DEFAULT:
                continue
            old_server = state.server_version_num is not None and state.server_version_num < 110000
            if old_server or _volatile(constraint.raw_expr):
                how = "written into every row before PostgreSQL 11" if old_server else "evaluated for every row"
                yield Hit(table, ACCESS_EXCLUSIVE, rewrites=True,
                          detail="The default of %s is %s." % (cmd.def_.colname, how))


RULE = Rule(
    name="adding-field-with-default",
    severity=WARNING,
    why="ADD COLUMN with a volatile default rewrites the whole table while holding ACCESS EXCLUSIVE: nothing can read or write it.",
    fix="Add the column without a default (or with a constant one), then backfill it in batches and set the default afterwards.",
    check=check,
)
