"""Retention's plan: which backups of one database and label go."""

import datetime

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.backup.retention import RetentionPolicy, plan
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.timezone.utc)


class Entry:
    def __init__(self, name, days_ago, verified=True):
        self.backup_id = name
        self.finished_at = (NOW - datetime.timedelta(days=days_ago)).isoformat()
        self.verified = verified


def ids(entries):
    return sorted(e.backup_id for e in entries)


def test_no_rule_deletes_nothing():
    assert plan([Entry("a", 30), Entry("b", 20)], RetentionPolicy(), NOW) == []


def test_keep_last():
    entries = [Entry("d%d" % i, i) for i in range(5)]
    assert ids(plan(entries, RetentionPolicy(keep_last=2), NOW)) == ["d2", "d3", "d4"]


def test_keep_days_or_keep_last_either_keeps():
    entries = [Entry("d%d" % i, i * 3) for i in range(5)]  # 0, 3, 6, 9, 12 days old
    assert ids(plan(entries, RetentionPolicy(keep_days=7), NOW)) == ["d3", "d4"]
    assert ids(plan(entries, RetentionPolicy(keep_days=7, keep_last=4), NOW)) == ["d4"]


def test_the_newest_verified_backup_always_survives():
    entries = [Entry("old-ok", 10), Entry("new-bad", 1, verified=False), Entry("newer-bad", 0, verified=False)]
    assert ids(plan(entries, RetentionPolicy(keep_last=1), NOW)) == ["new-bad"]


def test_min_keep_wins_over_the_rules():
    entries = [Entry("d%d" % i, 10 + i) for i in range(4)]
    assert ids(plan(entries, RetentionPolicy(keep_days=1, min_keep=3), NOW)) == ["d3"]


def test_kept_ids_and_pending_backups_count():
    entries = [Entry("d%d" % i, i) for i in range(4)]
    assert ids(plan(entries, RetentionPolicy(keep_last=1), NOW, keep_ids=("d3",))) == ["d1", "d2"]
    # A would-be backup (check mode) takes one keep_last slot.
    assert ids(plan(entries, RetentionPolicy(keep_last=2), NOW, pending=1)) == ["d1", "d2", "d3"]


@pytest.mark.parametrize("options, fragment", [
    (dict(keep_last=0), "retention.keep_last"),
    (dict(keep_days=-1), "retention.keep_days"),
    (dict(min_keep=0), "retention.min_keep"),
])
def test_bad_policies(options, fragment):
    with pytest.raises(PgopsError, match=fragment.replace(".", r"\.")):
        RetentionPolicy(**options)
