# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ban-truncate-cascade: TRUNCATE ... CASCADE also empties every table with a foreign key to the
named ones, and the tables referencing those, recursively. One finding per table named."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import DropBehavior
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, ERROR, Hit, Rule, table_name


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.TruncateStmt) and node.behavior == DropBehavior.DROP_CASCADE:
        for relation in node.relations or ():
            yield Hit(table_name(relation), ACCESS_EXCLUSIVE)


RULE = Rule(
    name="ban-truncate-cascade",
    severity=ERROR,
    why="TRUNCATE ... CASCADE also empties every table that references it through a foreign key, recursively, "
        "whatever it holds, under ACCESS EXCLUSIVE on all of them.",
    fix="TRUNCATE (or DELETE from) the tables you mean, naming each one, without CASCADE.",
    check=check,
    size_sensitive=False,
)
