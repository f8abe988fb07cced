"""The lint rules against their corpus: tests/unit/lint_corpus/<rule>.yml holds, per rule,
the dangerous and the safe variants side by side with the findings every rule together
must produce (`expect`: rule names, a rule that fires twice is listed twice). Each case may
set `lock_timeout_set` (default true, so require-lock-timeout stays out of other rules'
cases), `server_version_num` (default 150000), `wrapped` (the runner wraps the file in a
transaction, default false) and `tables` ({name: {rows, bytes}}: the real sizes a connection
would report)."""

import glob
import os

import pytest
import yaml

from ansible_collections.pgops.runbook.plugins.module_utils.lint.engine import Source, lint, select_rules
from ansible_collections.pgops.runbook.plugins.module_utils.lint.rules.registry import RULES

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lint_corpus")


def corpus_files():
    return sorted(glob.glob(os.path.join(CORPUS, "*.yml")))


def cases():
    for path in corpus_files():
        with open(path) as handle:
            data = yaml.safe_load(handle)
        for number, case in enumerate(data["cases"]):
            yield pytest.param(data["rule"], case, id="%s-%d-%s" % (data["rule"], number, case["name"].replace(" ", "_")))


def run_case(case):
    tables = case.get("tables") or {}
    findings, dummy = lint([Source("case.sql", case["sql"], case.get("wrapped", False))], select_rules(),
                           facts=tables.get if tables else None,
                           server_version_num=case.get("server_version_num", 150000),
                           lock_timeout_set=case.get("lock_timeout_set", True))
    return findings


@pytest.mark.parametrize("rule, case", list(cases()))
def test_corpus_case(rule, case):
    findings = run_case(case)
    assert sorted(f["rule"] for f in findings) == sorted(case["expect"]), findings
    for expected in case.get("severities") or []:
        got = [f["severity"] for f in findings if f["rule"] == expected["rule"]]
        assert got == [expected["severity"]], (expected, findings)
    for finding in findings:
        assert finding["why"] and finding["fix"] and finding["line"] >= 1


def test_every_rule_has_a_corpus_that_makes_it_fire_and_a_safe_variant():
    fired, files = set(), {}
    for path in corpus_files():
        with open(path) as handle:
            data = yaml.safe_load(handle)
        files[data["rule"]] = data
        fired.update(name for case in data["cases"] for name in case["expect"])
    for rule in RULES:
        assert rule.name in files, "no corpus for %s" % rule.name
        cases_of = files[rule.name]["cases"]
        assert any(rule.name in case["expect"] for case in cases_of), "%s never fires in its corpus" % rule.name
        assert any(rule.name not in case["expect"] for case in cases_of), "%s has no safe variant" % rule.name
