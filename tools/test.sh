#!/usr/bin/env bash
# Sets everything up and runs every test: the format check, clang-tidy on the core, the dev build (all suites), the CUDA
# kernels build (whenever nvcc is present; its *_CUDA tests skip without a GPU), the ASan/UBSan
# build (core and CLI suites), the ThreadSanitizer build (the threaded core and UI tests) and the
# parsers' fuzz targets for 30 s each (tools/fuzz.sh).
# Usage: tools/test.sh [--no-asan] [--no-tsan] [--no-cuda] [--no-fuzz]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
asan=1
tsan=1
cuda=1
fuzz=1
for arg in "$@"; do
  case "$arg" in
    --no-asan) asan=0 ;;
    --no-tsan) tsan=0 ;;
    --no-cuda) cuda=0 ;;
    --no-fuzz) fuzz=0 ;;
    *) echo "test.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
stage() { printf '\033[1m[test]\033[0m %s (%ds in)\n' "$*" "$(( $(date +%s) - start ))"; }

"$repo/tools/setup.sh"

stage "format: every C++ file follows .clang-format"
"$repo/tools/check-format.sh"

stage "clang-tidy: the core's LibTorch-free sources (.clang-tidy)"
"$repo/tools/tidy.sh" build

# libFuzzer (clang, ASan + UBSan) on every parser of outside data, a bounded time each (about 6 minutes
# for 12 targets); replays the inputs that once crashed first (docs/reliability.md, "Fuzzing").
if [ "$fuzz" -eq 1 ]; then
  stage "fuzz: every parser target for 30 s (tools/fuzz.sh)"
  "$repo/tools/fuzz.sh" --seconds-per-target 30
fi

stage "dev build: all tests"
export QT_QPA_PLATFORM=offscreen
ctest --preset dev -j2

# The CUDA kernels compile and link wherever nvcc is (the CUDA Toolkit, not a GPU): build them and
# their tests so they cannot rot unseen. The CUDA Toolkit installs nvcc outside PATH.
nvcc_bin="$(command -v nvcc || true)"
[ -n "$nvcc_bin" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc; } || true
if [ "$cuda" -eq 1 ] && [ -n "$nvcc_bin" ]; then
  stage "cuda-kernels build: kernels and kernel_tests ($nvcc_bin)"
  cmake --preset cuda-kernels -DCMAKE_CUDA_COMPILER="$nvcc_bin" >/dev/null
  cmake --build --preset cuda-kernels
  ctest --preset cuda-kernels -j2
elif [ "$cuda" -eq 1 ]; then
  stage "cuda-kernels build skipped: no nvcc (install the CUDA Toolkit to build the kernels)"
fi

if [ "$asan" -eq 1 ]; then
  stage "asan build: core and CLI tests"
  "$repo/tools/setup.sh" --preset asan
  ctest --preset asan -j2 --label-exclude slow
fi

# ThreadSanitizer on the tests that run threads (the preset's filter, docs/reliability.md): the compute
# thread, the bridge, cancellation, superseded runs, device switches, long-prompt head maps, the pool.
# The preset sets TSAN_OPTIONS (halt_on_error, tools/tsan.supp); a report fails its test.
if [ "$tsan" -eq 1 ]; then
  stage "tsan build: the threaded core and UI tests"
  "$repo/tools/setup.sh" --preset tsan
  ctest --preset tsan -j2
fi
stage "all tests passed"
