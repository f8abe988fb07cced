# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: maintenance_window
short_description: Whether now (or a given time) is inside a maintenance window
version_added: 0.1.0
description:
  - "Reads a maintenance window as the runbooks write it and says whether the current time is inside it:
    C(Sun 02:00-04:00 UTC), C(Mon-Fri 22:00-02:00 Europe/Berlin), C(Sat,Sun 00:00-24:00 UTC),
    C(02:00-04:00 UTC) (every day) or C(always)."
  - Days are C(Mon) to C(Sun) (or full names), as ranges (C(Mon-Fri), C(Fri-Mon)) and lists (C(Mon,Wed-Fri)).
    A window whose end is not after its start spans midnight and belongs to the day it opens on, so
    C(Fri 22:00-02:00 UTC) includes Saturday 01:30.
  - The time zone is required (C(UTC) or an IANA name); the window follows that zone's wall clock,
    daylight saving time included.
  - A string that is not a window fails the task with one sentence saying what is wrong.
  - Runs on the controller.
positional: _input
options:
  _input:
    description: The maintenance window.
    type: str
    required: true
  now:
    description:
      - The moment to judge, as an ISO 8601 date and time with a UTC offset (for example C(2026-05-03T02:30:00+00:00)).
        Defaults to the current time.
    type: str
  strict:
    description:
      - When false, a string that is not a window is not an error - the result then says C(inside=false),
        C(valid=false) and why in C(message), for a checklist that reports every problem at once.
    type: bool
    default: true
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Refuse to migrate outside the window
  ansible.builtin.assert:
    that: window.inside
    fail_msg: "{{ window.message }}"
  vars:
    window: "{{ 'Mon-Fri 22:00-02:00 Europe/Berlin' | pgops.runbook.maintenance_window }}"

- name: Would a run at this time be allowed?
  ansible.builtin.debug:
    msg: "{{ ('Sun 02:00-04:00 UTC' | pgops.runbook.maintenance_window(now='2026-05-03T02:30:00+00:00')).inside }}"
'''

RETURN = r'''
_value:
  description: The judgement.
  type: dict
  contains:
    inside:
      description: Whether the moment is inside the window (always true for C(always)).
      type: bool
    valid:
      description: Whether the string is a window (false only with O(strict=false)).
      type: bool
    always:
      description: Whether the window is C(always).
      type: bool
    window:
      description: The window written canonically (day ranges listed out).
      type: str
    now:
      description: The moment judged (ISO 8601).
      type: str
    next_start:
      description: When the window next opens (ISO 8601, in its zone), when the moment is outside it.
      type: str
    message:
      description: One sentence saying where the moment is, in the window's zone, and when it next opens.
      type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.maintenance_window import window_status


def maintenance_window(window, now=None, strict=True):
    """The window's status at `now` (default: the current time)."""
    try:
        status = window_status(window, now)
    except PgopsError as exc:
        if strict:
            raise AnsibleFilterError(exc.message)
        return dict(inside=False, valid=False, always=False, window=window, now=now, next_start=None, message=exc.message)
    status["valid"] = True
    return status


class FilterModule(object):
    """The maintenance_window filter."""

    def filters(self):
        return {"maintenance_window": maintenance_window}
