# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prefer-text-field: a varchar(n) column defined by CREATE TABLE or ALTER TABLE ... ADD COLUMN."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import INFO, Hit, Rule, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.prefer_bigint_over_int import columns, reported_table


def check(statement, state):
    for relation, column in columns(statement.node):
        names = [n.sval for n in column.typeName.names]
        # varchar and character varying parse as pg_catalog.varchar; without a length it is text under another name.
        if names[-1] == "varchar" and column.typeName.typmods and (len(names) == 1 or (len(names) == 2 and names[0] == "pg_catalog")):
            yield Hit(reported_table(relation, state), detail="Column %s of %s." % (column.colname, table_name(relation)))


RULE = Rule(
    name="prefer-text-field",
    severity=INFO,
    why="varchar(n) gains nothing over text, and changing n later is an ALTER COLUMN TYPE: raising it takes ACCESS EXCLUSIVE "
        "on the table, lowering it rewrites the whole table under that lock.",
    fix="Use text with a CHECK (char_length(column) <= n) constraint: a new limit is then a NOT VALID constraint validated "
        "without blocking writes.",
    check=check,
    size_sensitive=False,
)
