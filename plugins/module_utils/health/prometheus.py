# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health results in the Prometheus text exposition format, for node_exporter's
textfile collector."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

STATUS_CODES = dict(ok=0, warning=1, critical=2, skipped=-1)


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(result, timestamp):
    """The text of the metrics file for one health_check result."""
    db = _label(result["database"])
    lines = [
        "# HELP pgops_health_check_status Status of a pgops health check: 0 ok, 1 warning, 2 critical, -1 skipped.",
        "# TYPE pgops_health_check_status gauge",
    ]
    for check in result["checks"]:
        lines.append('pgops_health_check_status{database="%s",check="%s"} %d'
                     % (db, _label(check["name"]), STATUS_CODES[check["status"]]))
    lines += ["# HELP pgops_health_check_value The value a pgops health check measured (see its message for the unit).",
              "# TYPE pgops_health_check_value gauge"]
    for check in result["checks"]:
        value = check["value"]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append('pgops_health_check_value{database="%s",check="%s"} %s' % (db, _label(check["name"]), repr(float(value))))
    lines += ["# HELP pgops_health_checks Number of pgops health checks per status in the last run.",
              "# TYPE pgops_health_checks gauge"]
    for status in ("ok", "warning", "critical", "skipped"):
        lines.append('pgops_health_checks{database="%s",status="%s"} %d' % (db, status, result["summary"][status]))
    lines += ["# HELP pgops_health_last_run_timestamp_seconds When the last pgops health check run finished.",
              "# TYPE pgops_health_last_run_timestamp_seconds gauge",
              'pgops_health_last_run_timestamp_seconds{database="%s"} %.3f' % (db, timestamp),
              "# HELP pgops_health_statements SQL statements the last run sent.",
              "# TYPE pgops_health_statements gauge",
              'pgops_health_statements{database="%s"} %d' % (db, result["statements"])]
    return "\n".join(lines) + "\n"
