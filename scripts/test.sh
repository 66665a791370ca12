#!/usr/bin/env bash
# Runs brief's whole test suite on a fresh Debian machine: installs the real servers and verifiers
# the tests talk to (Postfix's smtp-sink, Python's dkimpy), then formatting, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need=()
command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
/usr/bin/python3 -c 'import dkim' >/dev/null 2>&1 || need+=(python3-dkim)
install_debs "${need[@]}"
export PATH="$PATH:/usr/sbin"

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
