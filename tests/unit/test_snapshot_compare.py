"""Comparing db_snapshot snapshots: what a runbook sees after a migration or a restore."""

import copy
import json

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.snapshot import (
    compare_snapshots,
    fingerprint_of,
    load_snapshot,
    object_hash,
)


def table(rows):
    return dict(kind="r", rows=rows, estimated_rows=rows, table_bytes=8192, index_bytes=16384, total_bytes=24576)


def index(valid=True, definition="CREATE INDEX x ON public.t USING btree (a)"):
    return dict(table="public.t", valid=valid, unique=False, primary=False, definition=definition, bytes=16384)


def constraint(validated=True, definition="FOREIGN KEY (patient_id) REFERENCES public.patients(id)"):
    return dict(type="foreign key", definition=definition, validated=validated)


def snapshot(tables=None, indexes=None, constraints=None, schema_objects=None):
    objects = dict(schema_objects if schema_objects is not None else {"table public.patients": "aaaa"})
    return dict(format=1, database="appdb", taken_at="2026-11-25T01:00:00+00:00",
                tables=dict(tables if tables is not None else {"public.patients": table(100)}),
                indexes=dict(indexes or {}), constraints=dict(constraints or {}),
                schema_objects=objects, fingerprint=fingerprint_of(objects))


def kinds(diffs):
    return [(d["kind"], d["object"]) for d in diffs]


def test_identical_snapshots_have_no_difference():
    base = snapshot(indexes={"public.i": index()}, constraints={"public.t.fk": constraint()})
    assert compare_snapshots(base, copy.deepcopy(base)) == []


def test_tables_added_and_removed():
    base = snapshot(tables={"public.a": table(1), "public.b": table(2)})
    now = snapshot(tables={"public.b": table(2), "public.c": table(3)})
    diffs = compare_snapshots(base, now)
    assert kinds(diffs) == [("table_removed", "public.a"), ("table_added", "public.c")]
    assert (diffs[0]["before"], diffs[0]["after"]) == (1, None)
    assert (diffs[1]["before"], diffs[1]["after"]) == (None, 3)
    assert "public.a" in diffs[0]["message"] and "public.c" in diffs[1]["message"]


def rows_diffs(before, after, tolerance):
    return compare_snapshots(snapshot(tables={"public.t": table(before)}),
                             snapshot(tables={"public.t": table(after)}), tolerance)


def test_any_row_change_is_reported_without_tolerance():
    diffs = rows_diffs(100, 99, 0)
    assert kinds(diffs) == [("rows_changed", "public.t")]
    assert (diffs[0]["before"], diffs[0]["after"]) == (100, 99)
    assert "1.00 %" in diffs[0]["message"]
    assert rows_diffs(100, 100, 0) == []


def test_a_change_exactly_at_the_tolerance_is_not_reported():
    assert rows_diffs(100, 101, 1) == []
    assert rows_diffs(100, 99, 1) == []
    assert kinds(rows_diffs(100, 102, 1)) == [("rows_changed", "public.t")]
    assert kinds(rows_diffs(1000, 989, 1)) == [("rows_changed", "public.t")]


def test_rows_appearing_in_an_empty_table_are_a_change():
    assert kinds(rows_diffs(0, 1, 50)) == [("rows_changed", "public.t")]


@pytest.mark.parametrize("before, after", [(None, 5), (5, None), (None, None)])
def test_unknown_row_counts_are_not_compared(before, after):
    assert rows_diffs(before, after, 0) == []


def test_a_lost_index():
    base = snapshot(indexes={"public.i": index(), "public.j": index()})
    now = snapshot(indexes={"public.j": index()})
    diffs = compare_snapshots(base, now)
    assert kinds(diffs) == [("index_lost", "public.i")]
    assert diffs[0]["before"] == "CREATE INDEX x ON public.t USING btree (a)"


def test_an_index_that_became_invalid():
    diffs = compare_snapshots(snapshot(indexes={"public.i": index()}), snapshot(indexes={"public.i": index(valid=False)}))
    assert kinds(diffs) == [("index_invalid", "public.i")]
    assert (diffs[0]["before"], diffs[0]["after"]) == (True, False)


def test_a_new_invalid_index_is_reported():
    diffs = compare_snapshots(snapshot(), snapshot(indexes={"public.i": index(valid=False)}))
    assert kinds(diffs) == [("index_invalid", "public.i")]
    assert diffs[0]["before"] is None


def test_an_index_already_invalid_is_not_reported_again():
    base = snapshot(indexes={"public.i": index(valid=False)})
    assert compare_snapshots(base, copy.deepcopy(base)) == []


def test_a_lost_constraint():
    diffs = compare_snapshots(snapshot(constraints={"public.t.fk": constraint()}), snapshot())
    assert kinds(diffs) == [("constraint_lost", "public.t.fk")]
    assert diffs[0]["before"].startswith("FOREIGN KEY")


