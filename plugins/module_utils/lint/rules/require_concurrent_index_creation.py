# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""require-concurrent-index-creation: CREATE INDEX without CONCURRENTLY blocks writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import SHARE, WARNING, Hit, Rule, table_name


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.IndexStmt) and not node.concurrent:
        yield Hit(table_name(node.relation), SHARE, rewrites=True)


RULE = Rule(
    name="require-concurrent-index-creation",
    severity=WARNING,
    why="CREATE INDEX holds a SHARE lock for the whole build: every INSERT, UPDATE and DELETE on the table waits.",
    fix="CREATE INDEX CONCURRENTLY, alone in a migration that runs outside a transaction.",
    check=check,
)
