"""Each check's evaluation, given rows shaped as its SQL returns them and the real
HealthContext without a connection (see conftest.make_context)."""

import datetime
import os
import struct

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.health.checks import (
    archiver,
    cache_hit_ratio,
    connection,
    connections,
    deadlocks,
    disk_space,
    replication,
    replication_slots,
    security,
    sequence_exhaustion,
    server_version,
    slow_queries,
    xid_wraparound,
)
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, OK, SKIPPED, WARNING

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 25, 1, 0, 0, tzinfo=UTC)
INT_MAX = 2147483647
BIGINT_MAX = 9223372036854775807
BIGINT_MIN = -9223372036854775808


def defaults(check_module, **overrides):
    thresholds = dict(check_module.CHECK.thresholds)
    thresholds.update(overrides)
    return thresholds


# --- sequence_exhaustion -----------------------------------------------------------------------------

def sequence(last, minimum=1, maximum=BIGINT_MAX, increment=1, column_type="bigint", name="public.orders_id_seq"):
    caps = dict(smallint=32767, integer=INT_MAX)
    floors = dict(smallint=-32768, integer=-INT_MAX - 1)
    return dict(sequence=name, last_value=last, min_value=minimum, max_value=maximum, increment_by=increment,
                column_table="public.orders", column_name="id", column_type=column_type,
                column_max=caps.get(column_type), column_min=floors.get(column_type))


def test_sequence_usage_of_its_own_range():
    assert sequence_exhaustion.usage_pct(sequence(76, maximum=101)) == pytest.approx(75.0)
    assert sequence_exhaustion.usage_pct(sequence(1, maximum=101)) == 0.0


def test_a_bigint_sequence_feeding_an_integer_column_is_capped_by_the_column():
    half = sequence(2 ** 30 + 1, column_type="integer")
    assert sequence_exhaustion.usage_pct(half) == pytest.approx(50.0)
    uncapped = sequence(2 ** 30 + 1, column_type="bigint")
    assert sequence_exhaustion.usage_pct(uncapped) < 0.01


def test_a_smallint_column_caps_at_32767():
    assert sequence_exhaustion.usage_pct(sequence(32767, column_type="smallint")) == pytest.approx(100.0)


def test_a_descending_sequence_counts_down_from_its_maximum():
    assert sequence_exhaustion.usage_pct(sequence(-91, minimum=-100, maximum=-1, increment=-1)) == pytest.approx(90.909, abs=0.001)
    assert sequence_exhaustion.usage_pct(sequence(-1, minimum=-100, maximum=-1, increment=-1)) == 0.0


def test_a_descending_bigint_sequence_feeding_an_integer_column_is_capped_by_the_column():
    row = sequence(-2147483000, minimum=BIGINT_MIN, maximum=-1, increment=-1, column_type="integer")
    assert sequence_exhaustion.usage_pct(row) > 99


def test_sequence_evaluate_grades_the_worst_and_names_the_column(context_factory):
    rows = [sequence(10, maximum=101, name="public.a_seq"),
            sequence(76, maximum=101, name="public.b_seq"),
            sequence(2147483000, column_type="integer", name="public.c_seq")]
    outcome = sequence_exhaustion.evaluate(rows, defaults(sequence_exhaustion), context_factory())
    assert outcome.status == CRITICAL
    assert outcome.value == 2
    assert [r["sequence"] for r in outcome.details] == ["public.c_seq", "public.b_seq"]
    assert "public.c_seq 100.0 % (feeds integer column public.orders.id)" in outcome.message
    assert "public.a_seq" not in outcome.message


def test_sequence_evaluate_warning_only(context_factory):
    outcome = sequence_exhaustion.evaluate([sequence(76, maximum=101)], defaults(sequence_exhaustion), context_factory())
    assert outcome.status == WARNING


def test_a_sequence_never_used_or_not_readable_is_left_out(context_factory):
    rows = [dict(sequence(0, maximum=101), last_value=None), sequence(95, maximum=101, name="public.b_seq")]
    outcome = sequence_exhaustion.evaluate(rows, defaults(sequence_exhaustion), context_factory())
    assert (outcome.status, outcome.value) == (CRITICAL, 1)
    assert [r["sequence"] for r in outcome.details] == ["public.b_seq"]


