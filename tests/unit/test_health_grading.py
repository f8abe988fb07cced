"""How a measured value becomes ok / warning / critical (health/check.py)."""

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import (
    CRITICAL,
    OK,
    SKIPPED,
    WARNING,
    Outcome,
    count_outcome,
    duration_outcome,
    grade_above,
    grade_below,
    worst,
)


@pytest.mark.parametrize("value, expected", [
    (0, OK), (79.99, OK), (80, WARNING), (94.9, WARNING), (95, CRITICAL), (1000, CRITICAL),
])
def test_grade_above_counts_a_reached_threshold(value, expected):
    assert grade_above(value, 80, 95) == expected


@pytest.mark.parametrize("value, expected", [
    (100, OK), (30, OK), (29.99, WARNING), (10, WARNING), (9.99, CRITICAL), (0, CRITICAL),
])
def test_grade_below_is_bad_strictly_below(value, expected):
    assert grade_below(value, 30, 10) == expected


def test_unset_thresholds_never_grade():
    assert grade_above(10 ** 12, None, None) == OK
    assert grade_above(5, None, 5) == CRITICAL
    assert grade_above(5, 5, None) == WARNING
    assert grade_below(-1, None, None) == OK
    assert grade_below(0, None, 1) == CRITICAL
    assert grade_below(0, 1, None) == WARNING


def test_no_value_is_ok():
    assert grade_above(None, 1, 2) == OK
    assert grade_below(None, 1, 2) == OK


def test_worst():
    assert worst([]) == OK
    assert worst([OK, WARNING, OK]) == WARNING
    assert worst(iter([WARNING, CRITICAL, OK])) == CRITICAL
    assert worst([SKIPPED, WARNING]) == WARNING


def test_an_outcome_refuses_an_unknown_status():
    with pytest.raises(ValueError):
        Outcome("fine", "text")


def test_outcome_as_dict_carries_details_only_when_given():
    assert Outcome(OK, "m", 1).as_dict("c", {"t": 1}) == dict(name="c", status=OK, value=1, threshold={"t": 1}, message="m")
    assert Outcome(OK, "m", 1, []).as_dict("c", {})["details"] == []


def test_count_outcome_without_items():
    outcome = count_outcome([], dict(warning_count=1), "invalid indexes", str)
    assert (outcome.status, outcome.value, outcome.details) == (OK, 0, [])
    assert outcome.message == "No invalid indexes."


def test_count_outcome_lists_five_and_counts_the_rest():
    items = ["i%d" % n for n in range(7)]
    outcome = count_outcome(items, dict(warning_count=1), "invalid indexes", lambda i: i.upper())
    assert outcome.status == WARNING and outcome.value == 7 and outcome.details == items
    assert outcome.message == "7 invalid indexes: I0, I1, I2, I3, I4 and 2 more."


def test_count_outcome_thresholds():
    assert count_outcome(["a"], dict(warning_count=2), "x", str).status == OK
    assert count_outcome(["a", "b"], dict(warning_count=2), "x", str).status == WARNING
    assert count_outcome(["a", "b"], dict(warning_count=1, critical_count=2), "x", str).status == CRITICAL
    assert count_outcome(["a"], dict(warning_count=None, critical_count=1), "x", str).status == CRITICAL


def test_count_outcome_with_another_key():
    outcome = count_outcome(["a", "b", "c"], dict(min_count=3), "x", str, key="min_count")
    assert outcome.status == WARNING


def test_duration_outcome_takes_the_longest():
    thresholds = dict(warning_seconds=60, critical_seconds=600)

    def describe(row):
        return "pid %s" % row["pid"]

    assert duration_outcome([], thresholds, "transactions idle", describe).message == \
        "No transactions idle for 60s or longer."
    warning = duration_outcome([dict(pid=1, seconds=61.5)], thresholds, "transactions idle", describe)
    assert warning.status == WARNING and warning.value == 1
    assert warning.message == "1 transactions idle for 60s or longer: pid 1."
    critical = duration_outcome([dict(pid=1, seconds=61), dict(pid=2, seconds=600)], thresholds, "sessions", describe)
    assert critical.status == CRITICAL and critical.value == 2
