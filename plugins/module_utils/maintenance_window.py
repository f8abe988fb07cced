# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows as the runbooks write them: "Sun 02:00-04:00 UTC",
"Mon-Fri 22:00-02:00 Europe/Berlin" (a window may span midnight: it belongs to the
day it opens), "Sat,Sun 00:00-24:00 UTC", "02:00-04:00 UTC" (every day) and "always".

Pure Python; the time zone is an IANA name read with zoneinfo, so daylight saving
time is that of the zone's wall clock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

try:
    import zoneinfo
    HAS_ZONEINFO = True
except ImportError:  # Python < 3.9: every window but "always" is refused with a sentence
    zoneinfo = None
    HAS_ZONEINFO = False

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FORM = '"always" or "[days] HH:MM-HH:MM <time zone>", for example "Sun 02:00-04:00 UTC"'
_WINDOW = re.compile(r"^(?:(?P<days>[A-Za-z][A-Za-z,\-\s]*?)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
                     r"\s+(?P<zone>\S+)$")


class MaintenanceWindowError(PgopsError):
    """A window string that cannot be read; the message is one sentence."""


def _bad(text, why):
    return MaintenanceWindowError("Maintenance window %r is not understood: %s; write %s." % (text, why, _FORM))


def _day(word, text):
    lowered = word.strip().lower()
    for index, full in enumerate(_FULL_DAYS):
        if lowered in (full, full[:3]):
            return index
    raise _bad(text, "%r is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)" % word.strip())


def _days(spec, text):
    """The weekdays (0 = Monday) named by "Mon-Fri", "Sat,Sun", "Fri-Mon", "Mon,Wed-Fri"."""
    days = set()
    for part in spec.split(","):
        if not part.strip():
            raise _bad(text, "an empty day in %r" % spec)
        if "-" in part:
            first, dummy, last = part.partition("-")
            start, end = _day(first, text), _day(last, text)
            days.add(start)
            while start != end:  # a range may wrap over the week's end (Fri-Mon)
                start = (start + 1) % 7
                days.add(start)
        else:
            days.add(_day(part, text))
    return frozenset(days)


