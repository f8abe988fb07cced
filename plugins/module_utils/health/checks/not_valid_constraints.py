# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""not_valid_constraints: constraints added NOT VALID and never validated (rows
that violate them may exist)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import HealthCheck, count_outcome

SQL = """
SELECT c.conname AS constraint, c.conrelid::regclass::text AS "table",
       CASE c.contype WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' ELSE c.contype::text END AS type,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE NOT c.convalidated AND """ + user_namespace("n") + """
ORDER BY 2, 1
"""


def evaluate(rows, thresholds, context):
    return count_outcome(rows, thresholds, "constraints not validated (run ALTER TABLE ... VALIDATE CONSTRAINT)",
                         lambda r: "%s on %s" % (r["constraint"], r["table"]))


CHECK = HealthCheck(
    name="not_valid_constraints",
    description="CHECK and FOREIGN KEY constraints still NOT VALID; warning at warning_count, critical at critical_count.",
    sql=SQL,
    evaluate=evaluate,
    thresholds=dict(warning_count=1, critical_count=None),
)
