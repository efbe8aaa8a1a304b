#!/usr/bin/env bash
# Sets everything up and runs every test: the dev build (all suites) and the ASan/UBSan build (core
# and CLI suites). Usage: tools/test.sh [--no-asan]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
asan=1
[ "${1:-}" = "--no-asan" ] && asan=0

"$repo/tools/setup.sh"

echo "[test] dev build: all tests"
export QT_QPA_PLATFORM=offscreen
ctest --preset dev -j2

if [ "$asan" -eq 1 ]; then
  echo "[test] asan build: core and CLI tests"
  "$repo/tools/setup.sh" --preset asan
  ctest --preset asan -j2 --label-exclude slow
fi
