# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""constraint-missing-not-valid: a CHECK or FOREIGN KEY added without NOT VALID scans the
table under a lock that blocks writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, WARNING, Hit, Rule, alter_table_commands


def check(statement, state):
    for table, cmd in alter_table_commands(statement.node, AlterTableType.AT_AddConstraint):
        constraint = cmd.def_
        if isinstance(constraint, ast.Constraint) and constraint.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN) \
                and not constraint.skip_validation:
            lock = SHARE_ROW_EXCLUSIVE if constraint.contype == ConstrType.CONSTR_FOREIGN else ACCESS_EXCLUSIVE
            yield Hit(table, lock, rewrites=True)


RULE = Rule(
    name="constraint-missing-not-valid",
    severity=WARNING,
    why="Adding a CHECK or FOREIGN KEY constraint validates every existing row while holding a lock that blocks writes.",
    fix="ADD CONSTRAINT ... NOT VALID (instant), then VALIDATE CONSTRAINT in a later migration (it allows writes).",
    check=check,
)
