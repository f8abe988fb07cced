# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ban-char-field: a char(n) / character(n) column defined by CREATE TABLE or ALTER TABLE ...
ADD COLUMN."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import WARNING, Hit, Rule, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.prefer_bigint_over_int import columns, reported_table


def check(statement, state):
    for relation, column in columns(statement.node):
        names = [n.sval for n in column.typeName.names]
        # char, character, char(n), nchar(n) parse as pg_catalog.bpchar; the quoted "char" is a different, one-byte type.
        if names[-1] == "bpchar" and (len(names) == 1 or (len(names) == 2 and names[0] == "pg_catalog")):
            yield Hit(reported_table(relation, state), detail="Column %s of %s." % (column.colname, table_name(relation)))


RULE = Rule(
    name="ban-char-field",
    severity=WARNING,
    why="char(n) pads every value with spaces to n characters, ignores trailing spaces when comparing and drops them on "
        "casts to text: surprises for the application, no speed or space gained, and changing n later locks the table.",
    fix="Use text (with a CHECK (char_length(column) = n) constraint when the length is a rule).",
    check=check,
    size_sensitive=False,
)
