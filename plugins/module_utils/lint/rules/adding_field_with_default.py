# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""adding-field-with-default: ADD COLUMN with a volatile default (any default before
PostgreSQL 11) rewrites the whole table under ACCESS EXCLUSIVE."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name

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


def check(statement, state):
    node = statement.node
    if not isinstance(node, ast.AlterTableStmt):
        return
    for cmd in node.cmds or ():
        if cmd.subtype != AlterTableType.AT_AddColumn or not isinstance(cmd.def_, ast.ColumnDef):
            continue
        for constraint in cmd.def_.constraints or ():
            if constraint.contype != ConstrType.CONSTR_DEFAULT:
                continue
            old_server = state.server_version_num is not None and state.server_version_num < 110000
            if old_server or _volatile(constraint.raw_expr):
                how = "written into every row before PostgreSQL 11" if old_server else "evaluated for every row"
                yield Hit(table_name(node.relation), ACCESS_EXCLUSIVE, rewrites=True,
                          detail="The default of %s is %s." % (cmd.def_.colname, how))


RULE = Rule(
    name="adding-field-with-default",
    severity=WARNING,
    why="ADD COLUMN with a volatile default rewrites the whole table while holding ACCESS EXCLUSIVE: nothing can read or write it.",
    fix="Add the column without a default (or with a constant one), then backfill it in batches and set the default afterwards.",
    check=check,
)
