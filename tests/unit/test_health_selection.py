"""The health engine's pure parts: choosing checks, validating thresholds, the summary
line and which results fail the task."""

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.health.engine import (
    failing_checks,
    resolve_thresholds,
    select_checks,
    summarize,
)
from ansible_collections.pgops.runbook.plugins.module_utils.health.registry import CHECKS

REGISTRY_ORDER = [c.name for c in CHECKS]
OPT_IN = ["orphaned_records", "backup_destination"]


def names(checks):
    return [c.name for c in checks]


# --- select_checks ------------------------------------------------------------------------------------

def test_registry_names_are_unique():
    assert len(set(REGISTRY_ORDER)) == len(REGISTRY_ORDER)


def test_default_is_every_check_but_the_opt_in_ones():
    chosen = names(select_checks(["default"], []))
    assert "orphaned_records" not in chosen
    assert chosen == [n for n in REGISTRY_ORDER if n not in OPT_IN]


@pytest.mark.parametrize("checks", [None, []])
def test_no_selection_means_default(checks):
    assert names(select_checks(checks, None)) == names(select_checks(["default"], []))


def test_all_includes_the_opt_in_checks_in_registry_order():
    assert names(select_checks(["all"], [])) == REGISTRY_ORDER
    assert "orphaned_records" in REGISTRY_ORDER


def test_named_checks_come_back_in_registry_order():
    assert names(select_checks(["security", "connection", "deadlocks"], [])) == ["connection", "deadlocks", "security"]


def test_duplicates_collapse():
    chosen = names(select_checks(["connection", "connection", "default", "orphaned_records", "connection"], []))
    assert chosen.count("connection") == 1
    assert chosen == [n for n in REGISTRY_ORDER if n != "backup_destination"]


def test_skip_checks_removes():
    chosen = names(select_checks(["default"], ["disk_space", "security"]))
    assert "disk_space" not in chosen and "security" not in chosen
    assert len(chosen) == len(REGISTRY_ORDER) - len(OPT_IN) - 2


def test_an_unknown_check_is_refused_with_the_known_ones():
    with pytest.raises(PgopsError) as caught:
        select_checks(["conections"], [])
    message = str(caught.value)
    assert message.startswith("Option checks ")
    assert "'conections'" in message
    assert "default, all" in message
    for name in REGISTRY_ORDER:
        assert name in message


def test_an_unknown_skipped_check_is_refused_with_the_known_ones():
    with pytest.raises(PgopsError) as caught:
        select_checks(["default"], ["disk"])
    message = str(caught.value)
    assert message.startswith("Option skip_checks ")
    assert "'disk'" in message
    assert "disk_space" in message and "security" in message


# --- resolve_thresholds -------------------------------------------------------------------------------

def test_defaults_for_every_check():
    resolved = resolve_thresholds(None)
    assert sorted(resolved) == sorted(REGISTRY_ORDER)
    assert resolved["connections"] == dict(warning_pct=80, critical_pct=95)


def test_overrides_merge_and_leave_the_defaults_alone():
    resolved = resolve_thresholds(dict(connections=dict(warning_pct=70)))
    assert resolved["connections"] == dict(warning_pct=70, critical_pct=95)
    assert resolve_thresholds({})["connections"]["warning_pct"] == 80
    assert dict((c.name, c) for c in CHECKS)["connections"].thresholds["warning_pct"] == 80


def test_an_unknown_check_in_thresholds():
    with pytest.raises(PgopsError) as caught:
        resolve_thresholds(dict(conections=dict(warning_pct=70)))
    message = str(caught.value)
    assert message.startswith("Option thresholds ")
    assert "'conections'" in message and "connections" in message


def test_an_unknown_threshold_lists_the_valid_ones():
    with pytest.raises(PgopsError) as caught:
        resolve_thresholds(dict(connections=dict(warn_pct=70)))
    message = str(caught.value)
    assert "thresholds.connections" in message
    assert "'warn_pct'" in message
    assert "critical_pct, warning_pct" in message


def test_a_check_without_thresholds_says_none_are_valid():
    with pytest.raises(PgopsError) as caught:
        resolve_thresholds(dict(client_tools=dict(anything=1)))
    assert "valid: none" in str(caught.value)


@pytest.mark.parametrize("value", ["lots", True, [80], {"pct": 80}])
def test_a_number_of_the_wrong_type(value):
    with pytest.raises(PgopsError) as caught:
        resolve_thresholds(dict(connections=dict(warning_pct=value)))
    assert "Option thresholds.connections.warning_pct must be a number" in str(caught.value)


@pytest.mark.parametrize("text, number", [("70", 70), ("70.5", 70.5), ("-1", -1), ("0", 0)])
def test_numeric_strings_become_numbers(text, number):
    value = resolve_thresholds(dict(connections=dict(warning_pct=text)))["connections"]["warning_pct"]
    assert value == number
    assert type(value) is type(number)


def test_none_unsets_a_number_and_a_number_sets_an_unset_one():
    resolved = resolve_thresholds(dict(connections=dict(critical_pct=None), replication=dict(min_standbys=2)))
    assert resolved["connections"]["critical_pct"] is None
    assert resolved["replication"]["min_standbys"] == 2


def test_bool_thresholds_take_bools_only():
    assert resolve_thresholds(dict(archiver=dict(require_archiving=True)))["archiver"]["require_archiving"] is True
    with pytest.raises(PgopsError) as caught:
        resolve_thresholds(dict(archiver=dict(require_archiving="yes")))
    assert "Option thresholds.archiver.require_archiving must be true or false" in str(caught.value)
    with pytest.raises(PgopsError):
        resolve_thresholds(dict(security=dict(require_connection_logging=1)))


@pytest.mark.parametrize("value", [70, "warning_pct=70", [70], None])
def test_a_per_check_value_must_be_a_dict(value):
    with pytest.raises(PgopsError) as caught:
        resolve_thresholds(dict(connections=value))
    assert "Option thresholds.connections must be a dictionary" in str(caught.value)


# --- summarize / failing_checks ------------------------------------------------------------------------

def results(*statuses):
    return [dict(name="check%d" % i, status=s) for i, s in enumerate(statuses)]


def test_summary_of_a_clean_run():
    summary = summarize(results(*["ok"] * 28))
    assert summary["line"] == "28 checks passed, 0 warnings, 0 failed"
    assert (summary["ok"], summary["warning"], summary["critical"], summary["skipped"], summary["total"]) == (28, 0, 0, 0, 28)


def test_summary_singular_and_skipped():
    summary = summarize(results("ok", "warning", "critical", "skipped", "skipped"))
    assert summary["line"] == "1 check passed, 1 warning, 1 failed, 2 skipped"
    assert summary["total"] == 5


def test_summary_plural_warnings():
    assert summarize(results("ok", "ok", "warning", "warning", "critical", "critical", "critical"))["line"] == \
        "2 checks passed, 2 warnings, 3 failed"


MIXED = results("ok", "warning", "critical", "skipped", "critical")


def test_fail_on_critical():
    assert [r["name"] for r in failing_checks(MIXED, "critical")] == ["check2", "check4"]


def test_fail_on_warning():
    assert [r["name"] for r in failing_checks(MIXED, "warning")] == ["check1", "check2", "check4"]


def test_fail_on_never():
    assert failing_checks(MIXED, "never") == []


def test_skipped_never_fails():
    assert failing_checks(results("skipped", "ok"), "warning") == []
