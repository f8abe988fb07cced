# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""adding-foreign-key-constraint: a FOREIGN KEY added to an existing table and validated at
once checks every row while holding SHARE ROW EXCLUSIVE on both the referencing and the
referenced table: writes to both wait. The finding names the referencing table.

The split with constraint-missing-not-valid follows squawk:
- ALTER TABLE ... ADD [CONSTRAINT ...] FOREIGN KEY without NOT VALID: both rules fire (squawk
  reports both too; a suppression lists both names). This one adds the referenced table.
- ALTER TABLE ... ADD COLUMN ... REFERENCES: only this rule fires (a column constraint cannot be
  NOT VALID, and constraint-missing-not-valid only looks at ADD CONSTRAINT).
- ADD ... FOREIGN KEY ... NOT VALID (or NOT ENFORCED, PostgreSQL 18): neither fires. It still takes
  SHARE ROW EXCLUSIVE on both tables, but only for the catalog update: lock_timeout covers that.
- CREATE TABLE ... REFERENCES: nothing to validate, nothing fires."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import SHARE_ROW_EXCLUSIVE, WARNING, Hit, Rule, table_name


def _validated_foreign_keys(cmd):
    """(constraint, column or None) of the foreign keys this ALTER TABLE subcommand adds and validates."""
    if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
        candidates = [(cmd.def_, None)]
    elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
        candidates = [(c, cmd.def_.colname) for c in cmd.def_.constraints or ()]
    else:
        candidates = []
    return [(c, column) for c, column in candidates
            if isinstance(c, ast.Constraint) and c.contype == ConstrType.CONSTR_FOREIGN and not c.skip_validation]


def check(statement, state):
    node = statement.node
    if not isinstance(node, ast.AlterTableStmt):
        return
    for cmd in node.cmds or ():
        for constraint, column in _validated_foreign_keys(cmd):
            referenced = table_name(constraint.pktable)
            if column:
                detail = "Column %s references %s (a column constraint cannot be NOT VALID)." % (column, referenced)
            else:
                detail = "It references %s, which is locked against writes too." % referenced
            yield Hit(table_name(node.relation), SHARE_ROW_EXCLUSIVE, detail=detail, rewrites=True)


RULE = Rule(
    name="adding-foreign-key-constraint",
    severity=WARNING,
    why="Adding a FOREIGN KEY checks every existing row while holding SHARE ROW EXCLUSIVE on both the table and the table "
        "it references: INSERT, UPDATE and DELETE on both wait until the check ends.",
    fix="Add the column without REFERENCES, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID (instant), then VALIDATE "
        "CONSTRAINT in a later migration (it allows writes on both tables).",
    check=check,
)