def _minutes(clock, text, allow_24=False):
    hours, minutes = (int(x) for x in clock.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise _bad(text, "%s is not a time of day (00:00 to 23:59%s)" % (clock, ", or 24:00 as an end" if allow_24 else ""))
    return hours * 60 + minutes


def _zone(name, text):
    if name.upper() == "UTC":
        return datetime.timezone.utc, "UTC"
    if not HAS_ZONEINFO:
        raise _bad(text, "time zone %s needs Python 3.9 or later (zoneinfo); use UTC" % name)
    try:
        return zoneinfo.ZoneInfo(name), name
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _bad(text, "%r is not a known time zone (use an IANA name such as UTC or Europe/Berlin)" % name)


def _clock(minutes):
    return "%02d:%02d" % divmod(minutes, 60)


class MaintenanceWindow:
    """A weekly window: the weekdays it opens on, its start and end (minutes of the day, in `zone`)."""

    def __init__(self, text, days=None, start=None, end=None, zone=None, zone_name=None, unset=False):
        self.text = text
        self.unset = unset  # no window given (""): never inside, so only an override lets a run through
        self.always = days is None and not unset
        self.days = days
        self.start = start
        self.end = end
        self.zone = zone
        self.zone_name = zone_name

    @property
    def spans_midnight(self):
        return not self.always and self.end <= self.start

    def normalised(self):
        """The window written the canonical way ("Mon-Fri" becomes "Mon,Tue,Wed,Thu,Fri")."""
        if self.always:
            return "always"
        if self.unset:
            return ""
        days = "" if len(self.days) == 7 else ",".join(DAYS[d] for d in sorted(self.days)) + " "
        return "%s%s-%s %s" % (days, _clock(self.start), _clock(self.end), self.zone_name)

    def contains(self, moment):
        """Whether the aware datetime `moment` falls inside the window."""
        if self.always:
            return True
        if self.unset:
            return False
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        weekday = local.weekday()
        if not self.spans_midnight:
            return weekday in self.days and self.start <= minute < self.end
        yesterday = (weekday - 1) % 7
        return (weekday in self.days and minute >= self.start) or (yesterday in self.days and minute < self.end)

    def next_start(self, moment):
        """When the window next opens after `moment` (aware, in the window's zone); None for "always"."""
        if self.always:
            return None
        local = moment.astimezone(self.zone)
        for offset in range(8):
            date = local.date() + datetime.timedelta(days=offset)
            if date.weekday() not in self.days:
                continue
            opens = datetime.datetime.combine(date, datetime.time(*divmod(self.start, 60)), tzinfo=self.zone)
            if opens > local:
                return opens
        return None  # pragma: no cover - a non-empty week always has a next opening

    def status(self, moment=None):
        """A dict saying whether `moment` (default: now) is inside, with one sentence for people."""
        moment = moment or datetime.datetime.now(datetime.timezone.utc)
        inside = self.contains(moment)
        result = dict(inside=inside, always=self.always, window=self.normalised(), now=moment.isoformat(),
                      next_start=None)
        if self.always:
            result["message"] = "No maintenance window restricts the time (always)."
            return result
        if self.unset:
            result["message"] = "No maintenance window is set: set pgops_maintenance_window to %s, or override the window " \
                                "for this run." % _FORM
            return result
        local = moment.astimezone(self.zone)
        stamp = "%s %s %s" % (DAYS[local.weekday()], local.strftime("%H:%M"), self.zone_name)
        if inside:
            result["message"] = "It is %s, inside the maintenance window %s." % (stamp, self.text)
            return result
        opens = self.next_start(moment)
        result["next_start"] = opens.isoformat()
        wait = int((opens - local).total_seconds() // 60)
        result["message"] = "It is %s, outside the maintenance window %s; it next opens %s %s (in %d h %02d min)." % (
            stamp, self.text, DAYS[opens.weekday()], opens.strftime("%H:%M"), wait // 60, wait % 60)
        return result


def parse_window(text):
    """A MaintenanceWindow from its string; MaintenanceWindowError (one sentence) when it is not one."""
    if not isinstance(text, str):
        raise MaintenanceWindowError("Maintenance window must be a string such as %s, got %r." % (_FORM, text))
    cleaned = " ".join(text.split())
    if not cleaned:
        return MaintenanceWindow("", unset=True)
    if cleaned.lower() == "always":
        return MaintenanceWindow(cleaned)
    match = _WINDOW.match(cleaned)
    if not match:
        raise _bad(text, "it does not have the form of a window")
    spec = (match.group("days") or "").strip()
    days = frozenset(range(7)) if spec.lower() in ("", "daily") else _days(spec, text)
    start = _minutes(match.group("start"), text)
    end = _minutes(match.group("end"), text, allow_24=True)
    if start == end:
        raise _bad(text, "it starts and ends at %s, so it is empty (00:00-24:00 is a whole day)" % match.group("start"))
    zone, zone_name = _zone(match.group("zone"), text)
    return MaintenanceWindow(cleaned, days, start, end, zone, zone_name)


def window_status(text, now=None):
    """`parse_window(text).status(now)`; `now` may be an aware datetime or an ISO 8601 string with an offset."""
    moment = None
    if isinstance(now, str) and now:
        try:
            moment = datetime.datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise MaintenanceWindowError("The time %r is not an ISO 8601 date and time." % now)
    elif isinstance(now, datetime.datetime):
        moment = now
    if moment is not None and moment.tzinfo is None:
        raise MaintenanceWindowError("The time %r has no UTC offset, so it is ambiguous." % (now if isinstance(now, str) else now.isoformat()))
    return parse_window(text).status(moment)
