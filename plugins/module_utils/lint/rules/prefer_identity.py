# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prefer-identity: a serial, bigserial or smallserial column, where PostgreSQL 10+ has
GENERATED ... AS IDENTITY."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import INFO, Hit, Rule, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.prefer_bigint_over_int import columns, reported_table

# PostgreSQL expands these only when written unqualified.
SERIALS = ("serial", "serial4", "bigserial", "serial8", "smallserial", "serial2")


def check(statement, state):
    if state.server_version_num is not None and state.server_version_num < 100000:
        return  # identity columns came with PostgreSQL 10
    for relation, column in columns(statement.node):
        names = [n.sval for n in column.typeName.names]
        if len(names) == 1 and names[0] in SERIALS:
            yield Hit(reported_table(relation, state), detail="Column %s of %s is %s." % (column.colname, table_name(relation), names[0]))


RULE = Rule(
    name="prefer-identity",
    severity=INFO,
    why="A serial column is a plain column whose default reads a separately owned sequence: its grants, ownership and "
        "copies between tables need care, and INSERTs that give explicit ids silently leave the sequence behind.",
    fix="Use bigint GENERATED ALWAYS AS IDENTITY (or BY DEFAULT when the application sometimes supplies ids).",
    check=check,
    size_sensitive=False,
)
