"""migration_lint's pure parts: options checked before anything runs, .sql files gathered,
a statement that does not parse found by line while the others are still judged, and the
failure policy."""

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.lint.engine import Source, lint, select_rules, summarize
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ERROR, INFO, Hit, Rule
from ansible_collections.pgops.runbook.plugins.module_utils.lint.runner import LintRequest, sources_from_paths


def rules_of(findings):
    return [(f["rule"], f["line"]) for f in findings]


def test_a_bad_statement_is_one_finding_at_its_line_and_the_others_are_judged():
    text = "-- adds an index\nCREATE INDEX i ON patients (name);\n\nALTER TABLE patients\n  ADD COLUMN x integr-er;\nDROP TABLE foo;\n"
    findings, stats = lint([Source("m.sql", text, False)], select_rules(), lock_timeout_set=True)
    assert ("require-concurrent-index-creation", 2) in rules_of(findings)
    assert ("syntax-error", 5) in rules_of(findings)
    assert ("ban-drop-table", 6) in rules_of(findings)
    assert stats["statements"] == 3


def test_an_unsplittable_source_is_one_finding_at_the_error():
    text = "SELECT 1;\nSELECT 'never closed;\n"
    findings, dummy = lint([Source("m.sql", text, False)], select_rules(), lock_timeout_set=True)
    assert [f["rule"] for f in findings] == ["syntax-error"]
    assert findings[0]["line"] == 2


def test_a_hit_may_carry_its_own_severity():
    rule = Rule("demo", ERROR, "why", "fix", lambda statement, state: iter([Hit(severity=INFO)]), size_sensitive=False)
    findings, dummy = lint([Source("m.sql", "SELECT 1;", False)], [rule])
    assert [f["severity"] for f in findings] == [INFO]
    assert rule.severity == ERROR
    with pytest.raises(ValueError):
        Hit(severity="fatal")


def test_an_index_created_earlier_in_the_source_is_dropped_without_a_finding():
    text = "CREATE INDEX CONCURRENTLY tmp_i ON patients (name);\nDROP INDEX tmp_i;\nDROP INDEX other_i;\n"
    findings, dummy = lint([Source("m.sql", text, False)], select_rules(["require-concurrent-index-deletion"]))
    assert rules_of(findings) == [("require-concurrent-index-deletion", 3)]


@pytest.mark.parametrize("fail_on, fails", [("error", False), ("warning", True), ("never", False)])
def test_the_policy(fail_on, fails):
    findings = [dict(severity="warning"), dict(severity="info")]
    summary, failed = summarize(findings, 2, fail_on)
    assert failed is fails and summary["failed"] is fails
    assert summary["warning"] == 1 and summary["info"] == 1 and summary["error"] == 0


@pytest.mark.parametrize("options, message", [
    (dict(), "Give exactly one of the options sql, paths and project_dir (got none)."),
    (dict(sql="SELECT 1", paths=["/tmp"]), "Give exactly one of the options sql, paths and project_dir (got sql, paths)."),
    (dict(sql="SELECT 1", rules=["no-such-rule"]), "Option rules: unknown rule no-such-rule"),
    (dict(sql="SELECT 1", exclude_rules=["ban-drop-colum"]), "Option exclude_rules: unknown rule ban-drop-colum"),
    (dict(sql="SELECT 1", thresholds=dict(huge_table_rows=5)), "Option thresholds: unknown key huge_table_rows"),
    (dict(sql="SELECT 1", thresholds=dict(small_table_rows=-1)), "Option thresholds: small_table_rows must be a whole number"),
    (dict(sql="SELECT 1", thresholds=dict(small_table_rows=50, large_table_rows=10)),
     "Option thresholds: small_table_rows (50) is above large_table_rows (10)."),
    (dict(project_dir="/nonexistent/project"), "Option project_dir: /nonexistent/project is not a directory."),
])
def test_bad_options_are_one_sentence_naming_the_option(options, message):
    with pytest.raises(PgopsError) as caught:
        LintRequest(**options)
    assert caught.value.message.startswith(message)


def test_sql_files_are_gathered_in_name_order_from_directories(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "002_add.sql").write_text("ALTER TABLE t ADD COLUMN c text;")
    (tmp_path / "001_init.sql").write_text("CREATE TABLE t (id bigint);")
    (tmp_path / "notes.txt").write_text("not sql")
    sources = sources_from_paths([str(tmp_path)], True)
    assert [s.name for s in sources] == [str(tmp_path / "001_init.sql"), str(tmp_path / "b" / "002_add.sql")]
    assert all(s.wrapped for s in sources)


@pytest.mark.parametrize("make, message", [
    (lambda d: str(d / "missing.sql"), "does not exist."),
    (str, "holds no .sql file."),
    (lambda d: (d / "latin1.sql").write_bytes(b"SELECT '\xe9';") and str(d / "latin1.sql"), "is not UTF-8 text."),
])
def test_bad_paths(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(PgopsError) as caught:
        sources_from_paths([path], True)
    assert caught.value.message.startswith("Option paths: ") and caught.value.message.endswith(message)
