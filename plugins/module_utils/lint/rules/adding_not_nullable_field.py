# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""adding-not-nullable-field: ALTER COLUMN ... SET NOT NULL scans the whole table under
ACCESS EXCLUSIVE."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast.enums import AlterTableType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    AlterTableType = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, alter_table_commands


def check(statement, state):
    for table, cmd in alter_table_commands(statement.node, AlterTableType.AT_SetNotNull):
        yield Hit(table, ACCESS_EXCLUSIVE, rewrites=True, detail="Column %s." % cmd.name)


RULE = Rule(
    name="adding-not-nullable-field",
    severity=WARNING,
    why="SET NOT NULL reads every row to check it while holding ACCESS EXCLUSIVE: nothing can read or write the table.",
    fix="ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL (PostgreSQL 12+ "
        "uses the validated check and skips the scan), then drop the check.",
    check=check,
)
