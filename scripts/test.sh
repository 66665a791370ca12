#!/usr/bin/env bash
# Runs brief's whole test suite on a fresh Debian machine: installs the real servers, verifiers and
# the browser the tests talk to (Postfix's smtp-sink, Python's dkimpy, SpamAssassin, Dovecot,
# headless Chromium, and axe-core from npm), then
# formatting, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need=()
command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
/usr/bin/python3 -c 'import dkim' >/dev/null 2>&1 || need+=(python3-dkim)
# SpamAssassin scores the example message (tests/it/spam.rs).
command -v spamassassin >/dev/null 2>&1 || need+=(spamassassin)
# Headless Chromium and its WebDriver for the browser tests (tests/it/support/browser.rs).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# Dovecot serves the bounce mailbox over IMAP (tests/it/support/dovecot.rs: a private instance
# per test, on loopback).
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-core)
install_debs "${need[@]}"
export PATH="$PATH:/usr/sbin"

# axe-core, which the browser tests inject into every page and mail they open to look for
# accessibility faults (tests/it/support/browser.rs): a pinned version from the npm registry,
# kept under target/ (rebuilt when missing).
AXE_VERSION=4.14.1
if [ ! -f target/npm/node_modules/axe-core/axe.min.js ] \
  || ! grep -q "\"version\": \"$AXE_VERSION\"" target/npm/node_modules/axe-core/package.json; then
  command -v npm >/dev/null 2>&1 || install_debs npm
  npm install --prefix target/npm --no-save --no-audit --no-fund --loglevel=error \
    "axe-core@$AXE_VERSION"
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
