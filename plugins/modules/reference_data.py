#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: reference_data
short_description: Load reference data (lookup tables) from a CSV, YAML or JSON file, idempotently
version_added: 0.1.0
description:
  - Makes a table hold the rows of a file, matched by the key columns in O(key) - appointment types,
    ICD codes, plans, countries. Rows missing from the table are inserted, rows whose values differ are
    updated, and with O(prune) rows absent from the file are deleted. Columns of the table that the
    file does not name are left alone (and get their default in new rows).
  - Everything happens in one transaction, so a failure or a killed run leaves the table as it was.
    The table is locked against other writers (C(SHARE ROW EXCLUSIVE); readers are not blocked) from
    the comparison to the commit, and two loads of the same table run one after the other.
  - The file is streamed with C(COPY) into a temporary table of the target's column types, so a large
    file needs little memory and a bad value is reported with its file and line; the rows are then
    written with one C(INSERT ... ON CONFLICT) on the key, which needs a unique index or constraint on
    exactly the O(key) columns.
  - CSV files have a header row naming the columns; an unquoted empty field is NULL and a quoted one
    (C("")) the empty string, as in PostgreSQL's C(COPY). YAML and JSON files hold a list of
    mappings of column to value, every one with the same columns; C(null) is NULL, mappings and
    lists are stored as JSON text (for json and jsonb columns).
options:
  path:
    description: The file on the host running the module.
    type: path
    required: true
  table:
    description: The table, optionally schema-qualified (found through the search path otherwise).
    type: str
    required: true
  key:
    description: The column(s) identifying a row; they must be in the file and have no NULL or repeated values there.
    type: list
    elements: str
    required: true
  format:
    description: The file's format; C(auto) tells it from the extension (C(.csv), C(.yaml), C(.yml), C(.json)).
    type: str
    choices: [ auto, csv, yaml, json ]
    default: auto
  delimiter:
    description: The field separator of a CSV file.
    type: str
    default: ","
  prune:
    description:
      - Also delete the table's rows whose key is not in the file. A row still referenced by a
        foreign key fails the task, and nothing is changed.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for the table lock (or for a row another session is changing) before
        giving up with nothing changed. C(0) waits for ever.
    type: int
    default: 10
  diff_rows:
    description: How many rows of each kind (inserted, updated, deleted) RV(changes) and C(--diff) list at most.
    type: int
    default: 20
extends_documentation_fragment:
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Loads the file into a temporary table and compares; returns the counts and changes, then rolls back.
  diff_mode:
    support: full
    details: The rows inserted, updated (changed columns only) and deleted, up to O(diff_rows) of each.
  platform:
    platforms: posix
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Load the appointment types
  pgops.runbook.reference_data:
    login_db: healthcare_db
    path: /srv/healthcare/reference/appointment_types.csv
    table: public.appointment_types
    key: [code]

- name: Make the ICD codes exactly the file's
  pgops.runbook.reference_data:
    login_db: healthcare_db
    path: /srv/healthcare/reference/icd10.yaml
    table: icd_codes
    key: [code]
    prune: true
'''

RETURN = r'''
inserted:
  description: Rows inserted (or that would be, in check mode).
  returned: success
  type: int
  sample: 3
updated:
  description: Rows whose values differed and were updated.
  returned: success
  type: int
  sample: 1
deleted:
  description: Rows deleted because their key is not in the file (O(prune) only).
  returned: success
  type: int
  sample: 0
unchanged:
  description: Rows of the file the table already held with the same values.
  returned: success
  type: int
  sample: 41
changes:
  description:
    - Up to O(diff_rows) rows of each kind - action (insert, update, delete), key, before and after
      (the changed columns only for an update), values as text.
  returned: success
  type: list
  elements: dict
  sample: [{action: update, key: {code: FOLLOWUP}, before: {duration_minutes: "15"}, after: {duration_minutes: "20"}}]
table:
  description: The table, schema-qualified.
  returned: success
  type: str
  sample: public.appointment_types
columns:
  description: The file's columns.
  returned: success
  type: list
  elements: str
  sample: [code, name, duration_minutes]
key:
  description: The key columns the rows were matched by (O(key)).
  returned: success
  type: list
  elements: str
  sample: [code]
path:
  description: The file loaded (O(path)).
  returned: success
  type: str
  sample: /srv/healthcare/current/reference/appointment_types.csv
msg:
  description: The counts in one sentence.
  returned: always
  type: str
  sample: "/srv/healthcare/current/reference/appointment_types.csv into public.appointment_types: 3 inserted, 1 updated, 0 deleted,
    41 unchanged."
'''

import json

from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine
from ansible_collections.pgops.runbook.plugins.module_utils.reference_data.engine import LoadRequest, load_reference_data


def diff_text(changes, side, limit):
    lines = []
    for change in changes:
        values = change[side]
        if values is None:
            continue
        key = ", ".join("%s=%s" % item for item in sorted(change["key"].items()))
        mark = {"insert": "+", "update": "~", "delete": "-"}[change["action"]]
        lines.append("%s %s %s\n" % (mark, key, json.dumps(values, sort_keys=True)))
    return "".join(lines)


def main():
    module = pgops_module(
        dict(
            path=dict(type="path", required=True),
            table=dict(type="str", required=True),
            key=dict(type="list", elements="str", required=True, no_log=False),
            format=dict(type="str", choices=["auto", "csv", "yaml", "json"], default="auto"),
            delimiter=dict(type="str", default=","),
            prune=dict(type="bool", default=False),
            lock_timeout=dict(type="int", default=10),
            diff_rows=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        request = LoadRequest(p["path"], p["table"], p["key"], fmt=p["format"], delimiter=p["delimiter"],
                              prune=p["prune"], lock_timeout=p["lock_timeout"], diff_rows=p["diff_rows"],
                              check_mode=module.check_mode)
        result = load_reference_data(settings, request)
        counts = "%d inserted, %d updated, %d deleted, %d unchanged" % (
            result["inserted"], result["updated"], result["deleted"], result["unchanged"])
        result["msg"] = "%s into %s: %s%s." % (p["path"], result["table"], counts,
                                               " (check mode: nothing written)" if module.check_mode else "")
        if module._diff:
            more = result["inserted"] + result["updated"] + result["deleted"] - len(result["changes"])
            after = diff_text(result["changes"], "after", p["diff_rows"])
            if more > 0:
                after += "... and %d more changed rows (diff_rows %d)\n" % (more, p["diff_rows"])
            result["diff"] = dict(before=diff_text(result["changes"], "before", p["diff_rows"]), after=after,
                                  before_header="%s now" % result["table"], after_header=p["path"])
        return result

    run_engine(module, engine)


if __name__ == "__main__":
    main()
