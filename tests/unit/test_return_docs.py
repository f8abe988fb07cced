"""The harness's RETURN check (tests/harness/return_docs.py), which every integration test
runs on the results it sees: an undocumented key fails, a documented one does not."""

import pytest

from tests.harness import return_docs


def event(res, action="pgops.runbook.pgbouncer", resolved=None, kind="runner_on_ok", task="Pause the database"):
    return dict(event=kind, event_data=dict(task=task, task_action=action, resolved_action=resolved or action, res=res))


def test_an_undocumented_key_fails_naming_the_module_and_the_key():
    res = dict(changed=True, database="appdb", paused=True, pause_token="x")
    with pytest.raises(AssertionError) as raised:
        return_docs.assert_returns_documented([event(res)])
    assert "pgops.runbook.pgbouncer" in str(raised.value)
    assert "pause_token" in str(raised.value)
    assert "database" not in str(raised.value).split("):", 1)[1]


def test_documented_and_ansible_keys_pass():
    res = dict(changed=True, database="appdb", databases=[], paused=True, waited_s=0.1, msg="Paused appdb.",
               invocation=dict(module_args={}), warnings=[], _ansible_no_log=False, _task="Pause the database")
    return_docs.assert_returns_documented([event(res)])


def test_the_short_name_counts_and_other_modules_do_not():
    res = dict(changed=False, not_a_return_value=1)
    assert return_docs.undocumented_in_events([event(res, action="pgbouncer", resolved="pgops.runbook.pgbouncer")])
    assert return_docs.undocumented_in_events([event(res, action="pgbouncer", resolved="")])
    assert not return_docs.undocumented_in_events([event(res, action="ansible.builtin.debug")])
    assert not return_docs.undocumented_in_events([event(res, action="pgbouncer", resolved="community.general.pgbouncer")])


def test_every_loop_item_is_checked():
    items = [dict(database="a", paused=True, item="a", ansible_loop_var="item", changed=True),
             dict(database="b", paused=True, surprise=2, item="b", ansible_loop_var="item", changed=True)]
    found = return_docs.undocumented_in_events([event(dict(results=items, changed=True, msg="All items completed"))])
    assert found == [("pgbouncer", "Pause the database", ["surprise"])]


def test_a_crash_report_is_ansibles_own_only_in_a_failed_result():
    crash = dict(failed=True, msg="MODULE FAILURE", module_stdout="", module_stderr="Traceback", rc=1, exception="...")
    assert not return_docs.undocumented_in_events([event(crash, kind="runner_on_failed")])
    assert return_docs.undocumented_in_events([event(dict(changed=False, rc=0))]) == [("pgbouncer", "Pause the database", ["rc"])]


@pytest.fixture
def documented(monkeypatch):
    docs = dict(backup_id=dict(returned="success"), deleted=dict(returned="always"), path=dict(returned="on failure"))
    monkeypatch.setattr(return_docs, "documented_returns", lambda module: docs)


def test_a_failed_result_may_not_carry_a_key_documented_for_success_only(documented):
    failed = dict(failed=True, msg="verification failed", backup_id="db-1", deleted=[], path="/x")
    assert return_docs.result_problems("backup", failed) == [
        "backup_id (in a failed result, documented as returned on success only)"]
    assert return_docs.result_problems("backup", dict(failed=False, backup_id="db-1", deleted=[])) == []


def test_failed_when_hides_the_modules_verdict_so_only_presence_is_checked(documented):
    overridden = dict(failed=True, failed_when_result=True, backup_id="db-1", unknown=1)
    assert return_docs.result_problems("backup", overridden) == ["unknown"]


def test_the_file_stats_ansible_adds_are_its_own_only_beside_path_or_dest():
    stats = dict(uid=0, gid=0, owner="root", group="root", mode="0600", state="file", size=10)
    with_path = dict(stats, database="appdb", path="/var/backups/x.dump")
    assert return_docs.result_problems("pgbouncer", with_path) == ["path"]
    assert return_docs.result_problems("pgbouncer", dict(stats, database="appdb")) == sorted(stats)


def test_retries_is_ansibles_own_only_beside_attempts():
    assert return_docs.result_problems("pgbouncer", dict(database="appdb", attempts=2, retries=3)) == []
    assert return_docs.result_problems("pgbouncer", dict(database="appdb", retries=3)) == ["retries"]


def test_what_failed_when_hides_is_ansibles_own():
    overridden = dict(failed=False, failed_when_result=False, failed_when_suppressed_exception="...", database="appdb")
    assert return_docs.result_problems("pgbouncer", overridden) == []
