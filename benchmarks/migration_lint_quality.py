"""migration_lint: precision and recall, and the time to lint 1,000 statements.

    python3 benchmarks/migration_lint_quality.py            # ~30 s on 2 cores
    python3 benchmarks/migration_lint_quality.py --reps 7 --statements 5000

Quality: every case of the rule corpus (tests/unit/lint_corpus/*.yml, written with the
rules) and of the holdout set (benchmarks/lint_holdout.yml, labelled from the rules'
descriptions alone, without running the linter) is linted as `make test` lints the
corpus; a finding whose rule a case expects is a true positive, one it does not expect a
false positive, an expected rule not found a false negative (counted per occurrence).
Precision = TP / (TP + FP), recall = TP / (TP + FN), overall and per rule; the holdout's
misses are listed so they can be read.

Speed: one source of N statements (the corpus's statements, repeated in order), parsed by
pglast alone (the raw parser, the floor) and linted by the engine with every rule, medians
of --reps runs, as a ratio; then the whole Ansible task (migration_lint on that file, no
connection) next to an ansible.builtin.ping task in the same run (what any task costs).
"""

import argparse
import collections
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import REPO, reexec_in_venv, say  # noqa: E402

reexec_in_venv(__file__)

sys.path.insert(0, os.path.join(REPO, ".build", "collections"))
sys.path.insert(0, REPO)
from tests.harness.collection import ensure_collection_path  # noqa: E402

ensure_collection_path()

import pglast  # noqa: E402
import yaml  # noqa: E402
from ansible_collections.pgops.runbook.plugins.module_utils.lint.engine import Source, lint, select_rules  # noqa: E402

CORPUS = os.path.join(REPO, "tests", "unit", "lint_corpus")
HOLDOUT = os.path.join(HERE, "lint_holdout.yml")
ANSIBLE_PLAYBOOK = os.path.join(REPO, ".venv", "bin", "ansible-playbook")


def load_cases(path_glob):
    cases = []
    for path in sorted(glob.glob(path_glob)):
        with open(path) as handle:
            cases.extend(yaml.safe_load(handle)["cases"])
    return cases


def run_case(case, rules):
    tables = case.get("tables") or {}
    findings, dummy = lint([Source("case.sql", case["sql"], case.get("wrapped", False))], rules,
                           facts=tables.get if tables else None, server_version_num=case.get("server_version_num", 150000),
                           lock_timeout_set=case.get("lock_timeout_set", True))
    return [f["rule"] for f in findings]


def score(cases, rules):
    per_rule = collections.defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
    misses = []
    for case in cases:
        found = collections.Counter(run_case(case, rules))
        expected = collections.Counter(case["expect"])
        for rule in set(found) | set(expected):
            tp = min(found[rule], expected[rule])
            per_rule[rule][0] += tp
            per_rule[rule][1] += found[rule] - tp
            per_rule[rule][2] += expected[rule] - tp
        if found != expected:
            misses.append((case["name"], sorted((found - expected).elements()), sorted((expected - found).elements())))
    tp = sum(v[0] for v in per_rule.values())
    fp = sum(v[1] for v in per_rule.values())
    fn = sum(v[2] for v in per_rule.values())
    return tp, fp, fn, per_rule, misses


def pct(num, den):
    return "%.3f" % (float(num) / den) if den else "n/a"


def report_quality(name, cases, rules, show_misses):
    tp, fp, fn, per_rule, misses = score(cases, rules)
    say("%s: %d cases, %d expected findings: precision %s (TP %d, FP %d), recall %s (FN %d); %d cases differ"
        % (name, len(cases), tp + fn, pct(tp, tp + fp), tp, fp, pct(tp, tp + fn), fn, len(misses)))
    if show_misses:
        weak = [(rule, v) for rule, v in sorted(per_rule.items()) if v[1] or v[2]]
        for rule, (rtp, rfp, rfn) in weak:
            say("    %-40s precision %s recall %s (TP %d FP %d FN %d)" % (rule, pct(rtp, rtp + rfp), pct(rtp, rtp + rfn), rtp, rfp, rfn))
        for case_name, extra, missing in misses:
            say("    differs: %s: found but not expected %s; expected but not found %s" % (case_name, extra or "-", missing or "-"))


def statements_text(count):
    """`count` statements from the corpus, in order, repeated: a migration file as long as needed."""
    pieces = []
    for case in load_cases(os.path.join(CORPUS, "*.yml")):
        try:
            for raw in pglast.parse_sql(case["sql"]):
                chunk = case["sql"].encode("utf-8")[raw.stmt_location or 0:(raw.stmt_location or 0) + raw.stmt_len
                                                    if raw.stmt_len else None].decode("utf-8").strip()
                if chunk and not chunk.upper().startswith(("BEGIN", "COMMIT", "START", "ROLLBACK", "END")):
                    pieces.append(chunk)
        except pglast.parser.ParseError:
            continue
    out = []
    while len(out) < count:
        out.extend(pieces)
    return ";\n".join(out[:count]) + ";\n"


def timed(call, reps):
    times = []
    for dummy in range(reps):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def play_seconds(task, reps):
    with tempfile.TemporaryDirectory() as work:
        playbook = os.path.join(work, "play.yml")
        with open(playbook, "w") as handle:
            yaml.safe_dump([dict(hosts="localhost", gather_facts=False, tasks=[task])], handle)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")

        def run():
            subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
                            playbook], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        run()  # warm the caches
        return timed(run, reps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--statements", type=int, default=1000)
    args = parser.parse_args()
    rules = select_rules()
    say("== quality (%d rules)" % len(rules))
    report_quality("corpus (written with the rules)", load_cases(os.path.join(CORPUS, "*.yml")), rules, False)
    if os.path.exists(HOLDOUT):
        report_quality("holdout (labelled from the descriptions)", load_cases(HOLDOUT), rules, True)
    else:
        say("holdout: %s is missing" % HOLDOUT)

    say("== speed (%d statements, medians of %d)" % (args.statements, args.reps))
    text = statements_text(args.statements)
    parse_s = timed(lambda: pglast.parse_sql(text), args.reps)
    findings = []
    lint_s = timed(lambda: findings.append(lint([Source("bench.sql", text, True)], rules, lock_timeout_set=False)), args.reps)
    say("pglast.parse_sql alone  %.3f s" % parse_s)
    say("lint, %d rules          %.3f s  (%.1fx the parse; %d findings)" % (len(rules), lint_s, lint_s / parse_s,
                                                                            len(findings[-1][0])))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(text)
    try:
        ping = play_seconds(dict(name="ping", **{"ansible.builtin.ping": {}}), args.reps)
        task = play_seconds(dict(name="lint", **{"pgops.runbook.migration_lint": dict(paths=[handle.name], fail_on="never")}),
                            args.reps)
    finally:
        os.unlink(handle.name)
    say("ansible-playbook, ping  %.3f s" % ping)
    say("ansible-playbook, lint  %.3f s  (%.2fx the ping play; +%.3f s)" % (task, task / ping, task - ping))


if __name__ == "__main__":
    main()
