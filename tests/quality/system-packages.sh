#!/usr/bin/env bash
# Programs the integration tests run for real, installed from Debian packages when
# missing (CI starts from a fresh machine; nothing left by hand survives).
# Each line: program package. Skipped entirely when everything is present.
# Programs are looked for on PATH and in /usr/sbin (pgbouncer lives there, and
# /usr/sbin is not on every user's PATH).
set -euo pipefail
needed=(
    "gpg gnupg"
    "zstd zstd"
    "lz4 lz4"
    "gzip gzip"
    "openssl openssl"
    "pgbouncer pgbouncer"
)
missing=()
for entry in "${needed[@]}"; do
    read -r program package <<<"$entry"
    command -v "$program" >/dev/null 2>&1 || [[ -x /usr/sbin/$program ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "ERROR: the integration tests need: ${missing[*]} (apt-get install them, as root)." >&2
    exit 1
fi
echo "system-packages: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
