# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ban-drop-column: dropping a column breaks the application version still running."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast.enums import AlterTableType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    AlterTableType = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, alter_table_commands


def check(statement, state):
    for table, cmd in alter_table_commands(statement.node, AlterTableType.AT_DropColumn):
        yield Hit(table, ACCESS_EXCLUSIVE, detail="Column %s." % cmd.name)


RULE = Rule(
    name="ban-drop-column",
    severity=WARNING,
    why="Dropping a column breaks every running application version that still reads or writes it, and the data is gone.",
    fix="Stop using the column in a release first; drop it in a later migration, after a backup.",
    check=check,
    size_sensitive=False,
)
