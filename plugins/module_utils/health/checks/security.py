# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""security: SSL on, SCRAM password hashing, connection logging, and no pg_hba rule
letting remote clients in without a password (or without SSL)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import psycopg2
except ImportError:  # pragma: no cover
    psycopg2 = None

from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, OK, WARNING, HealthCheck, Outcome, worst

HBA_SQL = """
SELECT line_number, type, database, user_name, address, netmask, auth_method, error
FROM pg_hba_file_rules ORDER BY line_number
"""

_LOCAL_ADDRESSES = ("127.0.0.1", "::1", "localhost", "samehost", None)


def _hba_findings(rules):
    findings = []
    for rule in rules:
        where = "pg_hba.conf line %s" % rule["line_number"]
        if rule["error"]:
            findings.append((WARNING, "%s does not parse: %s" % (where, rule["error"])))
            continue
        if rule["type"] == "local" or rule["address"] in _LOCAL_ADDRESSES:
            continue
        if rule["auth_method"] == "trust":
            findings.append((CRITICAL, "%s lets %s connect from %s without a password (trust)" % (
                where, ",".join(rule["user_name"] or []), rule["address"])))
        elif rule["auth_method"] == "password" and rule["type"] != "hostssl":
            findings.append((WARNING, "%s sends passwords in clear text without SSL (method password)" % where))
        elif rule["type"] in ("host", "hostnossl") and rule["auth_method"] != "reject":
            findings.append((WARNING, "%s accepts connections from %s without SSL (use hostssl)" % (where, rule["address"])))
    return findings


def run(context, thresholds):
    findings = []
    if context.setting("ssl") != "on":
        findings.append((WARNING, "ssl is off: connections travel unencrypted"))
    if context.setting("password_encryption") != "scram-sha-256":
        findings.append((WARNING, "password_encryption is %s, not scram-sha-256" % context.setting("password_encryption")))
    if context.setting("log_connections") != "on" and thresholds["require_connection_logging"]:
        findings.append((WARNING, "log_connections is off: there is no audit trail of who connected"))
    notes = []
    try:
        findings.extend(_hba_findings(context.query(HBA_SQL)))
    except psycopg2.Error as exc:
        if getattr(exc, "pgcode", None) != "42501":
            raise
        notes.append("pg_hba.conf rules not inspected: the login role may not read pg_hba_file_rules")
    details = [dict(status=s, finding=f) for s, f in findings]
    text = "; ".join(finding for dummy, finding in findings) or "SSL on, SCRAM passwords, connection logging on, no risky pg_hba rule"
    if notes:
        text += " (%s)" % "; ".join(notes)
    return Outcome(worst(status for status, dummy in findings) if findings else OK, text + ".", len(findings), details)


CHECK = HealthCheck(
    name="security",
    description=("ssl on, password_encryption scram-sha-256, log_connections on (require_connection_logging), and "
                 "pg_hba.conf (when readable): no trust, clear-text or non-SSL rule for non-local clients."),
    run=run,
    thresholds=dict(require_connection_logging=True),
)
