#!/usr/bin/env bash
# Check the collection's documentation the way users and the docsite see it:
#   1. `ansible-doc pgops.runbook.<name>` for every module in plugins/modules
#      (and every other per-file plugin type, and every role that has
#      meta/argument_specs.yml); any error OR warning on stderr fails, since
#      ansible-doc exits 0 with only a warning for a plugin it cannot find;
#   2. `antsibull-docs lint-collection-docs --plugin-docs` (schema, markup and
#      reference checks of the plugin and role docs, RST generation, rstcheck).
# Needs the collection at .build/collections/ansible_collections/pgops/runbook
# (make collection-path). Environment: VENV (default .venv).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
venv=${VENV:-$root/.venv}
[[ $venv = /* ]] || venv=$root/$venv
collection=pgops.runbook
export PATH=$venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$root/.build/collections
# ansible-doc must not pick up collections from ~/.ansible or site-packages.
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_NOCOLOR=1

cd "$root" || exit 2
if [[ ! -d $ANSIBLE_COLLECTIONS_PATH/ansible_collections/pgops/runbook/plugins ]]; then
    echo "docs: $ANSIBLE_COLLECTIONS_PATH does not hold $collection; run make collection-path" >&2
    exit 2
fi

failures=0
checked=0
err=$(mktemp)
trap 'rm -f "$err"' EXIT

doc() {  # doc TYPE NAME
    checked=$((checked + 1))
    if ansible-doc -t "$1" "$collection.$2" >/dev/null 2>"$err" && [[ ! -s $err ]]; then
        printf '  ok    %-8s %s.%s\n' "$1" "$collection" "$2"
    else
        printf '  FAIL  %-8s %s.%s\n' "$1" "$collection" "$2"
        sed 's/^/        /' "$err"
        failures=$((failures + 1))
    fi
}

echo "docs: ansible-doc"
# plugins/<dir>:<ansible-doc type>, for the types that hold one plugin per file.
types=(
    modules:module become:become cache:cache callback:callback cliconf:cliconf
    connection:connection httpapi:httpapi inventory:inventory lookup:lookup
    netconf:netconf shell:shell strategy:strategy vars:vars
)
shopt -s nullglob
for entry in "${types[@]}"; do
    for file in plugins/"${entry%%:*}"/*.py; do
        name=$(basename "$file" .py)
        [[ $name = __init__ ]] && continue
        doc "${entry#*:}" "$name"
    done
done
# Filter and test plugins: several per file, so ask ansible-doc for the list.
for type in filter test; do
    [[ -d plugins/$type ]] || continue
    while read -r name; do
        [[ -n $name ]] && doc "$type" "${name#"$collection".}"
    done < <(ansible-doc -t "$type" -l "$collection" 2>/dev/null | awk '{print $1}')
done
for spec in roles/*/meta/argument_specs.y*ml; do
    doc role "$(basename "$(dirname "$(dirname "$spec")")")"
done
if [[ $checked -eq 0 ]]; then
    echo "  (no modules, plugins or role argument specs yet)"
fi

echo "docs: antsibull-docs lint-collection-docs --plugin-docs"
# References to this collection and to ansible.builtin are checked; references
# to other collections (not installed here) are accepted unchecked.
if antsibull-docs lint-collection-docs --plugin-docs \
        --validate-collection-refs dependent . >"$err" 2>&1; then
    echo "  ok"
else
    sed 's/^/  /' "$err"
    failures=$((failures + 1))
fi

if [[ $failures -ne 0 ]]; then
    echo "docs: $failures check(s) failed" >&2
    exit 1
fi
echo "docs: $checked ansible-doc page(s) and the antsibull-docs lint passed"
