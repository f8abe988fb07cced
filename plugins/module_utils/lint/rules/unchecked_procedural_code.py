# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unchecked-procedural-code: the bodies of DO blocks and of functions and procedures in a
language other than SQL are strings to the parser; the linter cannot see what they do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import INFO, Hit, Rule


def _language(options, default):
    for option in options or ():
        if option.defname == "language" and isinstance(option.arg, ast.String):
            return option.arg.sval.lower()
    return default


def check(statement, state):
    node = statement.node
    if isinstance(node, ast.DoStmt):
        yield Hit(detail="This DO block (%s) runs now, and none of its statements were linted." % _language(node.args, "plpgsql"))
    elif isinstance(node, ast.CreateFunctionStmt):
        # Without LANGUAGE, a BEGIN ATOMIC body is SQL (parsed, nothing hidden); an AS string is refused by the server.
        language = _language(node.options, "sql" if node.sql_body is not None else None)
        if language in (None, "sql", "internal"):
            return
        kind = "procedure" if node.is_procedure else "function"
        name = ".".join(part.sval for part in node.funcname)
        yield Hit(detail="The body of %s %s (%s) was not linted: what it does when called, in this migration or later, is "
                         "unchecked." % (kind, name, language))


RULE = Rule(
    name="unchecked-procedural-code",
    severity=INFO,
    why="Procedural code (a DO block, a function or procedure not written in SQL) is a string to the linter: the locks, "
        "rewrites and data changes of the statements inside it are not checked.",
    fix="Review the body by hand, or write its statements as plain SQL in the migration so they are linted.",
    check=check,
    size_sensitive=False,
)
