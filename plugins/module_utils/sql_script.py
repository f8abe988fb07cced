# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one SQL splitter of the collection: a script cut into its statements the way
psql cuts it, and what a statement needs before it can be run.

The lexing follows PostgreSQL's (and psql's) with standard_conforming_strings on:
'...' strings ('' escapes a quote, a backslash is literal), E'...' strings (a
backslash escapes the next character), "..." identifiers ("" escapes a quote),
$$...$$ and $tag$...$tag$ dollar quotes ($1 is a parameter, not a tag), -- line
comments and /* */ block comments, which nest. Like psql, a semicolon inside
parentheses or inside the BEGIN ATOMIC ... END body of CREATE FUNCTION/PROCEDURE
does not end the statement. A backslash outside all of these is a psql
meta-command (\\connect, \\set, \\i, \\gset ...), which is not SQL: it is refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import collections
import re

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError


class SqlScriptError(PgopsError):
    """A script that cannot be split into SQL statements; the message names the line."""


Statement = collections.namedtuple("Statement", "text line index")
Statement.__doc__ = """One statement of a script.

text   the statement without its semicolon, stripped; comments inside it are kept as
       written, the comments before and after it are not.
line   the 1-based line of the script where the statement starts.
index  the 0-based position of the statement among the script's statements."""

_NAME_START = r"A-Za-z_\x80-\U0010ffff"
_NAME_CONT = r"A-Za-z0-9_\x80-\U0010ffff"
_TOKEN = re.compile(r"""
    (?P<space>[ \t\n\r\f\v]+)
  | (?P<line_comment>--[^\n\r]*)
  | (?P<block_comment>/\*)
  | (?P<estring>[eE]')
  | (?P<string>')
  | (?P<ident>")
  | (?P<dollar>\$(?:[%s][%s]*)?\$)
  | (?P<param>\$[0-9]+)
  | (?P<word>[%s][%s$]*)
  | (?P<number>[0-9]+)
  | (?P<meta>\\(?:\\|[^ \t\n\r\f\v\\]*))
  | (?P<punct>.)
""" % (_NAME_START, _NAME_CONT, _NAME_START, _NAME_CONT), re.X | re.S)
# The rest of a literal after its opening quote, closing quote included.
_STRING_REST = re.compile(r"[^']*(?:''[^']*)*'")
_ESTRING_REST = re.compile(r"[^'\\]*(?:(?:''|\\.)[^'\\]*)*'", re.S)
_IDENT_REST = re.compile(r'[^"]*(?:""[^"]*)*"')
_COMMENT_MARK = re.compile(r"/\*|\*/")
_UNCLOSED = {
    "string": "the string literal that starts here is never closed",
    "estring": "the E'...' string literal that starts here is never closed",
    "ident": "the quoted identifier that starts here is never closed",
}
_ROUTINE_WORDS = ("create", "or", "replace", "function", "procedure")
_DIRECTIVE = re.compile(r"--[ \t]*pgops[ \t]*:(.*)$", re.I)
_DIRECTIVE_BODY = re.compile(r"^[ \t]*([A-Za-z][A-Za-z0-9_.-]*)[ \t]*(?:=[ \t]*(.*?))?[ \t]*$")


class _Lines:
    """Line numbers of character offsets."""

    def __init__(self, script):
        self.newlines = [match.start() for match in re.finditer("\n", script)]

    def __call__(self, offset):
        return bisect.bisect_left(self.newlines, offset) + 1


def _lex(script, lines, ignored_meta=()):
    """(kind, start, end) for every token of `script`. Kinds: space, comment, string
    (dollar quotes included), ident, param, word, number, meta, ignored_meta (a
    meta-command named in `ignored_meta`, with the rest of its line), punct. Raises
    SqlScriptError for a literal, quote or comment that is never closed."""
    position = 1 if script.startswith("\ufeff") else 0  # a byte order mark is no SQL
    length = len(script)
    while position < length:
        match = _TOKEN.match(script, position)
        kind, end = match.lastgroup, match.end()
        if kind in _UNCLOSED:
            rest = {"string": _STRING_REST, "estring": _ESTRING_REST, "ident": _IDENT_REST}[kind].match(script, end)
            if rest is None:
                raise SqlScriptError("Line %d: %s." % (lines(position), _UNCLOSED[kind]))
            kind, end = ("ident" if kind == "ident" else "string"), rest.end()
        elif kind == "dollar":
            tag = match.group()
            close = script.find(tag, end)
            if close < 0:
                raise SqlScriptError("Line %d: the dollar-quoted string that starts here with %s is never closed by another %s."
                                     % (lines(position), tag, tag))
            kind, end = "string", close + len(tag)
        elif kind == "meta" and script[position + 1:end] in ignored_meta:
            newline = script.find("\n", end)
            kind, end = "ignored_meta", length if newline < 0 else newline
        elif kind == "block_comment":
            depth = 1
            for mark in _COMMENT_MARK.finditer(script, end):
                depth += 1 if mark.group() == "/*" else -1
                if not depth:
                    end = mark.end()
                    break
            else:
                raise SqlScriptError("Line %d: the /* comment that starts here is never closed (comments nest: each /* needs its own */)."
                                     % lines(position))
            kind = "comment"
        elif kind == "line_comment":
            kind = "comment"
        yield kind, position, end
        position = end


