# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files reference data comes from, each read as a header (the column names) and a
CSV byte stream for COPY: a CSV file is streamed as it is (bounded memory, the server's
CSV parser, errors by line); YAML and JSON lists of rows are re-encoded as CSV, the
NULL (an unquoted empty field) kept apart from the empty string."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import datetime
import io
import json
import os

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - only YAML files need it
    HAS_YAML = False

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

FORMATS = ("csv", "yaml", "json")
_EXTENSIONS = {".csv": "csv", ".yml": "yaml", ".yaml": "yaml", ".json": "json"}
_BOM = b"\xef\xbb\xbf"


def detect_format(path, fmt):
    """The file's format: `fmt`, or from its extension when `fmt` is auto."""
    if fmt and fmt != "auto":
        if fmt not in FORMATS:
            raise PgopsError("Option format must be auto, csv, yaml or json.")
        return fmt
    found = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if found is None:
        raise PgopsError("Option format: cannot tell the format of %s from its extension (.csv, .yaml, .yml, .json); "
                         "set format." % path)
    return found


class Source:
    """A file's columns, and `open()` giving a binary CSV stream (header line first) for COPY.
    `row_of_line(n)` turns COPY's line number into the file's own position."""

    def __init__(self, path, columns, kind):
        self.path = path
        self.columns = columns
        self.kind = kind

    def where(self, line):
        """'file F, line N' (CSV) or 'file F, row N' (YAML, JSON) for COPY's line number."""
        if self.kind == "csv":
            return "%s, line %d" % (self.path, line)
        return "%s, row %d" % (self.path, line - 1)


class CsvSource(Source):
    def __init__(self, path, delimiter):
        self.delimiter = delimiter
        with open(path, "rb") as handle:
            first = handle.readline()
        if first.startswith(_BOM):
            first = first[len(_BOM):]
        try:
            text = first.decode("utf-8")
        except UnicodeDecodeError:
            raise PgopsError("File %s, line 1: the header is not UTF-8." % path)
        if not text.strip():
            raise PgopsError("File %s, line 1: there is no header row (the column names)." % path)
        try:
            columns = next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter, strict=True))
        except csv.Error as exc:
            raise PgopsError("File %s, line 1: the header row is not valid CSV (%s)." % (path, exc))
        columns = [c.strip() for c in columns]
        _check_columns(path, columns, "line 1")
        Source.__init__(self, path, columns, "csv")

    def open(self):
        return open(self.path, "rb")

    def unclosed_quote_line(self):
        """The line where the quoted field that is never closed opens (COPY only notices at the end)."""
        opened, inside = None, False
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                for dummy in range(line.count(b'"')):
                    inside = not inside
                    if inside:
                        opened = number
        return opened if inside else None


class RowsSource(Source):
    """YAML or JSON: a list of mappings, every one with the same keys."""

    def __init__(self, path, kind):
        rows = _load(path, kind)
        if not isinstance(rows, list):
            raise PgopsError("File %s must hold a list of rows (mappings of column to value)." % path)
        if not rows:
            raise PgopsError("File %s holds no rows, so it names no columns; a file that empties the table is refused."
                             % path)
        columns = None
        for number, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise PgopsError("File %s, row %d is not a mapping of column to value." % (path, number))
            keys = [str(k) for k in row]
            if columns is None:
                columns = keys
                _check_columns(path, columns, "row 1")
            elif set(keys) != set(columns):
                missing = sorted(set(columns) - set(keys))
                extra = sorted(set(keys) - set(columns))
                raise PgopsError("File %s, row %d has other columns than row 1 (%s)." % (
                    path, number, "; ".join(filter(None, ["missing " + ", ".join(missing) if missing else "",
                                                          "extra " + ", ".join(extra) if extra else ""]))))
        self.rows = rows
        Source.__init__(self, path, columns, kind)

    def open(self):
        out = io.BytesIO()
        out.write((",".join(_csv_field(c) for c in self.columns) + "\n").encode("utf-8"))
        for row in self.rows:
            values = dict((str(k), v) for k, v in row.items())
            out.write((",".join(_csv_field(values[c]) for c in self.columns) + "\n").encode("utf-8"))
        out.seek(0)
        return out


def _load(path, kind):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise PgopsError("Option path: cannot read %s (%s)." % (path, exc.strerror or exc))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PgopsError("File %s is not UTF-8." % path)
    if kind == "json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PgopsError("File %s, line %s: not valid JSON (%s)." % (
                path, getattr(exc, "lineno", "?"), getattr(exc, "msg", exc)))
    if not HAS_YAML:
        raise PgopsError("Option path: reading the YAML file %s needs the PyYAML library on the host running the module."
                         % path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else "?"
        raise PgopsError("File %s, line %s: not valid YAML (%s)." % (path, line, getattr(exc, "problem", None) or exc))


def _check_columns(path, columns, where):
    for column in columns:
        if not column:
            raise PgopsError("File %s, %s: a column has no name." % (path, where))
    seen = set()
    for column in columns:
        if column in seen:
            raise PgopsError("File %s, %s: column %s appears twice." % (path, where, column))
        seen.add(column)


def _csv_field(value):
    """One CSV field as COPY reads it: NULL unquoted and empty, anything else quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
    elif isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        text = value.isoformat()
    else:
        text = str(value)
    return '"' + text.replace('"', '""') + '"'


def open_source(path, fmt="auto", delimiter=","):
    """The Source for `path`; PgopsError naming the file for anything unreadable."""
    if not path or not os.path.isfile(path):
        raise PgopsError("Option path: %s is not a file." % path)
    if not os.access(path, os.R_OK):
        raise PgopsError("Option path: %s is not readable." % path)
    kind = detect_format(path, fmt)
    if kind == "csv":
        if not delimiter or len(delimiter) != 1 or delimiter in '"\r\n':
            raise PgopsError("Option delimiter must be one character other than a quote or a line break.")
        return CsvSource(path, delimiter)
    return RowsSource(path, kind)
