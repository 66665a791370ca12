#!/usr/bin/env bash
# Remakes the pictures in docs/ from the faces harness, so they show brief as it is: runs
# tests/it/faces.rs in headless Chromium (installed when missing, as for the tests) with
# BRIEF_FACES=1, which saves every face at 375 and 1280 px, light and dark, under target/faces/
# (NAME-WIDTH-SCHEME.png), and copies the ones the docs show into docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
install_debs "${need[@]}"
AXE_VERSION=4.14.1
[ -f target/npm/node_modules/axe-core/axe.min.js ] \
  || npm install --prefix target/npm --no-save --no-audit --no-fund --loglevel=error "axe-core@$AXE_VERSION"

shots="target/faces"   # where the harness saves them, whatever CARGO_TARGET_DIR says
rm -rf "$shots"
BRIEF_FACES=1 cargo test --test it faces::every_face
for pair in dashboard-1280-light:console.png issue-mail-375-light:issue-phone-light.png \
            issue-mail-375-dark:issue-phone-dark.png; do
  face="${pair%%:*}" doc="${pair#*:}"
  [ -f "$shots/$face.png" ] || { echo "error: the harness saved no $face.png in $shots" >&2; exit 1; }
  cp "$shots/$face.png" "docs/$doc"
  echo "docs/$doc: from $shots/$face.png"
done
