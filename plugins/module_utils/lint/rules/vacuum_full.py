# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vacuum-full: VACUUM FULL rewrites each table it names (every table of the database when
it names none) under ACCESS EXCLUSIVE."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.ban_concurrent_index_creation_in_transaction import option_enabled


def check(statement, state):
    node = statement.node
    if not (isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd):
        return
    if not any(o.defname == "full" and option_enabled(o) for o in node.options or ()):
        return
    refused = " Inside a transaction block it also fails: VACUUM cannot run there." if statement.in_transaction else ""
    if not node.rels:
        yield Hit(None, ACCESS_EXCLUSIVE, rewrites=True, detail="With no table named, it rewrites every table of the database." + refused)
    for rel in node.rels or ():
        yield Hit(table_name(rel.relation), ACCESS_EXCLUSIVE, rewrites=True, detail=refused.strip() or None)


RULE = Rule(
    name="vacuum-full",
    severity=WARNING,
    why="VACUUM FULL copies the whole table and rebuilds its indexes while holding ACCESS EXCLUSIVE: nothing can read or "
        "write the table until it ends, and it needs room for a second copy.",
    fix="Let (auto)vacuum do its work; to give space back online, use pg_repack or pg_squeeze, outside a migration.",
    check=check,
)
