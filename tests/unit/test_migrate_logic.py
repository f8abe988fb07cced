"""The migrate engine's pure logic: version order, durations, reading a Flyway-style
project (what is refused before anything runs), and the plans between versions."""

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.model import version_key
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.session import as_setting, parse_duration
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.tools import registry
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.tools.sql import read_project


def test_versions_sort_numerically():
    versions = ["1.10", "1.9", "2", "1_2", "10", "1.0", "1.2.1"]
    assert sorted(versions, key=version_key) == ["1.0", "1_2", "1.2.1", "1.9", "1.10", "2", "10"]
    assert version_key("1.0") == version_key("1")
    with pytest.raises(PgopsError, match="is not numbers"):
        version_key("1a")


@pytest.mark.parametrize("value, seconds", [("5s", 5), ("500ms", 0.5), ("2min", 120), ("1h", 3600), (7, 7), ("0", 0),
                                            ("1.5s", 1.5)])
def test_durations(value, seconds):
    assert parse_duration(value, "lock_timeout") == seconds


@pytest.mark.parametrize("value", ["soon", "-1s", "5 parsecs", "s"])
def test_bad_durations_name_the_option(value):
    with pytest.raises(PgopsError, match="Option lock_timeout"):
        parse_duration(value, "lock_timeout")


def test_setting_is_whole_milliseconds():
    assert as_setting(0.5) == "500ms" and as_setting(0) == "0ms"


def write(directory, name, text):
    (directory / name).write_text(text)


def test_project_files_are_ordered_and_paired_with_their_undo(tmp_path):
    write(tmp_path, "V10__ten.sql", "SELECT 10;")
    write(tmp_path, "V2__two.sql", "SELECT 2;")
    write(tmp_path, "V1_1__one_one.sql", "SELECT 11;")
    write(tmp_path, "U2__two.sql", "SELECT -2;")
    write(tmp_path, "R__views.sql", "SELECT 'r';")
    write(tmp_path, "notes.txt", "ignored")
    versioned, undo, repeatable = read_project(str(tmp_path))
    assert [m.version for m in versioned] == ["1_1", "2", "10"]
    assert versioned[1].undo is not None and versioned[0].undo is None
    assert [m.version for m in repeatable] == ["views"] and repeatable[0].kind == "repeatable"
    assert versioned[2].name == "ten" and len(versioned[2].checksum) == 64


@pytest.mark.parametrize("files, message", [
    ({"V1__a.sql": "SELECT 1;", "V1.0__b.sql": "SELECT 1;"}, "have the same version"),
    ({"V__a.sql": "SELECT 1;"}, "has no version"),
    ({"R1__a.sql": "SELECT 1;"}, "must be named R__<description>.sql"),
    ({"V1__a.sql": "-- only a comment\n"}, "holds no SQL statement"),
    ({"V1__a.sql": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY i ON t (id);"},
     "line 2: .* cannot run inside a transaction, and the file has other statements"),
])
def test_project_refusals(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(PgopsError, match=message):
        read_project(str(tmp_path))


def test_a_file_of_non_transactional_statements_only_runs_outside_a_transaction(tmp_path):
    write(tmp_path, "V1__a.sql", "CREATE INDEX CONCURRENTLY i ON t (id);\nVACUUM t;")
    write(tmp_path, "V2__b.sql", "CREATE TABLE u (id int);")
    versioned, dummy, dummy = read_project(str(tmp_path))
    assert [m.transactional for m in versioned] == [False, True]


def test_detection_order(tmp_path):
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    write(tmp_path, "V1__a.sql", "SELECT 1;")
    assert registry.detect(str(tmp_path)) == "alembic"
    (tmp_path / "alembic.ini").unlink()
    assert registry.detect(str(tmp_path)) == "sql"
    (tmp_path / "V1__a.sql").unlink()
    with pytest.raises(PgopsError, match="holds no migrations this module recognises"):
        registry.detect(str(tmp_path))