def test_a_constraint_that_became_not_valid():
    diffs = compare_snapshots(snapshot(constraints={"public.t.fk": constraint()}),
                              snapshot(constraints={"public.t.fk": constraint(validated=False)}))
    assert kinds(diffs) == [("constraint_not_valid", "public.t.fk")]


def test_a_new_not_valid_constraint_is_reported_but_an_old_one_is_not():
    assert kinds(compare_snapshots(snapshot(), snapshot(constraints={"public.t.c": constraint(validated=False)}))) == \
        [("constraint_not_valid", "public.t.c")]
    old = snapshot(constraints={"public.t.c": constraint(validated=False)})
    assert compare_snapshots(old, copy.deepcopy(old)) == []


def test_schema_changes_are_named():
    base = snapshot(schema_objects={"table public.a": "1111", "table public.b": "2222", "index public.i": "3333"})
    now = snapshot(schema_objects={"table public.a": "1111", "table public.b": "9999", "view public.v": "4444"})
    diffs = compare_snapshots(base, now)
    assert kinds(diffs) == [("fingerprint_changed", "schema"), ("schema_object_removed", "index public.i"),
                            ("schema_object_changed", "table public.b"), ("schema_object_added", "view public.v")]
    head = diffs[0]
    assert (head["before"], head["after"]) == (base["fingerprint"], now["fingerprint"])
    assert "3 objects differ" in head["message"]
    for name in ("index public.i", "table public.b", "view public.v"):
        assert name in head["message"]
    assert (diffs[2]["before"], diffs[2]["after"]) == ("2222", "9999")


def test_many_schema_changes_are_listed_ten_at_a_time_in_the_message():
    base = snapshot(schema_objects={})
    now = snapshot(schema_objects=dict(("table public.t%02d" % n, "h%d" % n) for n in range(12)))
    diffs = compare_snapshots(base, now)
    assert "12 objects differ" in diffs[0]["message"] and diffs[0]["message"].count("table public.t") == 10
    assert " ..." in diffs[0]["message"]
    assert len([d for d in diffs if d["kind"] == "schema_object_added"]) == 12


def test_a_different_fingerprint_without_per_object_hashes_is_still_reported():
    base, now = snapshot(), snapshot()
    del base["schema_objects"]
    now["fingerprint"] = "0" * 64
    assert kinds(compare_snapshots(base, now))[0] == ("fingerprint_changed", "schema")


# --- fingerprint ----------------------------------------------------------------------------------------

def test_fingerprint_does_not_depend_on_order():
    one = {"table public.a": "1", "table public.b": "2", "index public.i": "3"}
    other = dict(reversed(list(one.items())))
    assert fingerprint_of(one) == fingerprint_of(other)
    assert len(fingerprint_of(one)) == 64


def test_fingerprint_changes_with_any_object():
    base = {"table public.a": "1", "table public.b": "2"}
    assert fingerprint_of(base) != fingerprint_of(dict(base, **{"table public.b": "3"}))
    assert fingerprint_of(base) != fingerprint_of({"table public.a": "1", "table public.c": "2"})
    assert fingerprint_of(base) != fingerprint_of({"table public.a": "1"})
    assert fingerprint_of({}) != fingerprint_of(base)


def test_object_hash_separates_its_parts():
    assert object_hash("table", "public.a", "x") == object_hash("table", "public.a", "x")
    assert object_hash("table", "public.a", "x") != object_hash("view", "public.a", "x")
    assert object_hash("table", "public.a b", "c") != object_hash("table", "public.a", "b c")


# --- load_snapshot ---------------------------------------------------------------------------------------

def test_load_a_snapshot_dict():
    base = snapshot()
    assert load_snapshot(base) is base


def test_load_a_snapshot_file(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(snapshot()))
    assert load_snapshot(str(path)) == json.loads(json.dumps(snapshot()))


def test_a_missing_file_names_compare_to(tmp_path):
    with pytest.raises(PgopsError) as caught:
        load_snapshot(str(tmp_path / "missing.json"))
    message = str(caught.value)
    assert message.startswith("Option compare_to: cannot read")
    assert "missing.json" in message and "No such file" in message


def test_a_file_that_is_not_json_names_compare_to(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text("{not json")
    with pytest.raises(PgopsError) as caught:
        load_snapshot(str(path))
    assert str(caught.value) == "Option compare_to: %s is not a JSON snapshot." % path


@pytest.mark.parametrize("value", [[1, 2], {"tables": {}}, {"snapshot": {}, "changed": False}, 42])
def test_something_else_is_not_a_snapshot(value):
    with pytest.raises(PgopsError) as caught:
        load_snapshot(value)
    assert str(caught.value).startswith("Option compare_to must be a snapshot made by db_snapshot")


def test_a_json_file_holding_something_else(tmp_path):
    path = tmp_path / "other.json"
    path.write_text("[1, 2]")
    with pytest.raises(PgopsError) as caught:
        load_snapshot(str(path), option="baseline")
    assert str(caught.value).startswith("Option baseline must be a snapshot")
