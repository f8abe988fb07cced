# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""require-concurrent-reindex: REINDEX without CONCURRENTLY (PostgreSQL 12+) blocks writes to
the table for the whole rebuild, and reads that would use the index. It fires on every server
version: before 12 there is no CONCURRENTLY, and the detail says how to rebuild an index there.
REINDEX TABLE reports the table; REINDEX INDEX, SCHEMA, DATABASE and SYSTEM name no table (the
detail says what is rebuilt). An index created earlier in the same source is ignored.
REINDEX (CONCURRENTLY false) is not concurrent."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import ReindexObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, SHARE, WARNING, Hit, Rule, table_name
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.ban_concurrent_index_creation_in_transaction import option_enabled

OLD_SERVER = " PostgreSQL before 12 has no REINDEX CONCURRENTLY: CREATE INDEX CONCURRENTLY a copy, then DROP INDEX CONCURRENTLY the old one."


def _what(node):
    """(table, lock, detail) of a REINDEX statement."""
    if node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX:
        return None, ACCESS_EXCLUSIVE, "Index %s (ACCESS EXCLUSIVE on the index, SHARE on its table)." % table_name(node.relation)
    if node.kind == ReindexObjectType.REINDEX_OBJECT_TABLE:
        return table_name(node.relation), SHARE, None
    if node.kind == ReindexObjectType.REINDEX_OBJECT_SCHEMA:
        return None, SHARE, "Every table of schema %s, one after the other." % node.name
    if node.kind == ReindexObjectType.REINDEX_OBJECT_SYSTEM:
        return None, SHARE, "Every system catalog (REINDEX SYSTEM cannot run CONCURRENTLY: keep it out of migrations)."
    return None, SHARE, "Every table of the database, one after the other."


def check(statement, state):
    node = statement.node
    if not isinstance(node, ast.ReindexStmt):
        return
    if any(o.defname.lower() == "concurrently" and option_enabled(o) for o in node.params or () if getattr(o, "defname", None)):
        return
    if node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX and state.index_created_here(table_name(node.relation)):
        return
    table, lock, detail = _what(node)
    if state.server_version_num is not None and state.server_version_num < 120000:
        detail = (detail or "") + OLD_SERVER
    yield Hit(table, lock, detail=detail.strip() if detail else None, rewrites=True)


RULE = Rule(
    name="require-concurrent-reindex",
    severity=WARNING,
    why="REINDEX without CONCURRENTLY holds a SHARE lock on the table (every INSERT, UPDATE and DELETE waits) and ACCESS "
        "EXCLUSIVE on each index it rebuilds (queries that would use it wait) for the whole rebuild.",
    fix="REINDEX ... CONCURRENTLY (PostgreSQL 12+), alone in a migration that runs outside a transaction.",
    check=check,
)
