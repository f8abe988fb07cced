"""Maintenance windows: day ranges, windows spanning midnight, time zones (zoneinfo, with
daylight saving time) and bad strings refused with one sentence."""

import datetime

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.maintenance_window import (
    MaintenanceWindowError, parse_window, window_status,
)

UTC = datetime.timezone.utc


def at(text):
    """An aware datetime from 'YYYY-MM-DD HH:MM' in UTC."""
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


# 2026-05-03 is a Sunday.
@pytest.mark.parametrize("moment, inside", [
    ("2026-05-03 01:59", False),
    ("2026-05-03 02:00", True),
    ("2026-05-03 03:59", True),
    ("2026-05-03 04:00", False),
    ("2026-05-10 02:30", True),   # the next Sunday
    ("2026-05-04 02:30", False),  # Monday
])
def test_a_sunday_window_in_utc(moment, inside):
    assert parse_window("Sun 02:00-04:00 UTC").contains(at(moment)) is inside


@pytest.mark.parametrize("moment, inside", [
    # Europe/Berlin is UTC+2 in May: 22:00 there is 20:00 UTC.
    ("2026-05-04 19:59", False),  # Mon 21:59 Berlin
    ("2026-05-04 20:00", True),   # Mon 22:00 Berlin
    ("2026-05-04 23:30", True),   # Tue 01:30 Berlin, Monday's window
    ("2026-05-05 00:00", False),  # Tue 02:00 Berlin
    ("2026-05-08 23:30", True),   # Sat 01:30 Berlin, Friday's window
    ("2026-05-09 20:30", False),  # Sat 22:30 Berlin: no window opens on Saturday
    ("2026-05-03 23:30", False),  # Mon 01:30 Berlin: Sunday opened no window
])
def test_a_weekday_window_spanning_midnight_in_berlin(moment, inside):
    assert parse_window("Mon-Fri 22:00-02:00 Europe/Berlin").contains(at(moment)) is inside


def test_daylight_saving_time_follows_the_zone_wall_clock():
    window = parse_window("Sun 02:00-04:00 Europe/Berlin")
    # The same UTC time of day: 00:30 UTC is 01:30 in winter (UTC+1), 02:30 in summer (UTC+2).
    assert not window.contains(at("2026-01-04 00:30"))
    assert window.contains(at("2026-07-05 00:30"))
    assert window.contains(at("2026-01-04 02:30")) and not window.contains(at("2026-07-05 02:30"))


def test_wrapping_day_ranges_lists_daily_and_whole_days():
    assert parse_window("Fri-Mon 10:00-11:00 UTC").days == frozenset([4, 5, 6, 0])
    assert parse_window("Mon,Wed-Fri 10:00-11:00 UTC").days == frozenset([0, 2, 3, 4])
    assert parse_window("Saturday,sunday 10:00-11:00 UTC").days == frozenset([5, 6])
    every_day = parse_window("02:00-04:00 UTC")
    assert every_day.days == frozenset(range(7)) and every_day.normalised() == "02:00-04:00 UTC"
    assert parse_window("daily 02:00-04:00 UTC").days == frozenset(range(7))
    whole = parse_window("Sat 00:00-24:00 UTC")
    assert whole.contains(at("2026-05-02 00:00")) and whole.contains(at("2026-05-02 23:59"))
    assert not whole.contains(at("2026-05-03 00:00"))
    assert parse_window("  always ").contains(at("2026-05-06 12:00"))


def test_status_says_when_the_window_next_opens():
    outside = window_status("Sun 02:00-04:00 UTC", "2026-05-02T23:00:00Z")
    assert outside["inside"] is False and outside["always"] is False
    assert outside["next_start"] == "2026-05-03T02:00:00+00:00"
    assert outside["message"] == ("It is Sat 23:00 UTC, outside the maintenance window Sun 02:00-04:00 UTC; "
                                  "it next opens Sun 02:00 (in 3 h 00 min).")
    inside = window_status("Mon-Fri 22:00-02:00 Europe/Berlin", "2026-05-08T23:30:00+00:00")
    assert inside["inside"] is True and inside["next_start"] is None
    assert inside["message"] == "It is Sat 01:30 Europe/Berlin, inside the maintenance window Mon-Fri 22:00-02:00 Europe/Berlin."
    assert window_status("always")["inside"] is True


def test_status_defaults_to_now():
    now = datetime.datetime.now(UTC)
    tomorrow = now + datetime.timedelta(days=2)
    excluding_now = "%s 00:00-24:00 UTC" % tomorrow.strftime("%a")
    assert window_status(excluding_now)["inside"] is False
    assert window_status("%s 00:00-24:00 UTC" % now.strftime("%a"))["inside"] is True


@pytest.mark.parametrize("text, says", [
    ("Sun 02:00-04:00", "does not have the form of a window"),
    ("Sun 2am-4am UTC", "does not have the form of a window"),
    ("Sum 02:00-04:00 UTC", "'Sum' is not a day"),
    ("Mon-Fry 02:00-04:00 UTC", "'Fry' is not a day"),
    ("Sun 25:00-04:00 UTC", "25:00 is not a time of day"),
    ("Sun 02:61-04:00 UTC", "02:61 is not a time of day"),
    ("Sun 24:00-04:00 UTC", "24:00 is not a time of day"),
    ("Sun 02:00-02:00 UTC", "it starts and ends at 02:00, so it is empty"),
    ("Sun 02:00-04:00 Mars/Olympus", "'Mars/Olympus' is not a known time zone"),
    ("Sun 02:00-04:00 ../../etc/passwd", "is not a known time zone"),
])
def test_bad_windows_are_refused_with_one_sentence(text, says):
    with pytest.raises(MaintenanceWindowError) as caught:
        parse_window(text)
    message = caught.value.message
    assert says in message, message
    assert message.startswith("Maintenance window %r is not understood: " % text)
    assert message.endswith('for example "Sun 02:00-04:00 UTC".') and message.count(". ") == 0


def test_bad_values_and_times_are_refused():
    with pytest.raises(MaintenanceWindowError, match="must be a string"):
        parse_window(None)
    with pytest.raises(MaintenanceWindowError, match="not an ISO 8601 date"):
        window_status("always", "yesterday")
    with pytest.raises(MaintenanceWindowError, match="no UTC offset"):
        window_status("always", "2026-05-03T02:00:00")


def test_an_unset_window_is_never_open_and_says_how_to_set_it():
    window = parse_window("  ")
    status = window.status()
    assert window.unset and not window.always and status["inside"] is False
    assert status["message"].startswith("No maintenance window is set: set pgops_maintenance_window to")
