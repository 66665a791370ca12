#!/usr/bin/env bash
# Remakes the screenshots in docs/ from the browser tests, so they show the console as it is:
# runs the console's browser test in headless Chromium (installed when missing, as for the tests),
# which saves its screenshots under target/console-screenshots/, and copies the ones the docs
# show into docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
install_debs "${need[@]}"

shots="target/console-screenshots"   # where the test saves them, whatever CARGO_TARGET_DIR says
rm -rf "$shots"
cargo test --test it browser::a_staff_member_uses_the_console_in_a_browser
[ -f "$shots/dashboard-1280.png" ] || { echo "error: the browser test saved no dashboard-1280.png in $shots" >&2; exit 1; }
cp "$shots/dashboard-1280.png" docs/console.png
echo "docs/console.png: the dashboard at 1280 px, from $shots/dashboard-1280.png"
