"""Pure logic of the database and reference_data modules: SASLprep and stored-password
comparison, and how reference files are read (columns, NULL apart from empty, errors)."""

import hashlib

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.provision import ProvisionRequest, password_matches, saslprep
from ansible_collections.pgops.runbook.plugins.module_utils.reference_data.sources import detect_format, open_source


@pytest.mark.parametrize("given, prepared", [
    ("I\u00adX", "IX"),          # RFC 4013 examples: soft hyphen mapped to nothing
    ("user", "user"),
    ("\u00aa", "a"),             # NFKC
    ("\u2168", "IX"),
    ("\u0007", "\u0007"),        # prohibited: PostgreSQL then uses the password as it is
    ("pa\u00a0ss", "pa ss"),     # non-ASCII space mapped to space
])
def test_saslprep_follows_rfc_4013_and_postgresql(given, prepared):
    assert saslprep(given) == prepared


def test_md5_and_unknown_verifiers():
    stored = "md5" + hashlib.md5(b"secretapp").hexdigest()
    assert password_matches(stored, "secret", "app")
    assert not password_matches(stored, "other", "app")
    assert not password_matches(None, "secret", "app")
    assert not password_matches("SCRAM-SHA-256$4096:bm90YmFzZTY0$x:y", "secret", "app")


@pytest.mark.parametrize("options, message", [
    (dict(role_password="x"), "Option role_password needs option role"),
    (dict(role="r", role_connection_limit=-5), "Option role_connection_limit must be -1"),
    (dict(name=""), "Option name must be a non-empty name."),
    (dict(encoding="UTF 8"), "Option encoding must be an encoding name"),
])
def test_provision_request_refuses_bad_options(options, message):
    kwargs = dict(name="db")
    kwargs.update(options)
    with pytest.raises(PgopsError) as caught:
        ProvisionRequest(**kwargs)
    assert message in str(caught.value)


def test_yaml_rows_become_csv_with_null_apart_from_empty(tmp_path):
    path = tmp_path / "rows.yaml"
    path.write_text("- {code: A, note: null, flags: {x: 1}, active: true}\n- {code: 'B\"q', note: '', flags: [1], active: false}\n")
    source = open_source(str(path))
    assert source.columns == ["code", "note", "flags", "active"]
    assert source.open().read().decode().splitlines() == [
        '"code","note","flags","active"', '"A",,"{""x"": 1}","true"', '"B""q","","[1]","false"']
    assert source.where(3) == "%s, row 2" % path


@pytest.mark.parametrize("name, content, message", [
    ("a.yaml", "- {code: A}\n- {name: B}\n", "row 2 has other columns than row 1 (missing code; extra name)"),
    ("a.yaml", "code: A\n", "must hold a list of rows"),
    ("a.yaml", "[]\n", "holds no rows"),
    ("a.json", "[{\"code\": 1},\n oops]", "line 2: not valid JSON"),
    ("a.csv", "code,code\n1,2\n", "line 1: column code appears twice."),
    ("a.csv", "code,,name\n", "line 1: a column has no name."),
    ("a.txt", "code\n", "Option format: cannot tell the format"),
])
def test_bad_files_name_the_file_and_place(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PgopsError) as caught:
        open_source(str(path))
    assert message in str(caught.value) and (name in str(caught.value) or "format" in message)


def test_csv_header_with_bom_and_unclosed_quote(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfcode;name\nA;\"open\nB;x\n")
    source = open_source(str(path), delimiter=";")
    assert source.columns == ["code", "name"] and source.unclosed_quote_line() == 2
    assert detect_format("x.YML", "auto") == "yaml"
