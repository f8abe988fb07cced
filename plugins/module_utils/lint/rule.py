# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a lint rule is: one file under lint/rules/ defining RULE = Rule(...), one line in
rules/registry.py. A rule's check(statement, state) looks at one parsed statement (a
pglast node, PostgreSQL's own grammar) and yields a Hit per hazard it finds; the engine
turns hits into findings, adding the table's size and the severity it deserves."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (INFO, WARNING, ERROR)

# Locks, by the name PostgreSQL's documentation gives them.
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
SHARE = "SHARE"
SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"


class Hit:
    """One hazard in one statement: the table it is on (schema.name or name), the lock it takes,
    and, when the rule's own text does not say enough, a detail sentence. `severity`, when
    given, replaces the rule's own for this hit (the server version can make a hazard worse)."""

    def __init__(self, table=None, lock=None, detail=None, rewrites=False, severity=None):
        if severity is not None and severity not in SEVERITIES:
            raise ValueError("severity must be one of %s" % ", ".join(SEVERITIES))
        self.table = table
        self.lock = lock
        self.detail = detail
        self.rewrites = rewrites  # the whole table is rewritten or scanned under the lock
        self.severity = severity


class Rule:
    """A named hazard. `size_sensitive` rules follow the real table's size when connected
    (info on a small table, error on a large one); others keep their severity."""

    def __init__(self, name, severity, why, fix, check, size_sensitive=True):
        if severity not in SEVERITIES:
            raise ValueError("severity must be one of %s" % ", ".join(SEVERITIES))
        self.name = name
        self.severity = severity
        self.why = why
        self.fix = fix
        self.check = check
        self.size_sensitive = size_sensitive


def table_name(range_var):
    """schema.name (or name) of a pglast RangeVar, as written."""
    if range_var is None:
        return None
    if getattr(range_var, "schemaname", None):
        return "%s.%s" % (range_var.schemaname, range_var.relname)
    return range_var.relname


def alter_table_commands(node, *subtypes):
    """(table, subcommand) for each subcommand of an ALTER TABLE statement (a pglast AlterTableStmt), only
    those of the given AlterTableType `subtypes` when any are given; nothing for another statement."""
    if type(node).__name__ != "AlterTableStmt":
        return
    table = table_name(node.relation)
    for cmd in node.cmds or ():
        if not subtypes or cmd.subtype in subtypes:
            yield table, cmd


def type_name(type_node):
    """The last part of a pglast TypeName (int4, timestamp, varchar, ...), lower case."""
    if type_node is None or not type_node.names:
        return None
    return type_node.names[-1].sval.lower()


def option_names(options):
    """The names of a tuple of pglast DefElem options (VACUUM (FULL), REINDEX (CONCURRENTLY))."""
    return [o.defname.lower() for o in (options or ()) if getattr(o, "defname", None)]