def test_sequence_evaluate_nothing_found(context_factory):
    outcome = sequence_exhaustion.evaluate([sequence(5, maximum=101)], defaults(sequence_exhaustion), context_factory())
    assert (outcome.status, outcome.value) == (OK, 0)


# --- replication ---------------------------------------------------------------------------------------

def standby(name, state="streaming", lag=0.5, lag_bytes=0):
    return dict(application_name=name, client_addr="10.0.0.2", state=state, sync_state="async",
                replay_lag_seconds=lag, replay_lag_bytes=lag_bytes)


def primary_outcome(context_factory, rows, **thresholds):
    return replication.evaluate(rows, defaults(replication, **thresholds), context_factory(in_recovery=False))


def test_replication_statement_depends_on_the_role(context_factory):
    assert replication.statement(context_factory(in_recovery=False), {})[0] == replication.PRIMARY_SQL
    assert replication.statement(context_factory(in_recovery=True), {})[0] == replication.STANDBY_SQL


def test_streaming_standbys_within_the_lag_are_ok(context_factory):
    outcome = primary_outcome(context_factory, [standby("s1"), standby("s2", lag=29.9)])
    assert (outcome.status, outcome.value) == (OK, 2)


@pytest.mark.parametrize("lag, status", [(30, WARNING), (299, WARNING), (300, CRITICAL)])
def test_replay_lag_grades(context_factory, lag, status):
    assert primary_outcome(context_factory, [standby("s1", lag=lag)]).status == status


def test_a_caught_up_idle_standby_without_a_lag_figure_is_ok(context_factory):
    assert primary_outcome(context_factory, [standby("s1", lag=None)]).status == OK


@pytest.mark.parametrize("state, status", [("catchup", WARNING), ("startup", WARNING), ("backup", WARNING),
                                           ("stopping", CRITICAL)])
def test_a_standby_not_streaming(context_factory, state, status):
    outcome = primary_outcome(context_factory, [standby("s1"), standby("s2", state=state)])
    assert outcome.status == status
    assert outcome.value == 1
    assert "s2 %s" % state in outcome.message


def test_fewer_streaming_standbys_than_min_standbys_is_critical(context_factory):
    outcome = primary_outcome(context_factory, [standby("s1"), standby("s2", state="catchup")], min_standbys=2)
    assert outcome.status == CRITICAL
    assert outcome.message.startswith("1 standby streaming, 2 expected")


def test_min_standbys_reached(context_factory):
    assert primary_outcome(context_factory, [standby("s1"), standby("s2")], min_standbys=2).status == OK


def test_no_standby_is_fine_unless_required(context_factory):
    assert primary_outcome(context_factory, []).status == OK
    required = primary_outcome(context_factory, [], min_standbys=1)
    assert required.status == CRITICAL
    assert "0 standby streaming, 1 expected" in required.message


def test_replication_details_hidden_from_the_role_are_skipped(context_factory):
    hidden = dict(standby("s1"), state=None, replay_lag_seconds=None, replay_lag_bytes=None)
    outcome = primary_outcome(context_factory, [hidden])
    assert outcome.status == SKIPPED
    assert "pg_monitor" in outcome.message


def standby_row(status="streaming", delay=0.0, paused=False):
    return dict(receiver_status=status, receive_lsn="0/3000148", replay_lsn="0/3000148", replay_delay_seconds=delay,
                replay_paused=paused)


def standby_outcome(context_factory, row):
    return replication.evaluate([row], defaults(replication), context_factory(in_recovery=True))


def test_a_standby_receiving_and_replaying_is_ok(context_factory):
    outcome = standby_outcome(context_factory, standby_row(delay=2.5))
    assert (outcome.status, outcome.value) == (OK, 2.5)


@pytest.mark.parametrize("receiver", [None, "stopping", "starting", "waiting"])
def test_a_standby_whose_receiver_is_not_streaming_is_critical(context_factory, receiver):
    outcome = standby_outcome(context_factory, standby_row(status=receiver))
    assert outcome.status == CRITICAL
    assert (receiver or "not running") in outcome.message


def test_paused_replay_is_a_warning(context_factory):
    outcome = standby_outcome(context_factory, standby_row(paused=True))
    assert outcome.status == WARNING
    assert "paused" in outcome.message


