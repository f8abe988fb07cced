# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""disallowed-unique-constraint: ADD [CONSTRAINT ...] UNIQUE (columns), or ADD COLUMN ... UNIQUE,
builds the unique index while holding ACCESS EXCLUSIVE. ADD CONSTRAINT ... UNIQUE USING INDEX
(an index built CONCURRENTLY beforehand) is the safe form and does not fire."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, alter_table_commands


def check(statement, state):
    for table, cmd in alter_table_commands(statement.node):
        if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint) \
                and cmd.def_.contype == ConstrType.CONSTR_UNIQUE and not cmd.def_.indexname:
            columns = ", ".join(k.sval for k in cmd.def_.keys or () if isinstance(k, ast.String))
            yield Hit(table, ACCESS_EXCLUSIVE, rewrites=True, detail="The index on (%s) is built over every row." % columns)
        elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            if any(isinstance(c, ast.Constraint) and c.contype == ConstrType.CONSTR_UNIQUE for c in cmd.def_.constraints or ()):
                yield Hit(table, ACCESS_EXCLUSIVE, rewrites=True, detail="Column %s is added with UNIQUE." % cmd.def_.colname)


RULE = Rule(
    name="disallowed-unique-constraint",
    severity=WARNING,
    why="Adding a UNIQUE constraint builds its index over every row while holding ACCESS EXCLUSIVE: nothing can read "
        "or write the table until it is done.",
    fix="CREATE UNIQUE INDEX CONCURRENTLY (in a migration outside a transaction), then ADD CONSTRAINT ... UNIQUE USING INDEX.",
    check=check,
)
