#!/usr/bin/env bash
# Checks that C++ files follow .clang-format (clang-format 14, Debian's clang-format package).
# Usage: tools/check-format.sh [--fix] [BASE]   with BASE (a commit), only the files changed since it;
# without, every tracked C++ file. Exit 1 lists the files that differ and how to fix them.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
fix=0
if [ "${1:-}" = "--fix" ]; then fix=1; shift; fi
if ! command -v clang-format >/dev/null; then
  echo "check-format.sh: clang-format is not installed (apt-get install clang-format)" >&2
  exit 1
fi
pattern='\.(cpp|h|cu|cuh)$'
if [ $# -gt 0 ]; then
  mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$1" -- | grep -E "$pattern" || true)
else
  mapfile -t files < <(git ls-files | grep -E "$pattern")
fi
[ ${#files[@]} -gt 0 ] || { echo "check-format: no C++ files to check"; exit 0; }
if [ "$fix" -eq 1 ]; then
  clang-format -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "fix with: tools/check-format.sh --fix${1:+ $1}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files follow .clang-format"
