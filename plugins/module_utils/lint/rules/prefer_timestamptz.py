# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prefer-timestamptz: a timestamp (without time zone) column defined by CREATE TABLE or
ALTER TABLE ... ADD COLUMN."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import WARNING, Hit, Rule, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.prefer_bigint_over_int import columns, reported_table


def check(statement, state):
    for relation, column in columns(statement.node):
        names = [n.sval for n in column.typeName.names]
        # timestamp and timestamp without time zone parse as pg_catalog.timestamp, with time zone as pg_catalog.timestamptz.
        if names[-1] == "timestamp" and (len(names) == 1 or (len(names) == 2 and names[0] == "pg_catalog")):
            yield Hit(reported_table(relation, state), detail="Column %s of %s." % (column.colname, table_name(relation)))


RULE = Rule(
    name="prefer-timestamptz",
    severity=WARNING,
    why="timestamp without time zone stores a wall-clock time with no zone: values written from sessions or servers in "
        "different time zones cannot be compared, and the hour repeated when daylight saving time ends is ambiguous.",
    fix="Use timestamptz (timestamp with time zone): it stores an instant and shows it in the session's time zone.",
    check=check,
    size_sensitive=False,
)
