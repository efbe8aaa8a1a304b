#!/usr/bin/env bash
# Runs clang-tidy (Debian's clang-tidy, 14) with the checks in .clang-tidy on the core's sources.
# Usage: tools/tidy.sh [BUILD_DIR] [FILE...]   default build/ (configured by tools/setup.sh) and every
# core/src file that does not include LibTorch: clang 14 cannot parse LibTorch 1.13's headers against
# GCC 12's C++20 library (IValue is incomplete where std::vector<IValue> is destroyed), so the files
# that include them are left to the compiler's warnings and the sanitizer build. Exit 1 on any finding.
# The compile database is filtered: the LibTorch PCH force-include is dropped (those files need none).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
build="${1:-build}"
[ $# -gt 0 ] && shift
db="$build/compile_commands.json"
if [ ! -f "$db" ]; then
  echo "tidy.sh: $db is missing: configure first (tools/setup.sh or cmake --preset dev)" >&2
  exit 1
fi
command -v clang-tidy >/dev/null || { echo "tidy.sh: clang-tidy is not installed (apt-get install clang-tidy)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$db" "$tmp/compile_commands.json" <<'PY'
import json, re, sys
src, dst = sys.argv[1:3]
out = []
for entry in json.load(open(src)):
    cmd = re.sub(r"-Winvalid-pch\s+", "", entry["command"])
    cmd = re.sub(r"-include \S*cmake_pch\.hxx", "", cmd)
    out.append(dict(entry, command=cmd))
json.dump(out, open(dst, "w"))
PY
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files 'core/src/*.cpp' | xargs grep -L -E \
    '<(torch|ATen|c10)/|"(torch_util|torch_pch|model/layer_tensors|analysis/metrics_internal|analysis/streaming_layer)\.h"')
fi
status=0
for f in "${files[@]}"; do
  if ! clang-tidy --quiet -p "$tmp" "$f" 2>/dev/null; then
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "tidy: ${#files[@]} files clean" || echo "tidy: findings above" >&2
exit "$status"