def test_paused_replay_does_not_hide_a_critical_delay(context_factory):
    assert standby_outcome(context_factory, standby_row(delay=301, paused=True)).status == CRITICAL


def test_a_standby_that_has_replayed_no_transaction_yet(context_factory):
    row = dict(standby_row(delay=None), receive_lsn="0/3000200")
    outcome = standby_outcome(context_factory, row)
    assert outcome.status in (OK, WARNING, CRITICAL)


# --- replication_slots ------------------------------------------------------------------------------

def slot(name, active=True, wal_status="reserved", retained=1024):
    return dict(slot_name=name, slot_type="physical", database=None, active=active, wal_status=wal_status,
                retained_bytes=retained)


def slots_outcome(context_factory, rows, **thresholds):
    return replication_slots.evaluate(rows, defaults(replication_slots, **thresholds), context_factory())


def test_active_slots_are_ok(context_factory):
    outcome = slots_outcome(context_factory, [slot("a"), slot("b")])
    assert (outcome.status, outcome.value) == (OK, 0)
    assert outcome.message == "2 replication slots, all in use."


def test_an_inactive_slot_is_a_warning(context_factory):
    outcome = slots_outcome(context_factory, [slot("a"), slot("b", active=False, retained=None)])
    assert (outcome.status, outcome.value) == (WARNING, 1)
    assert "b inactive" in outcome.message and "a " not in outcome.message


@pytest.mark.parametrize("wal_status", ["lost", "unreserved"])
def test_a_slot_whose_wal_is_gone_is_critical(context_factory, wal_status):
    assert slots_outcome(context_factory, [slot("a", wal_status=wal_status)]).status == CRITICAL


def test_retained_wal_at_the_threshold_is_critical(context_factory):
    assert slots_outcome(context_factory, [slot("a", retained=999)], critical_retained_bytes=1000).status == OK
    assert slots_outcome(context_factory, [slot("a", retained=1000)], critical_retained_bytes=1000).status == CRITICAL
    assert slots_outcome(context_factory, [slot("a", retained=10 * 1024 ** 3)]).status == CRITICAL


# --- archiver ----------------------------------------------------------------------------------------------

def archiver_row(mode="on", archived=None, failed=None):
    return dict(archived_count=7, last_archived_wal="000000010000000000000007",
                last_archived_time=archived, failed_count=2 if failed else 0,
                last_failed_wal="000000010000000000000008" if failed else None, last_failed_time=failed,
                archive_mode=mode)


def archiver_outcome(context_factory, row, **thresholds):
    return archiver.evaluate([row], defaults(archiver, **thresholds), context_factory())


def test_archiving_that_works(context_factory):
    outcome = archiver_outcome(context_factory, archiver_row(archived=NOW, failed=NOW - datetime.timedelta(hours=1)))
    assert outcome.status == OK
    assert outcome.details["last_archived_time"] == NOW.isoformat()


def test_archiving_failing_since_the_last_success_is_critical(context_factory):
    outcome = archiver_outcome(context_factory, archiver_row(archived=NOW, failed=NOW + datetime.timedelta(seconds=1)))
    assert outcome.status == CRITICAL
    assert "000000010000000000000008" in outcome.message
    assert outcome.value == 2


def test_archiving_that_never_succeeded_is_critical(context_factory):
    outcome = archiver_outcome(context_factory, archiver_row(archived=None, failed=NOW))
    assert outcome.status == CRITICAL
    assert "never" in outcome.message


def test_archiving_off(context_factory):
    assert archiver_outcome(context_factory, archiver_row(mode="off")).status == OK
    required = archiver_outcome(context_factory, archiver_row(mode="off"), require_archiving=True)
    assert required.status == WARNING
    assert "off" in required.message


# --- deadlocks -------------------------------------------------------------------------------------------------

def deadlocks_outcome(context_factory, count, seconds):
    row = dict(deadlocks=count, since=NOW - datetime.timedelta(seconds=seconds), seconds=float(seconds))
    return deadlocks.evaluate([row], defaults(deadlocks), context_factory())


def test_a_deadlock_just_after_a_restart_counts_over_one_hour(context_factory):
    outcome = deadlocks_outcome(context_factory, 1, 60)
    assert outcome.value == 1.0
    assert outcome.status == WARNING


