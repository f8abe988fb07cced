#!/usr/bin/env bash
# Run pytest on one test directory, treating "no tests collected" (exit 5)
# according to what the directory holds:
#   * no test files at all (test_*.py / *_test.py), or no DIR: a loud warning, exit 0 --
#     the suite simply has not been written yet;
#   * test files present but nothing collected: a failure (exit 5) -- tests
#     that exist but do not run are a broken suite, not a passing one.
# Usage: tests/quality/pytest.sh DIR [pytest args...]. Environment: VENV.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
venv=${VENV:-$root/.venv}
[[ $venv = /* ]] || venv=$root/$venv
dir=${1:?usage: pytest.sh DIR [pytest args...]}
shift

cd "$root" || exit 2
if [[ ! -d $dir ]]; then
    # git does not keep empty directories, so a fresh clone may lack it.
    echo "WARNING: $dir does not exist; nothing was tested." >&2
    if [[ -n ${QUALITY_NOTES:-} ]]; then
        echo "$dir: no test files yet, nothing was tested" >>"$QUALITY_NOTES"
    fi
    exit 0
fi
# A JUnit report per suite: run-steps.sh adds them up for the closing line.
mkdir -p "$root/.build/junit"
"$venv/bin/pytest" "$dir" --junitxml="$root/.build/junit/$(basename "$dir").xml" "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
    if [[ -z $(find "$dir" -type f \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit 2>/dev/null) ]]; then
        echo "WARNING: $dir has no test files yet; nothing was tested (pytest exit 5 accepted)." >&2
        if [[ -n ${QUALITY_NOTES:-} ]]; then
            echo "$dir: no test files yet, nothing was tested" >>"$QUALITY_NOTES"
        fi
        exit 0
    fi
    echo "ERROR: $dir has test files but pytest collected no tests (exit 5)." >&2
fi
exit $rc