def _meta_error(script, lines, start):
    name = _TOKEN.match(script, start).group()
    return SqlScriptError("Line %d: psql meta-command %s is not SQL; the script must hold SQL statements only, as it is sent "
                          "to the server without psql." % (lines(start), name))


def split_statements(script, ignore_meta_commands=()):
    """The Statement objects of `script`, split at the semicolons psql splits at; empty
    statements are dropped and a last statement needs no semicolon.

    Raises SqlScriptError (naming the line) for a psql meta-command and for a string,
    identifier, dollar quote, comment, parenthesis or BEGIN ATOMIC body that is never
    closed. `ignore_meta_commands` names meta-commands (without their backslash) that
    are dropped, with the rest of their line, when they stand between statements: the
    \\restrict and \\unrestrict lines pg_dump and pg_dumpall write since 17.6/16.10/15.14."""
    lines = _Lines(script)
    statements = []
    state = _SplitState()
    for kind, start, end in _lex(script, lines, frozenset(ignore_meta_commands)):
        if kind in ("space", "comment") or (kind == "ignored_meta" and state.start is None):
            continue
        if kind in ("meta", "ignored_meta"):
            raise _meta_error(script, lines, start)
        if kind == "punct" and script[start] == ";" and not state.parens and not state.begin_depth:
            if state.start is not None:
                statements.append(Statement(script[state.start:state.end], lines(state.start), len(statements)))
            state = _SplitState()
            continue
        state.add(kind, script, start, end)
    if state.parens:
        raise SqlScriptError("Line %d: the parenthesis opened here is never closed, so its statement never ends."
                             % lines(state.parens[0]))
    if state.begin_depth:
        raise SqlScriptError("Line %d: the BEGIN that starts here (a BEGIN ATOMIC function body) never reaches its END."
                             % lines(state.begin_start))
    if state.start is not None:
        statements.append(Statement(script[state.start:state.end], lines(state.start), len(statements)))
    return statements


class _SplitState:
    """The statement being read: where it starts and ends, its open parentheses and,
    as psql tracks it, the depth of BEGIN ... END in CREATE FUNCTION/PROCEDURE."""

    def __init__(self):
        self.start = self.end = None
        self.parens = []
        self.words = []  # the first four words, those of CREATE [OR REPLACE] FUNCTION/PROCEDURE only
        self.begin_depth = 0
        self.begin_start = None

    def add(self, kind, script, start, end):
        if self.start is None:
            self.start = start
        self.end = end
        if kind == "punct":
            if script[start] == "(":
                self.parens.append(start)
            elif script[start] == ")" and self.parens:
                self.parens.pop()
        elif kind == "word":
            word = script[start:end].lower()
            if len(self.words) < 4:
                self.words.append(word if word in _ROUTINE_WORDS else "")
            if self.parens or not self._in_routine():
                return
            if word == "begin":
                if not self.begin_depth:
                    self.begin_start = start
                self.begin_depth += 1
            elif word == "case" and self.begin_depth:
                self.begin_depth += 1
            elif word == "end" and self.begin_depth:
                self.begin_depth -= 1

    def _in_routine(self):
        words = self.words + [""] * (4 - len(self.words))
        return words[0] == "create" and (words[1] in ("function", "procedure")
                                         or (words[1:3] == ["or", "replace"] and words[3] in ("function", "procedure")))


