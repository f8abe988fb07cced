#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: query_check
short_description: Check SQL assertions and time representative queries against a baseline, read-only
version_added: 0.1.0
description:
  - Runs SQL assertions (for example "no appointment without its patient") and times representative
    queries, for the checks after a migration or a restore.
  - Read-only - every assertion and timing runs alone in a C(READ ONLY) transaction that is rolled back,
    under O(statement_timeout), so an assertion cannot change anything; one that tries fails the task with
    a sentence naming it. Each is exactly one SQL statement.
  - A timing is the server's execution time of the query (C(EXPLAIN (ANALYZE, TIMING OFF)), so no rows
    cross the network), the median of O(repeat) runs after one warm-up run, with the plan's scans.
    The query must be one C(EXPLAIN) accepts (C(SELECT), C(WITH ... SELECT), C(VALUES)).
  - With O(baseline) (the result of an earlier run, before the migration), each timing gets its slowdown,
    and the task fails when a query is slower by more than O(max_slowdown_pct).
  - The task fails when an assertion does not hold or a query slowed beyond the limit; the result lists
    every assertion and timing either way.
  - With O(analyze), runs C(ANALYZE) first so the planner sees fresh statistics after a migration - the only
    change the module can make (planner statistics, never data); not in check mode.
options:
  assertions:
    description:
      - SQL assertions, run in order.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The assertion's name, unique, used in messages.
        type: str
        required: true
      sql:
        description: One SQL statement.
        type: str
        required: true
      expect:
        description:
          - The value the statement must return (one row, one column) - C(true) or C(false), a number or a string.
          - Defaults to C(true) unless O(assertions[].rows) is set.
        type: raw
      rows:
        description:
          - The number of rows the statement must return instead (C(0) for "no such rows"), whatever their content.
        type: int
  timings:
    description:
      - Queries to time, in order.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The query's name, unique; the baseline is matched by name.
        type: str
        required: true
      sql:
        description: One SQL statement C(EXPLAIN ANALYZE) accepts.
        type: str
        required: true
  repeat:
    description:
      - Measured runs per timing (after one warm-up run); the median is reported.
    type: int
    default: 5
  baseline:
    description:
      - An earlier result of this module (a registered result or its RV(timings)), or the path of a JSON
        file holding either, to compare the timings with.
    type: raw
  max_slowdown_pct:
    description:
      - A query slower than its baseline by more than this percentage fails the task.
    type: float
    default: 50
  min_slowdown_ms:
    description:
      - A slowdown of fewer milliseconds than this is never counted, whatever its percentage (the timer's
        noise on sub-millisecond queries).
    type: float
    default: 1
  statement_timeout:
    description:
      - Seconds any one statement may run (waiting for locks included) before the server cancels it;
        the task then fails naming the assertion or timing.
    type: int
    default: 30
  analyze:
    description:
      - Run C(ANALYZE) before the assertions and timings (of O(analyze_tables), or of the whole database).
    type: bool
    default: false
  analyze_tables:
    description:
      - The tables to C(ANALYZE) (C(table) or C(schema.table)) with O(analyze).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The assertions and timings only read, so they run in check mode too; C(ANALYZE) does not.
  diff_mode:
    support: none
    details: Nothing is changed but planner statistics.
  platform:
    platforms: posix
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Time the representative queries before the migration
  pgops.runbook.query_check:
    login_db: healthcare_db
    timings:
      - name: patient_by_email
        sql: SELECT id FROM patients WHERE email = 'a@example.org'
  register: before

- name: After the migration - assertions hold, and no query is more than 50 % slower
  pgops.runbook.query_check:
    login_db: healthcare_db
    analyze: true
    assertions:
      - name: every appointment has its patient
        sql: SELECT count(*) FROM appointments a LEFT JOIN patients p ON p.id = a.patient_id WHERE p.id IS NULL
        expect: 0
      - name: no patient without an email
        sql: SELECT 1 FROM patients WHERE email IS NULL
        rows: 0
    timings:
      - name: patient_by_email
        sql: SELECT id FROM patients WHERE email = 'a@example.org'
    baseline: "{{ before }}"
    max_slowdown_pct: 50
'''

RETURN = r'''
assertions:
  description: One entry per assertion - name, ok, value (the value returned, or the number of rows), expected, message.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: every appointment has its patient, ok: true, value: 0, expected: 0, message: "every appointment has its patient: 0."}
timings:
  description:
    - One entry per timing - name, median_ms, runs_ms, plan (the plan's scans, for example C(Seq Scan on patients)),
      before_ms (from O(baseline), or null), slowdown_pct (null without a baseline) and slowed.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: patient_by_email, median_ms: 0.041, runs_ms: [0.04, 0.041, 0.05], plan: [Index Scan on patients],
       before_ms: 0.039, slowdown_pct: 5.1, slowed: false}
analyzed:
  description: The tables analyzed (C((database)) for the whole database); in check mode, the ones that would be.
  returned: always
  type: list
  elements: str
  sample: [public.appointments, public.patients]
statements:
  description: The number of SQL statements sent (each query's BEGIN and ROLLBACK included).
  returned: always
  type: int
  sample: 14
msg:
  description: One sentence - what held, or which assertions failed and which queries slowed.
  returned: always
  type: str
  sample: "2 assertions held; 1 queries timed, none slower than the baseline allows."
'''

from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine
from ansible_collections.pgops.runbook.plugins.module_utils.query_check import run_query_check


def main():
    module = pgops_module(
        dict(
            assertions=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                sql=dict(type="str", required=True),
                expect=dict(type="raw"),
                rows=dict(type="int"),
            )),
            timings=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                sql=dict(type="str", required=True),
            )),
            repeat=dict(type="int", default=5),
            baseline=dict(type="raw"),
            max_slowdown_pct=dict(type="float", default=50.0),
            min_slowdown_ms=dict(type="float", default=1.0),
            statement_timeout=dict(type="int", default=30),
            analyze=dict(type="bool", default=False),
            analyze_tables=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        return run_query_check(settings, assertions=p["assertions"], timings=p["timings"], repeat=p["repeat"],
                               baseline=p["baseline"], max_slowdown_pct=p["max_slowdown_pct"],
                               min_slowdown_ms=p["min_slowdown_ms"], statement_timeout=p["statement_timeout"],
                               analyze_first=p["analyze"], analyze_tables=p["analyze_tables"],
                               check_mode=module.check_mode)

    run_engine(module, engine)


if __name__ == "__main__":
    main()
