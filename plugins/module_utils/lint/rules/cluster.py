# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cluster: CLUSTER rewrites the table in index order under ACCESS EXCLUSIVE (every
previously clustered table of the database when it names none)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name


def check(statement, state):
    node = statement.node
    if not isinstance(node, ast.ClusterStmt):
        return
    if node.relation is None:
        detail = "With no table named, it rewrites every table of the database that was clustered before."
        if statement.in_transaction:
            detail += " Inside a transaction block it also fails: this form cannot run there."
        yield Hit(None, ACCESS_EXCLUSIVE, rewrites=True, detail=detail)
    else:
        yield Hit(table_name(node.relation), ACCESS_EXCLUSIVE, rewrites=True)


RULE = Rule(
    name="cluster",
    severity=WARNING,
    why="CLUSTER copies the whole table in index order and rebuilds its indexes while holding ACCESS EXCLUSIVE: nothing "
        "can read or write the table until it ends, and it needs room for a second copy.",
    fix="Do without it (the order is not kept by later writes), or use pg_repack --order-by online, outside a migration.",
    check=check,
)