def test_deadlock_rate_over_a_longer_window(context_factory):
    assert deadlocks_outcome(context_factory, 1, 7200).value == 0.5
    assert deadlocks_outcome(context_factory, 1, 7200).status == OK
    assert deadlocks_outcome(context_factory, 20, 7200).status == CRITICAL
    assert deadlocks_outcome(context_factory, 0, 10).status == OK


# --- xid_wraparound --------------------------------------------------------------------------------------

def xid_row(database_age, table_age=None, multixact_age=0, freeze=200000000, mxid_freeze=400000000):
    return dict(oldest_database="appdb", database_age=database_age, database_multixact_age=multixact_age,
                oldest_table="public.big" if table_age is not None else None, table_age=table_age,
                freeze_max_age=freeze, multixact_freeze_max_age=mxid_freeze)


def xid_outcome(context_factory, row, **thresholds):
    return xid_wraparound.evaluate([row], defaults(xid_wraparound, **thresholds), context_factory())


def test_xid_age_as_a_percentage_of_the_freeze_max_age(context_factory):
    outcome = xid_outcome(context_factory, xid_row(150000000))
    assert (outcome.status, outcome.value) == (OK, 150000000)
    assert "75.00" in outcome.message


def test_the_oldest_table_counts_too(context_factory):
    outcome = xid_outcome(context_factory, xid_row(1000, table_age=200000000))
    assert (outcome.status, outcome.value) == (WARNING, 200000000)


def test_xid_critical_at_twice_the_freeze_max_age(context_factory):
    assert xid_outcome(context_factory, xid_row(399999999)).status == WARNING
    assert xid_outcome(context_factory, xid_row(400000000)).status == CRITICAL


def test_critical_age_whatever_the_setting(context_factory):
    row = xid_row(1500000000, freeze=2000000000)
    assert xid_outcome(context_factory, row).status == CRITICAL
    assert xid_outcome(context_factory, row, critical_age=1500000001).status == OK


def test_multixact_age_counts(context_factory):
    assert xid_outcome(context_factory, xid_row(10, multixact_age=400000000)).status == WARNING


# --- security: pg_hba rules -------------------------------------------------------------------------------

def hba(line, kind, address, method, netmask=None, error=None, users=("all",)):
    return dict(line_number=line, type=kind, database=["all"], user_name=list(users), address=address,
                netmask=netmask, auth_method=method, error=error)


