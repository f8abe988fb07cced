# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every health check, in report order. Adding a check: one file in checks/ that
defines CHECK, and one line here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.health.checks import (
    archiver,
    backup_freshness,
    migration_status,
    blocking_locks,
    cache_hit_ratio,
    client_tools,
    connection,
    connections,
    database_size,
    deadlocks,
    disk_space,
    foreign_key_count,
    idle_in_transaction,
    index_count,
    invalid_indexes,
    long_running_queries,
    not_valid_constraints,
    orphaned_records,
    prepared_transactions,
    replication,
    replication_slots,
    security,
    seq_scan_heavy,
    sequence_exhaustion,
    server_version,
    slow_queries,
    table_bloat,
    table_count,
    unused_indexes,
    xid_wraparound,
)

CHECKS = tuple(module.CHECK for module in (
    connection,
    server_version,
    client_tools,
    database_size,
    table_count,
    index_count,
    foreign_key_count,
    connections,
    cache_hit_ratio,
    long_running_queries,
    idle_in_transaction,
    blocking_locks,
    prepared_transactions,
    deadlocks,
    xid_wraparound,
    sequence_exhaustion,
    invalid_indexes,
    unused_indexes,
    table_bloat,
    seq_scan_heavy,
    replication,
    replication_slots,
    archiver,
    backup_freshness,
    migration_status,
    not_valid_constraints,
    orphaned_records,
    slow_queries,
    disk_space,
    security,
))