def _tokens(statement_text):
    """The significant tokens of the first statement of `statement_text`, as
    (kind, value): words lowercased, quoted identifiers unquoted, punctuation as the
    character, literals as written."""
    tokens = []
    lines = _Lines(statement_text)
    depth = 0
    for kind, start, end in _lex(statement_text, lines):
        text = statement_text[start:end]
        if kind in ("space", "comment"):
            continue
        if kind == "meta":
            raise _meta_error(statement_text, lines, start)
        if kind == "word":
            text = text.lower()
        elif kind == "ident":
            text = text[1:-1].replace('""', '"')
        elif kind == "punct":
            if text == ";" and not depth:
                break
            depth += {"(": 1, ")": -1}.get(text, 0)
        tokens.append((kind, text))
    return tokens


def _words(tokens):
    """The tokens' values with everything but words and punctuation masked, so that a
    quoted identifier or a string never equals a keyword."""
    return [value if kind in ("word", "punct") else "<%s>" % kind for kind, value in tokens]


def _after_name(tokens, position):
    """The position after the (possibly schema-qualified) name at `position`."""
    if position < len(tokens) and tokens[position][0] in ("word", "ident"):
        position += 1
        while position + 1 < len(tokens) and tokens[position] == ("punct", ".") and tokens[position + 1][0] in ("word", "ident"):
            position += 2
    return position


def _options(tokens, position):
    """(options, position after them) of the parenthesized `name [= value], ...` list
    at `position`: {lowercased name: value (unquoted, lowercased) or None}."""
    options = {}
    words = _words(tokens)
    if position >= len(tokens) or words[position] != "(":
        return options, position
    position += 1
    while position < len(tokens) and words[position] != ")":
        name = tokens[position][1].lower()
        position += 1
        if position < len(tokens) and words[position] == "=":
            position += 1
        value = None
        while position < len(tokens) and words[position] not in (",", ")"):
            kind, text = tokens[position]
            value = (text[1:-1] if kind == "string" and text.startswith("'") else text).lower()
            position += 1
        options[name] = value
        if position < len(tokens) and words[position] == ",":
            position += 1
    return options, position + 1


def _with_options(tokens):
    """The options of the statement's WITH ( ... ) clause at parenthesis depth 0."""
    words = _words(tokens)
    depth = 0
    for position, word in enumerate(words):
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif word == "with" and not depth and position + 1 < len(words) and words[position + 1] == "(":
            return _options(tokens, position + 1)[0]
    return {}


def _is_false(value):
    """Whether an option value is a false boolean to PostgreSQL (its parse_bool: false,
    off, no, 0 and unambiguous prefixes); a boolean option given without a value is true."""
    if not value:
        return False
    return value == "0" or "false".startswith(value) or "no".startswith(value) or (len(value) > 1 and "off".startswith(value))


def is_transaction_control(statement_text):
    """Whether the statement begins, ends or prepares the session's transaction: BEGIN,
    START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION. SAVEPOINT,
    RELEASE and ROLLBACK TO SAVEPOINT stay inside a transaction and are not;
    COMMIT/ROLLBACK PREPARED finish another transaction (see needs_no_transaction)."""
    tokens = _tokens(statement_text)
    words = _words(tokens) + ["", "", ""]
    first = words[0]
    if first in ("begin", "end", "abort"):
        return True
    if first == "start":
        return words[1] == "transaction"
    if first == "commit":
        return words[1] != "prepared"
    if first == "rollback":
        if words[1] == "prepared":
            return False
        rest = words[2:] if words[1] in ("work", "transaction") else words[1:]
        return rest[0] != "to"
    if first == "prepare":
        return words[1] == "transaction" and words[2] == "<string>"
    return False


def adds_enum_value(statement_text):
    """Whether the statement is ALTER TYPE ... ADD VALUE: from PostgreSQL 12 it may run in
    a transaction block, but the new value cannot be used before that transaction commits."""
    return _adds_enum_value(_tokens(statement_text))


def _adds_enum_value(tokens):
    words = _words(tokens)
    if words[:2] != ["alter", "type"]:
        return False
    position = _after_name(tokens, 2)
    return words[position:position + 2] == ["add", "value"]


