#!/usr/bin/env bash
# `make test`: run make targets one after the other, stop at the first that
# fails (KEEP_GOING=1 runs them all), then print a summary: each step's result
# and time, the notes steps left (e.g. "no unit tests yet"), and the verdict.
# Usage: tests/quality/run-steps.sh STEP...
# A STEP of the form "a,b|c" runs its lanes at the same time: a then b in one,
# c in the other (steps that each keep one core busy, on a machine with two);
# each step's output is kept and printed whole when the group is done.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
make=${MAKE:-make}
keep_going=${KEEP_GOING:-0}
notes=$root/.build/quality-notes.txt
mkdir -p "$root/.build"
rm -rf "$root/.build/junit"  # only this run's reports count in the closing line
: >"$notes"
export QUALITY_NOTES=$notes

declare -a names results times
failed=()
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
seconds_since() { local us=$(( $(now_us) - $1 )); printf '%d.%d s' $((us / 1000000)) $((us % 1000000 / 100000)); }
steps_dir=$root/.build/steps
rm -rf "$steps_dir"
mkdir -p "$steps_dir"

run_lane() {  # run_lane STEP...: one after the other, stopping at a failure; each writes
              # steps/<step>.log and steps/<step>.result ("<exit status> <time>")
    local step start rc
    for step in "$@"; do
        start=$(now_us)
        "$make" -C "$root" --no-print-directory "$step" >"$steps_dir/$step.log" 2>&1
        rc=$?
        echo "$rc $(seconds_since "$start")" >"$steps_dir/$step.result"
        [[ $rc -eq 0 || $keep_going = 1 ]] || break
    done
}

record() {  # record STEP EXIT_STATUS TIME
    names+=("$1")
    times+=("$3")
    if [[ $2 -eq 0 ]]; then
        results+=("PASS")
    else
        results+=("FAIL (exit $2)")
        failed+=("$1")
    fi
}

total_start=$(now_us)
for spec in "$@"; do
    if [[ ${#failed[@]} -gt 0 && $keep_going != 1 ]]; then
        for step in ${spec//[,|]/ }; do
            names+=("$step"); results+=("not run"); times+=("")
        done
        continue
    fi
    if [[ $spec != *[,\|]* ]]; then
        printf '\n===== make %s =====\n' "$spec"
        start=$(now_us)
        "$make" -C "$root" --no-print-directory "$spec"
        rc=$?
        record "$spec" "$rc" "$(seconds_since "$start")"
        continue
    fi
    IFS='|' read -r -a lanes <<<"$spec"
    printf '\n===== make %s, at the same time =====\n' "${lanes[*]}"
    pids=()
    for lane in "${lanes[@]}"; do
        IFS=',' read -r -a lane_steps <<<"$lane"
        run_lane "${lane_steps[@]}" &
        pids+=($!)
    done
    wait "${pids[@]}"
    for step in ${spec//[,|]/ }; do
        if [[ ! -e $steps_dir/$step.result ]]; then
            names+=("$step"); results+=("not run"); times+=("")
            continue
        fi
        printf '\n===== make %s =====\n' "$step"
        cat "$steps_dir/$step.log"
        read -r rc took <"$steps_dir/$step.result"
        record "$step" "$rc" "$took"
    done
done
total=$(seconds_since "$total_start")

printf '\n===== make test summary =====\n'
for i in "${!names[@]}"; do
    printf '  %-16s %-14s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
if [[ -s $notes ]]; then
    echo "notes:"
    sed 's/^/  - /' "$notes"
fi
# The plain closing line CI reads: every pytest test of this run, added up.
(cd "$root" && "${VENV:-.venv}/bin/python" - <<'PY'
import glob
import xml.etree.ElementTree as ET
counts = dict(tests=0, failures=0, errors=0, skipped=0)
for path in glob.glob(".build/junit/*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
failed = counts["failures"] + counts["errors"]
passed = counts["tests"] - failed - counts["skipped"]
print("tests: %d passed, %d failed, %d skipped" % (passed, failed, counts["skipped"]))
PY
)
if [[ ${#failed[@]} -eq 0 ]]; then
    echo "RESULT: PASS (${#names[@]} steps, $total)"
    exit 0
fi
echo "RESULT: FAIL -- ${failed[*]} ($total)"
exit 1