@pytest.mark.parametrize("rule", [
    hba(1, "local", None, "trust"),
    hba(2, "host", "127.0.0.1", "trust", "255.255.255.255"),
    hba(3, "host", "::1", "trust", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    hba(4, "host", "samehost", "trust"),
    hba(5, "hostssl", "0.0.0.0", "scram-sha-256", "0.0.0.0"),
    hba(6, "hostssl", "all", "password"),
    hba(7, "hostnossl", "0.0.0.0", "reject", "0.0.0.0"),
    hba(8, "hostssl", "10.0.0.0", "cert", "255.0.0.0"),
], ids=lambda r: "line%s" % r["line_number"])
def test_safe_hba_rules(rule):
    assert security._hba_findings([rule]) == []


def test_trust_from_a_network_is_critical():
    findings = security._hba_findings([hba(12, "host", "10.0.0.0", "trust", "255.0.0.0", users=("app", "ops"))])
    assert len(findings) == 1
    status, text = findings[0]
    assert status == CRITICAL
    assert "line 12" in text and "10.0.0.0" in text and "trust" in text and "app,ops" in text


def test_trust_over_ssl_from_anywhere_is_still_critical():
    assert security._hba_findings([hba(3, "hostssl", "all", "trust")])[0][0] == CRITICAL


def test_a_host_rule_from_a_remote_network_without_ssl_is_a_warning():
    findings = security._hba_findings([hba(20, "host", "192.168.1.0", "scram-sha-256", "255.255.255.0")])
    assert findings == [(WARNING, "pg_hba.conf line 20 accepts connections from 192.168.1.0 without SSL (use hostssl)")]


def test_clear_text_passwords_without_ssl_are_a_warning():
    status, text = security._hba_findings([hba(21, "host", "all", "password")])[0]
    assert status == WARNING and "clear text" in text


def test_an_hba_line_that_does_not_parse_is_a_warning():
    rule = hba(30, None, None, None, error='invalid authentication method "trusted"')
    findings = security._hba_findings([rule])
    assert findings == [(WARNING, 'pg_hba.conf line 30 does not parse: invalid authentication method "trusted"')]


def test_hba_findings_keep_file_order():
    rules = [hba(1, "local", None, "trust"), hba(2, "host", "10.0.0.0", "trust", "255.0.0.0"),
             hba(3, "host", "192.168.0.0", "md5", "255.255.0.0")]
    assert [status for status, text in security._hba_findings(rules)] == [CRITICAL, WARNING]


# --- disk_space ------------------------------------------------------------------------------------------

SYSTEM_ID = 7301234567890123456


def data_directory(tmp_path, identifier=SYSTEM_ID, raw=None):
    path = tmp_path / "data"
    (path / "global").mkdir(parents=True)
    content = raw if raw is not None else struct.pack("<Q", identifier) + b"\0" * 8184
    (path / "global" / "pg_control").write_bytes(content)
    return str(path)


def test_not_the_same_host_when_the_data_directory_does_not_exist_here(context_factory, tmp_path):
    context = context_factory(host="localhost", settings=dict(data_directory=str(tmp_path / "missing")))
    assert disk_space._same_host(context, str(SYSTEM_ID)) is False


def test_same_host_when_pg_control_has_the_servers_identifier(context_factory, tmp_path):
    context = context_factory(host="db.example", settings=dict(data_directory=data_directory(tmp_path)))
    assert disk_space._same_host(context, str(SYSTEM_ID)) is True


def test_not_the_same_host_when_pg_control_belongs_to_another_cluster(context_factory, tmp_path):
    context = context_factory(host="localhost", settings=dict(data_directory=data_directory(tmp_path)))
    assert disk_space._same_host(context, str(SYSTEM_ID + 1)) is False


@pytest.mark.parametrize("host, same", [("localhost", True), ("127.0.0.1", True), ("::1", True),
                                        ("/var/run/postgresql", True), ("db.example", False), ("10.0.0.5", False)])
def test_an_unreadable_pg_control_falls_back_to_host_locality(context_factory, tmp_path, host, same):
    (tmp_path / "data").mkdir()
    context = context_factory(host=host, settings=dict(data_directory=str(tmp_path / "data")))
    assert disk_space._same_host(context, str(SYSTEM_ID)) is same


def test_a_truncated_pg_control_falls_back_to_host_locality(context_factory, tmp_path):
    directory = data_directory(tmp_path, raw=b"\x01\x02")
    assert disk_space._same_host(context_factory(host="localhost", settings=dict(data_directory=directory)), "1")
    assert not disk_space._same_host(context_factory(host="db.example", settings=dict(data_directory=directory)), "1")


def test_free_space_as_df_reports_it(tmp_path):
    pct, free, total = disk_space.free_space(str(tmp_path))
    st = os.statvfs(str(tmp_path))
    assert free == pytest.approx(st.f_bavail * st.f_frsize, rel=0.01)
    assert total == pytest.approx((st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize, rel=0.01)
    assert 0 < free <= total
    assert pct == pytest.approx(100.0 * free / total, abs=0.5)


def test_disk_space_unavailable_without_data_directory(context_factory):
    assert "data_directory" in disk_space.unavailable(context_factory(settings={}))
    assert disk_space.unavailable(context_factory(settings=dict(data_directory="/x"))) is None


def disk_outcome(context_factory, tmp_path, **thresholds):
    directory = data_directory(tmp_path)
    (tmp_path / "ts1").mkdir()
    row = dict(system_identifier=str(SYSTEM_ID), tablespaces=[dict(name="ts1", location=str(tmp_path / "ts1"))])
    context = context_factory(host="db.example", settings=dict(data_directory=directory))
    return disk_space.evaluate([row], defaults(disk_space, **thresholds), context), directory


def test_disk_space_groups_paths_on_one_filesystem(context_factory, tmp_path):
    outcome, directory = disk_outcome(context_factory, tmp_path, warning_free_pct=0, critical_free_pct=0)
    assert outcome.status == OK
    assert len(outcome.details) == 1
    assert outcome.details[0]["path"] == directory
    assert outcome.details[0]["holds"] == ["data_directory", "tablespace ts1"]
    assert outcome.value == outcome.details[0]["free_pct"]


def test_disk_space_grades_free_space(context_factory, tmp_path):
    assert disk_outcome(context_factory, tmp_path, warning_free_pct=101, critical_free_pct=0)[0].status == WARNING


def test_disk_space_critical(context_factory, tmp_path):
    assert disk_outcome(context_factory, tmp_path, warning_free_pct=101, critical_free_pct=101)[0].status == CRITICAL


def test_disk_space_skipped_on_another_host(context_factory, tmp_path):
    row = dict(system_identifier=str(SYSTEM_ID + 1), tablespaces=None)
    context = context_factory(host="db.example", settings=dict(data_directory=data_directory(tmp_path)))
    outcome = disk_space.evaluate([row], defaults(disk_space), context)
    assert outcome.status == SKIPPED
    assert "does not run on the database host" in outcome.message


# --- checks that read only the shared context ----------------------------------------------------------------

def test_connection_latency(context_factory):
    thresholds = defaults(connection)
    assert connection.evaluate([], thresholds, context_factory(connect_seconds=0.0125)).value == 12.5
    assert connection.evaluate([], thresholds, context_factory(connect_seconds=1.0)).status == WARNING
    assert connection.evaluate([], thresholds, context_factory(connect_seconds=5.0)).status == CRITICAL


@pytest.mark.parametrize("num, status", [(170002, OK), (150010, OK), (140015, WARNING), (120022, WARNING),
                                         (110022, CRITICAL)])
def test_server_version_support(context_factory, num, status):
    outcome = server_version.evaluate([], defaults(server_version), context_factory(server_version_num=num))
    assert outcome.status == status
    assert outcome.value == num // 10000


def test_connections_percentage(context_factory):
    row = dict(used=160, active=10, idle=150, idle_in_transaction=0, max_connections=200, reserved=3)
    outcome = connections.evaluate([row], defaults(connections), context_factory())
    assert (outcome.status, outcome.value) == (WARNING, 80.0)


def test_cache_hit_ratio_needs_enough_reads(context_factory):
    few = cache_hit_ratio.evaluate([dict(blks_hit=10, blks_read=500)], defaults(cache_hit_ratio), context_factory())
    assert (few.status, few.value) == (OK, None)
    low = cache_hit_ratio.evaluate([dict(blks_hit=800, blks_read=200)], defaults(cache_hit_ratio), context_factory())
    assert (low.status, low.value) == (WARNING, 80.0)


def test_slow_queries_needs_pg_stat_statements(context_factory):
    assert "pg_stat_statements" in slow_queries.unavailable(context_factory(extensions={}))
    assert slow_queries.unavailable(context_factory(extensions={"pg_stat_statements": "1.10"})) is None


def test_slow_queries_column_names_follow_the_server_version(context_factory):
    old = slow_queries.statement(context_factory(server_version_num=120010), defaults(slow_queries))[0]
    new, params = slow_queries.statement(context_factory(server_version_num=160004, options=dict(query_text_length=0)),
                                         defaults(slow_queries))
    assert "mean_time" in old and "mean_exec_time" not in old
    assert "mean_exec_time" in new
    assert params["text"] == 0 and params["top"] == 10


# --- a value just short of a threshold has not reached it ----------------------------------------------------
# Every check grades the unrounded figure: rounding first would grade a value a hair
# below a threshold as having reached it (or one a hair below a grade_below threshold
# as not below it).


def test_a_sequence_just_below_warning_pct_is_ok(context_factory):
    row = sequence(1 + 74996, maximum=100001)  # 74.996 % used
    assert sequence_exhaustion.evaluate([row], defaults(sequence_exhaustion), context_factory()).status == OK


def test_a_hit_ratio_just_below_warning_below_pct_warns(context_factory):
    row = dict(blks_hit=899996, blks_read=100004)  # 89.9996 %
    assert cache_hit_ratio.evaluate([row], defaults(cache_hit_ratio), context_factory()).status == WARNING


def test_a_deadlock_rate_just_below_critical_is_a_warning(context_factory):
    outcome = deadlocks_outcome(context_factory, 99996, 10000 * 3600)  # 9.9996 per hour
    assert outcome.status == WARNING
