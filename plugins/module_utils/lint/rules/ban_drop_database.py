# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ban-drop-database: DROP DATABASE in a migration deletes a whole database."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ERROR, Hit, Rule, option_names


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.DropdbStmt):
        force = " WITH (FORCE) also terminates its sessions." if "force" in option_names(node.options) else ""
        yield Hit(None, None, detail="Database %s.%s" % (node.dbname, force))


RULE = Rule(
    name="ban-drop-database",
    severity=ERROR,
    why="DROP DATABASE deletes the database and all its data for good; it has no place in an application migration.",
    fix="Drop databases by hand (or with the database management tooling), after a backup, never from a migration.",
    check=check,
    size_sensitive=False,
)
