# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a health check is. One check = one file in health/checks/ defining CHECK,
plus one line in health/registry.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
SKIPPED = "skipped"
STATUSES = (OK, WARNING, CRITICAL, SKIPPED)
_RANK = {SKIPPED: -1, OK: 0, WARNING: 1, CRITICAL: 2}


class HealthCheck:
    """A named check: at most one SQL statement, then an evaluation in Python.

    - `sql`: a string, or `sql(context, thresholds) -> (text, params)`; None for checks that
      need no statement of their own (they use the shared context).
    - `evaluate(rows, thresholds, context) -> Outcome`; rows is a list of dicts.
    - `thresholds`: defaults; users override them per key. A None default is a
      number that is unset until given.
    - `unavailable(context) -> reason or None`: why the check cannot run here
      (it is then skipped without a statement).
    - `opt_in`: not part of the default selection (e.g. orphaned_records).
    - `run(conn, thresholds, context) -> Outcome`: replaces sql/evaluate for the
      rare check that needs a different statement plan.
    """

    def __init__(self, name, description, evaluate=None, sql=None, thresholds=None,
                 unavailable=None, opt_in=False, run=None):
        self.name = name
        self.description = description
        self.sql = sql
        self.evaluate = evaluate
        self.thresholds = dict(thresholds or {})
        self.unavailable = unavailable
        self.opt_in = opt_in
        self.run = run

    def statement(self, context, thresholds):
        if self.sql is None:
            return None, None
        if callable(self.sql):
            return self.sql(context, thresholds)
        return self.sql, None


class Outcome:
    """The result of one check."""

    def __init__(self, status, message, value=None, details=None):
        if status not in STATUSES:
            raise ValueError("unknown status %r" % status)
        self.status = status
        self.message = message
        self.value = value
        self.details = details

    def as_dict(self, name, thresholds):
        out = dict(name=name, status=self.status, value=self.value, threshold=thresholds, message=self.message)
        if self.details is not None:
            out["details"] = self.details
        return out


def worst(statuses):
    """The most severe of `statuses` (ok when empty)."""
    result = OK
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


def grade_above(value, warning, critical):
    """critical/warning/ok for a value that is bad when high (thresholds reached)."""
    if value is None:
        return OK
    if critical is not None and value >= critical:
        return CRITICAL
    if warning is not None and value >= warning:
        return WARNING
    return OK


def grade_below(value, warning, critical):
    """critical/warning/ok for a value that is bad when low (below the thresholds)."""
    if value is None:
        return OK
    if critical is not None and value < critical:
        return CRITICAL
    if warning is not None and value < warning:
        return WARNING
    return OK


def count_outcome(items, thresholds, noun, describe, key="warning_count"):
    """Outcome for checks that list offending objects: warning (or critical when
    `critical_count` is set and reached) once their number reaches the threshold."""
    count = len(items)
    status = grade_above(count, thresholds.get(key), thresholds.get("critical_count"))
    if count == 0:
        return Outcome(OK, "No %s." % noun, 0, [])
    listed = ", ".join(describe(item) for item in items[:5])
    more = " and %d more" % (count - 5) if count > 5 else ""
    return Outcome(status, "%d %s: %s%s." % (count, noun, listed, more), count, items)


def object_count_check(name, noun, sql):
    """A check counting catalog objects (one row with column n); warning below the
    optional `minimum`, e.g. tables missing after a restore."""
    def evaluate(rows, thresholds, context):
        count = rows[0]["n"]
        status = grade_below(count, thresholds["minimum"], None)
        if status != OK:
            return Outcome(status, "%d %s, fewer than the expected %s." % (count, noun, thresholds["minimum"]), count)
        return Outcome(status, "%d %s." % (count, noun), count)

    return HealthCheck(
        name=name,
        description="Number of %s in user schemas (extensions excluded); warning below minimum (unset by default)." % noun,
        sql=sql,
        evaluate=evaluate,
        thresholds=dict(minimum=None),
    )


def duration_outcome(rows, thresholds, noun, describe):
    """Outcome for sessions or transactions that have lasted too long: each row has
    `seconds`; the worst against warning_seconds / critical_seconds decides."""
    outcome = count_outcome(rows, dict(warning_count=1), "%s for %ss or longer" % (noun, thresholds["warning_seconds"]),
                            describe)
    if rows:
        outcome.status = worst(grade_above(r["seconds"], thresholds["warning_seconds"], thresholds["critical_seconds"])
                               for r in rows)
    return outcome
