# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""delete-without-where: a DELETE with no WHERE (at the top level or in a WITH query)
removes every row of an existing table in one transaction."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ROW_EXCLUSIVE, WARNING, Hit, Rule, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.update_without_where import modifying


def check(statement, state):
    for delete in modifying(statement.node, ast.DeleteStmt):
        if delete.whereClause is None:
            yield Hit(table_name(delete.relation), ROW_EXCLUSIVE, rewrites=True)


RULE = Rule(
    name="delete-without-where",
    severity=WARNING,
    why="A DELETE with no WHERE removes every row of the table in one transaction: it locks each row until the end "
        "(blocking every other writer of the table), fires every row trigger and foreign-key check, and leaves the "
        "whole table as dead rows for vacuum.",
    fix="Add the WHERE that was meant; to empty the table on purpose, delete in batches by key range (or TRUNCATE it "
        "when nothing else uses it).",
    check=check,
)