def needs_no_transaction(statement_text, server_version_num=None):
    """None, or what PostgreSQL refuses to run inside a transaction block when the
    statement is such, in a few words to be followed by "cannot run inside a transaction
    block" (e.g. "CREATE INDEX CONCURRENTLY", "VACUUM"). The statement's tokens are matched, so case, comments and line
    breaks do not matter, and words inside a string or a comment do not count.
    `server_version_num` (e.g. 150004) matters for ALTER TYPE ... ADD VALUE only, refused
    in a transaction block before PostgreSQL 12; unknown (None) means 12 or later.
    Statements refused depending on their target (REINDEX or CLUSTER of a partitioned
    table, DROP SUBSCRIPTION of one without a slot) are judged by their text alone."""
    tokens = _tokens(statement_text)
    words = _words(tokens) + [""] * 6
    first, second = words[0], words[1]
    reason = None
    if first == "create":
        position = 2 if second == "unique" else 1
        if words[position:position + 2] == ["index", "concurrently"]:
            reason = "CREATE INDEX CONCURRENTLY"
        elif second in ("database", "tablespace"):
            reason = "CREATE " + second.upper()
        elif second == "subscription":
            options = _with_options(tokens)
            if not _is_false(options.get("connect", "true")) and not _is_false(options.get("create_slot", "true")):
                reason = "CREATE SUBSCRIPTION that creates a replication slot"
    elif first == "drop":
        if words[1:3] == ["index", "concurrently"]:
            reason = "DROP INDEX CONCURRENTLY"
        elif second in ("database", "tablespace", "subscription"):
            reason = "DROP " + second.upper()
    elif first == "reindex":
        options, position = _options(tokens, 1)
        target = words[position]
        if target in ("schema", "database", "system"):
            reason = "REINDEX " + target.upper()
        elif words[position + 1] == "concurrently" or ("concurrently" in options and not _is_false(options["concurrently"])):
            reason = "REINDEX CONCURRENTLY"
    elif first == "vacuum":
        reason = "VACUUM"
    elif first == "cluster":
        position = _options(tokens, 1)[1]
        if words[position] == "verbose":
            position += 1
        if position >= len(tokens):
            reason = "CLUSTER without a table name"
    elif first == "alter":
        reason = _alter_needs_no_transaction(tokens, words, server_version_num)
    elif first in ("commit", "rollback") and second == "prepared":
        reason = first.upper() + " PREPARED"
    elif first == "discard" and second == "all":
        reason = "DISCARD ALL"
    return reason


def _alter_needs_no_transaction(tokens, words, server_version_num):
    second = words[1]
    if second == "system":
        return "ALTER SYSTEM"
    if second == "database":
        if words[3:5] == ["set", "tablespace"]:
            return "ALTER DATABASE ... SET TABLESPACE"
    elif second == "type":
        if server_version_num is not None and int(server_version_num) < 120000 and _adds_enum_value(tokens):
            return "before PostgreSQL 12, ALTER TYPE ... ADD VALUE"
    elif second == "subscription":
        action = words[3]
        if action == "refresh":
            return "ALTER SUBSCRIPTION ... REFRESH"
        if action in ("set", "add", "drop") and words[4] == "publication" and not _is_false(_with_options(tokens).get("refresh", "true")):
            return "ALTER SUBSCRIPTION ... %s PUBLICATION with refresh" % action.upper()
    elif second == "table":
        position = 4 if words[2:4] == ["if", "exists"] else 2
        if words[position] == "only":
            position += 1
        position = _after_name(tokens, position)
        if words[position:position + 2] == ["detach", "partition"]:
            position = _after_name(tokens, position + 2)
            if words[position] == "concurrently":
                return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
    return None


def header_directives(script):
    """{key: value} of the `-- pgops: key` (value True) and `-- pgops: key=value` (value
    the text after =, stripped) comment lines before the script's first statement. Keys
    are returned as written, unknown ones included: the caller validates them.
    Raises SqlScriptError for a malformed or repeated directive and for a `-- pgops:`
    comment after the first statement, where it would silently do nothing."""
    lines = _Lines(script)
    directives = {}
    in_header = True
    for kind, start, end in _lex(script, lines):
        if kind == "space":
            continue
        if kind != "comment":
            in_header = False
            continue
        match = _DIRECTIVE.match(script, start, end)
        if match is None:
            continue
        line = lines(start)
        if not in_header:
            raise SqlScriptError("Line %d: directive %s comes after the first statement, where it has no effect; "
                                 "directives belong in the comment lines before it." % (line, match.group().strip()))
        body = _DIRECTIVE_BODY.match(match.group(1))
        if body is None:
            raise SqlScriptError("Line %d: directive %s is not of the form -- pgops: key or -- pgops: key=value."
                                 % (line, match.group().strip()))
        key, value = body.group(1), body.group(2)
        if key in directives:
            raise SqlScriptError("Line %d: directive %s is given twice." % (line, key))
        directives[key] = True if value is None else value
    return directives


def describe(statement_text, width=80):
    """The statement on one line for messages: whitespace collapsed, and cut to `width`
    characters, ending with ..., when longer."""
    text = " ".join(statement_text.split())
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    return text[:width - 3].rstrip() + "..."
