# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""adding-serial-primary-key-field: adding a primary key to an existing table builds its unique
index while holding ACCESS EXCLUSIVE. Fires on ALTER TABLE ... ADD COLUMN ... PRIMARY KEY (a
serial or identity column is also written into every row first: a rewrite) and on ADD
[CONSTRAINT ...] PRIMARY KEY (columns). ADD PRIMARY KEY USING INDEX (an index built
CONCURRENTLY beforehand) is the safe form and does not fire. ADD COLUMN of a serial or identity
column without PRIMARY KEY is not this rule's business."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ConstrType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name, type_name

SERIAL_TYPES = ("serial", "serial2", "serial4", "serial8", "smallserial", "bigserial")


def _column_hit(table, column):
    kinds = set(c.contype for c in column.constraints or () if isinstance(c, ast.Constraint))
    if ConstrType.CONSTR_PRIMARY not in kinds:
        return None
    if type_name(column.typeName) in SERIAL_TYPES:
        how = "is a %s: a value is written into every row, then the index is built" % type_name(column.typeName)
    elif ConstrType.CONSTR_IDENTITY in kinds:
        how = "is an identity column: a value is written into every row, then the index is built"
    else:
        how = "gets its index built over every row"
    return Hit(table, ACCESS_EXCLUSIVE, rewrites=True, detail="Column %s %s." % (column.colname, how))


def check(statement, state):
    node = statement.node
    if not isinstance(node, ast.AlterTableStmt):
        return
    table = table_name(node.relation)
    for cmd in node.cmds or ():
        if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            hit = _column_hit(table, cmd.def_)
            if hit is not None:
                yield hit
        elif cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint) \
                and cmd.def_.contype == ConstrType.CONSTR_PRIMARY and not cmd.def_.indexname:
            columns = ", ".join(k.sval for k in cmd.def_.keys or () if isinstance(k, ast.String))
            yield Hit(table, ACCESS_EXCLUSIVE, rewrites=True, detail="The index on (%s) is built over every row." % columns)


RULE = Rule(
    name="adding-serial-primary-key-field",
    severity=WARNING,
    why="Adding a primary key builds its unique index (and, for a new serial or identity column, fills every row first) "
        "while holding ACCESS EXCLUSIVE: nothing can read or write the table until it is done.",
    fix="Add the column (nullable, or with a constant default) and fill it in batches, make it NOT NULL through a "
        "validated CHECK, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... PRIMARY KEY USING INDEX.",
    check=check,
)
