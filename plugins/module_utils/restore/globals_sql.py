# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles of a pg_dumpall --globals-only script, minus every statement that would
touch a role the server already has: restoring globals creates missing roles and
leaves existing ones (their passwords, attributes, memberships) alone. Tablespaces
are not restored (their directories belong to the server host): their statements
are left out and reported."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.pgops.runbook.plugins.module_utils.sql_script import split_statements as split_script

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_ROLE_STATEMENTS = (
    ("create", re.compile(r"^CREATE ROLE (%s)" % _IDENT)),
    ("alter", re.compile(r"^ALTER ROLE (%s) IN DATABASE (%s) " % (_IDENT, _IDENT))),
    ("alter", re.compile(r"^ALTER ROLE (%s)" % _IDENT)),
    ("comment", re.compile(r"^COMMENT ON ROLE (%s)" % _IDENT)),
    ("label", re.compile(r"^SECURITY LABEL (?:FOR \S+ )?ON ROLE (%s)" % _IDENT)),
    ("grant", re.compile(r"^GRANT %s(?:, *%s)* TO (%s)" % (_IDENT, _IDENT, _IDENT))),
)
_DUMP_META_COMMANDS = ("restrict", "unrestrict")
_TABLESPACE = re.compile(r"^(?:CREATE|ALTER|DROP|COMMENT ON|SECURITY LABEL .*ON) TABLESPACE |^(?:GRANT|REVOKE) .* ON TABLESPACE ")


def unquote(identifier):
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()


def split_statements(script):
    """The statements of a pg_dumpall script, as text (comments between them dropped):
    sql_script's splitting, where the \\restrict and \\unrestrict lines that pg_dumpall
    writes since 17.6/16.10/15.14 are dropped and any other psql meta-command is refused."""
    return [statement.text for statement in split_script(script, ignore_meta_commands=_DUMP_META_COMMANDS)]


def roles_script(script, existing_roles, existing_databases=()):
    """(SQL to run, report) for the globals `script`: statements about roles that do not
    exist yet; SET statements; nothing else. report: created, left_alone (existing roles
    the script describes), skipped (statements left out, by reason)."""
    existing = set(existing_roles)
    kept, created, left_alone = [], [], []
    skipped = {"tablespace": 0, "existing role": 0, "database missing": 0, "other": 0}
    for statement in split_statements(script):
        if statement.upper().startswith("SET "):
            kept.append(statement)
            continue
        if _TABLESPACE.match(statement):
            skipped["tablespace"] += 1
            continue
        for kind, pattern in _ROLE_STATEMENTS:
            match = pattern.match(statement)
            if match:
                break
        else:
            skipped["other"] += 1
            continue
        role = unquote(match.group(1))
        if role in existing:
            skipped["existing role"] += 1
            if kind == "create" and role not in left_alone:
                left_alone.append(role)
            continue
        if kind == "alter" and match.lastindex == 2 and unquote(match.group(2)) not in existing_databases:
            skipped["database missing"] += 1
            continue
        if kind == "create":
            created.append(role)
        kept.append(statement)
    sql = "".join(statement + ";\n" for statement in kept)
    return sql, dict(created=created, left_alone=left_alone, skipped=dict((k, v) for k, v in skipped.items() if v))
