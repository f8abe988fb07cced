#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: db_snapshot
short_description: Record a database's tables, row counts, indexes, constraints and schema fingerprint, and compare
version_added: 0.1.0
description:
  - Reads, in one read-only REPEATABLE READ transaction, what the runbooks compare
    before and after a migration or a restore, with a fixed number of statements
    whatever the number of tables.
  - Per table (user schemas, extension objects excluded) the row count (the planner's
    estimate, or exact with O(exact_counts)), table, index and total size; every index
    with its validity and definition; every constraint with its definition and
    whether it is validated.
  - A schema fingerprint, the sha256 of a normalised description of tables, columns
    (order, types, defaults, identity, generated, collation), views, indexes,
    constraints, sequences, functions, triggers, enum and domain types and extensions,
    plus one hash per object so a comparison can name what changed. It ignores
    owners, privileges and OIDs, and is the same after a dump and restore - except
    for a table inheriting from a parent that gained columns after the child was
    created, whose column order a restore really does change.
  - With O(compare_to), returns the differences against an earlier snapshot.
options:
  exact_counts:
    description:
      - Count every table's rows with C(count(*)) (one statement, run inside the
        server) instead of reading the planner's estimates. Reads every table.
    type: bool
    default: false
  dest:
    description:
      - Write the snapshot to this file as JSON (atomically; the directory must exist).
        Not written in check mode.
    type: path
  compare_to:
    description:
      - An earlier snapshot, as a dictionary (for example a registered C(snapshot))
        or the path of a JSON file written with O(dest).
    type: raw
  row_tolerance_pct:
    description:
      - Row-count changes up to this percentage of the earlier count are not
        reported. C(0) reports every change.
    type: float
    default: 0
  fail_on_difference:
    description:
      - Fail the task when O(compare_to) finds a difference.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for a table lock (sizes and exact counts need a share lock)
        before giving up, so a snapshot never queues for ever behind a migration.
    type: int
    default: 30
extends_documentation_fragment:
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The snapshot and comparison are read-only; in check mode O(dest) is not written.
  diff_mode:
    support: full
    details: With O(compare_to), the differing objects and row counts before and after.
  platform:
    platforms: posix
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Save the pre-migration baseline
  pgops.runbook.db_snapshot:
    login_db: healthcare_db
    exact_counts: true
    dest: /var/lib/pgops/baseline-2.4.1.json

- name: Compare after the migration, allowing 1 % row drift
  pgops.runbook.db_snapshot:
    login_db: healthcare_db
    exact_counts: true
    compare_to: /var/lib/pgops/baseline-2.4.1.json
    row_tolerance_pct: 1
    fail_on_difference: true
  register: after
'''

RETURN = r'''
snapshot:
  description: The snapshot (also what O(dest) holds, as JSON).
  returned: always
  type: dict
  contains:
    format: {description: The snapshot file format's version., type: int}
    database: {description: Database name., type: str}
    owner: {description: The database's owner., type: str}
    encoding: {description: The database's encoding., type: str}
    collate: {description: The database's LC_COLLATE., type: str}
    ctype: {description: The database's LC_CTYPE., type: str}
    server_version: {description: The server's version string., type: str}
    server_version_num: {description: The server's version number (C(server_version_num))., type: int}
    taken_at: {description: Server time of the snapshot (ISO 8601)., type: str}
    exact_counts: {description: Whether row counts are exact., type: bool}
    tables:
      description: "Per table (C(schema.table)): kind, rows, estimated_rows, table_bytes, index_bytes, total_bytes."
      type: dict
    indexes:
      description: "Per index (C(schema.index)): table, valid, unique, primary, definition, bytes."
      type: dict
    constraints:
      description: "Per constraint (C(table.constraint)): type, definition, validated."
      type: dict
    schema_objects:
      description: A short hash per schema object (C(kind name)).
      type: dict
    fingerprint:
      description: The schema fingerprint (sha256 hex).
      type: str
    total_bytes:
      description: Sum of the tables' total sizes.
      type: int
  sample:
    database: appdb
    tables: {"public.patients": {kind: r, rows: 1200, estimated_rows: 1200, table_bytes: 131072, index_bytes: 65536,
                                 total_bytes: 196608}}
    fingerprint: 5f1c0e...
fingerprint:
  description: The schema fingerprint (the same as RV(snapshot.fingerprint)).
  returned: always
  type: str
  sample: 5f1c0e9a7d3b2c41e8f06a9d5b7c3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d
statements:
  description: The number of SQL statements sent (BEGIN and ROLLBACK of the snapshot transaction included).
  returned: always
  type: int
  sample: 5
differences:
  description: What differs from O(compare_to), each with kind (table_added, table_removed, rows_changed, index_lost,
    index_invalid, constraint_lost, constraint_not_valid, fingerprint_changed, schema_object_added,
    schema_object_removed, schema_object_changed), object, before, after and a message.
  returned: when O(compare_to) is set
  type: list
  elements: dict
  sample:
    - {kind: rows_changed, object: public.patients, before: 1200, after: 1150,
       message: "Table public.patients has 1150 rows, 1200 before (4.17 % change, tolerance 0.0 %)."}
matches:
  description: Whether nothing differs from O(compare_to).
  returned: when O(compare_to) is set
  type: bool
  sample: false
dest:
  description: The file written (or that would be written in check mode).
  returned: when O(dest) is set
  type: str
  sample: /var/lib/pgops/healthcare_db-v2.4-20261125T020512Z.json
'''

from ansible_collections.pgops.runbook.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine
from ansible_collections.pgops.runbook.plugins.module_utils.snapshot import compare_snapshots, load_snapshot, take_snapshot

import json


def diff_text(differences, side):
    return "".join("%s %s: %s\n" % (d["kind"], d["object"], d[side]) for d in differences if d[side] is not None)


def main():
    module = pgops_module(
        dict(
            exact_counts=dict(type="bool", default=False),
            dest=dict(type="path"),
            compare_to=dict(type="raw"),
            row_tolerance_pct=dict(type="float", default=0.0),
            fail_on_difference=dict(type="bool", default=False),
            lock_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        if p["row_tolerance_pct"] < 0:
            raise PgopsError("Option row_tolerance_pct must be 0 or more, got %s." % p["row_tolerance_pct"])
        baseline = load_snapshot(p["compare_to"]) if p["compare_to"] is not None else None
        snapshot, statements = take_snapshot(settings, exact_counts=p["exact_counts"], lock_timeout_s=p["lock_timeout"])
        result = dict(changed=False, snapshot=snapshot, fingerprint=snapshot["fingerprint"], statements=statements)
        if p["dest"]:
            result["dest"] = p["dest"]
            text = json.dumps(snapshot, indent=1, sort_keys=True)
            result["changed"] = True if module.check_mode else write_atomically(p["dest"], text, mode=0o600)
        if baseline is not None:
            differences = compare_snapshots(baseline, snapshot, p["row_tolerance_pct"])
            result.update(differences=differences, matches=not differences)
            if module._diff:
                result["diff"] = dict(before=diff_text(differences, "before"), after=diff_text(differences, "after"),
                                      before_header="baseline (%s)" % baseline.get("taken_at"),
                                      after_header="now (%s)" % snapshot["taken_at"])
            if differences and p["fail_on_difference"]:
                result["failed"] = True
                result["msg"] = "%d differences from the baseline: %s" % (
                    len(differences), " ".join(d["message"] for d in differences[:10]))
        return result

    run_engine(module, engine)


if __name__ == "__main__":
    main()
