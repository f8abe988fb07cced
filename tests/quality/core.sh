#!/usr/bin/env bash
# The tests on a second ansible-core: 2.21, which needs Python >= 3.12 (the main virtualenv
# .venv is ansible-core 2.19 on Python 3.11). When no such interpreter is on the machine,
# a note says so and nothing fails: the issue asks for 2.21 "when a Python 3.12 is present".
#
# A virtualenv of its own, .venv-2.21, with only what the modules and the tests need
# (requirements.txt, tests/quality/requirements-tests.txt, ansible-core 2.21); then the unit
# tests and the integration files in CORE_TESTS (default: the AWX jobs - the built artifact,
# the whole migrate runbook, a backup to S3 - and the health playbook), in two processes. CORE_TESTS=tests/integration runs every integration test.
# Usage: tests/quality/core.sh [2.21] [--prepare]
#   --prepare: only make the virtualenv (`make test` starts this in the background first, so the
#   install overlaps the other steps; the run itself then waits for it on a lock).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
core=${1:-2.21}
prepare_only=${2:-}
venv=$root/.venv-$core
tests=${CORE_TESTS:-tests/integration/test_awx_job.py tests/integration/test_health_playbook.py}
# By default the failed job's rollback is left to the full run (CORE_TESTS=tests/integration), for time.
select=()
[[ -n ${CORE_TESTS:-} ]] || select=(-k "not rolled_back")
cd "$root" || exit 2

note() {
    echo "core-$core: $*" >&2
    [[ -z ${QUALITY_NOTES:-} ]] || echo "ansible-core $core: $*" >>"$QUALITY_NOTES"
}

python=""
# On PATH, or installed by pyenv beside the global version (its shims then refuse to run it).
pyenv_root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
for candidate in python3.12 python3.13 python3.14 "$pyenv_root"/versions/3.1[2-9]*/bin/python3; do
    found=$(command -v "$candidate" 2>/dev/null) || continue
    # a pyenv shim answers for versions that are not installed: ask the interpreter itself
    if "$found" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        python=$found
        break
    fi
done
if [[ -z $python ]]; then
    [[ -n $prepare_only ]] || note "no Python >= 3.12 on this machine; not tested"
    exit 0
fi

mkdir -p "$root/.build"
exec 9>"$root/.build/core-$core.lock"
flock 9

# the set installed differs with CORE_TESTS: a stamp for each
stamp=$venv/.pgops-requirements${CORE_TESTS:+-all}.stamp
requirements=(requirements.txt tests/quality/requirements-tests.txt)
# every integration test: the molecule scenarios and the built collection's tests need their tools too
[[ -z ${CORE_TESTS:-} ]] || requirements+=(tests/quality/requirements-roles.txt)
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    echo "core-$core: creating $venv with $("$python" --version 2>&1)"
    rm -rf "$venv"
    "$python" -m venv "$venv" || exit 2
fi
if [[ ! -e $stamp ]] || [[ -n $(find "${requirements[@]}" -newer "$stamp" 2>/dev/null) ]]; then
    echo "core-$core: installing ansible-core $core and ${requirements[*]}"
    "$venv/bin/python" -m pip install -qq "ansible-core>=$core,<${core%.*}.$(( ${core#*.} + 1 ))" \
        "${requirements[@]/#/-r}" || exit 2
    touch "$stamp"
fi
flock -u 9
[[ -z $prepare_only ]] || exit 0
"$venv/bin/ansible" --version | sed -n 1p

mkdir -p "$root/.build/junit"
# shellcheck disable=SC2086  # CORE_TESTS is a list of paths
"$venv/bin/pytest" tests/unit -q --junitxml="$root/.build/junit/core-$core-unit.xml" \
    && "$venv/bin/pytest" $tests "${select[@]}" -n 2 --dist loadgroup -q --junitxml="$root/.build/junit/core-$core-integration.xml"
