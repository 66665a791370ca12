#!/usr/bin/env bash
# Runs brief's whole test suite on a fresh Debian machine: installs the real servers, verifiers and
# the browser the tests talk to (Postfix's smtp-sink, Python's dkimpy, SpamAssassin, Dovecot,
# headless Chromium), then
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

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
