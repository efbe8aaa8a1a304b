#!/usr/bin/env bash
# One command for a GPU machine (docs/gpu.md): builds core + CUDA kernels + kernel tests + kernel bench
# against the LibTorch inside python3's torch package (UI off), runs the parity tests (kernel_tests) and
# the kernel benchmark, and writes a markdown report to $OUT (or gpu-check-out/). Everything runs under
# one time budget (GPU_CHECK_BUDGET_S, default 470 s) with a timeout on every step, so it ends with a
# clear verdict instead of hanging. Without an NVIDIA GPU it stops at once with exit code 2.
#
#   tools/gpu-check.sh              # on the GPU machine, from anywhere inside the repository copy
#   tools/gpu-check.sh --bundle     # on a development machine: put GoogleTest and Google Benchmark sources
#                                   # and nlohmann_json's and CLI11's headers into .deps/gpu-src/ (ignored by
#                                   # git; carry it to the GPU machine)
#
# Needs: nvidia-smi, nvcc (PATH or /usr/local/cuda/bin), cmake >= 3.25, ninja, python3 with torch
# (else the system LibTorch). GoogleTest / Google Benchmark: installed CMake packages, or sources in
# $GTEST_SOURCE_DIR / $BENCHMARK_SOURCE_DIR, .deps/gpu-src/{googletest,benchmark} or /usr/src/googletest,
# built here into the build directory. Without Google Benchmark the benchmark is skipped, the tests still run.
# Environment: OUT, GPU_CHECK_BUDGET_S, GPU_CHECK_BUILD_DIR (default build-gpu), GPU_CHECK_BUILD_TYPE (Release), JOBS,
# GPU_CHECK_ALLOW_NO_GPU=1 (build and run anyway: the *_CUDA tests then skip; for dry runs).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

if [[ "${1:-}" == "--bundle" ]]; then
    dest=.deps/gpu-src
    mkdir -p "$dest"
    gtest=${GTEST_SOURCE_DIR:-/usr/src/googletest}
    if [[ -f "$gtest/CMakeLists.txt" ]]; then
        rm -rf "$dest/googletest" && cp -r "$gtest" "$dest/googletest" && echo "googletest: $gtest -> $dest/googletest"
    else
        echo "googletest: no sources at $gtest (apt-get install googletest, or set GTEST_SOURCE_DIR)"
    fi
    # Header-only packages the configure needs (nlohmann_json for the core, CLI11 for sinkscope::cli): the
    # installed headers and CMake files, copied as a prefix. bundle_headers NAME INCLUDE_DIR DEBIAN_PACKAGE
    bundle_headers() {
        local cmake include
        cmake=$(compgen -G "/usr/share/cmake/$1" || compgen -G "/usr/lib/cmake/$1" || compgen -G "/usr/lib/*/cmake/$1" | head -n 1)
        include=$(dirname "$(dirname "$(dirname "$cmake")")")/include/$2
        if [[ -n "$cmake" && -d "$include" ]]; then
            rm -rf "${dest:?}/$1" && mkdir -p "$dest/$1/include" "$dest/$1/share/cmake" &&
                cp -r "$include" "$dest/$1/include/" && cp -r "$cmake" "$dest/$1/share/cmake/" &&
                echo "$1: $cmake -> $dest/$1"
        else
            echo "$1: not installed here (apt-get install $3)"
        fi
    }
    bundle_headers nlohmann_json nlohmann nlohmann-json3-dev
    bundle_headers CLI11 CLI libcli11-dev
    if [[ -n "${BENCHMARK_SOURCE_DIR:-}" && -f "$BENCHMARK_SOURCE_DIR/CMakeLists.txt" ]]; then
        rm -rf "$dest/benchmark" && cp -r "$BENCHMARK_SOURCE_DIR" "$dest/benchmark"
        echo "benchmark: $BENCHMARK_SOURCE_DIR -> $dest/benchmark"
    elif [[ -n "${BENCHMARK_GIT_DIR:-}" ]]; then
        # A clone of google/benchmark: the sources of one tag, nothing else.
        rm -rf "$dest/benchmark" && mkdir -p "$dest/benchmark"
        git -C "$BENCHMARK_GIT_DIR" archive "${BENCHMARK_TAG:-v1.9.5}" src include cmake tools CMakeLists.txt LICENSE |
            tar -x -C "$dest/benchmark" && echo "benchmark: $BENCHMARK_GIT_DIR ${BENCHMARK_TAG:-v1.9.5} -> $dest/benchmark"
    else
        echo "benchmark: set BENCHMARK_SOURCE_DIR (a source tree) or BENCHMARK_GIT_DIR (a clone) to bundle it"
    fi
    du -sh "$dest"
    echo "carry '$dest' to the GPU machine (the device tool's carry list), then run tools/gpu-check.sh there"
    exit 0
fi

START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-470}
OUTDIR=${OUT:-$ROOT/gpu-check-out}
BUILD=${GPU_CHECK_BUILD_DIR:-$ROOT/build-gpu}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUTDIR" || exit 1
REPORT=$OUTDIR/gpu-check.md
LOG=$OUTDIR/gpu-check.log
: >"$LOG"

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(elapsed))); }
note() { echo "gpu-check: $*" | tee -a "$LOG" >&2; }
REPORT_BODY=""
add() { REPORT_BODY+="$*"$'\n'; }
write_report() {
    {
        echo "# GPU check"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(elapsed) s of a ${BUDGET} s budget. Verdict: **$1**"
        echo
        printf '%s' "$REPORT_BODY"
    } >"$REPORT"
    note "report: $REPORT"
}
fail() { # MESSAGE [EXIT_CODE]
    note "FAILED: $1"
    add ""
    add "**Failed:** $1"
    add ""
    add "Log tail:"
    add '```'
    add "$(tail -n 40 "$LOG")"
    add '```'
    write_report "FAILED"
    exit "${2:-1}"
}
# run_step NAME MAX_SECONDS command...: output to the log, killed at min(MAX, what is left - 15 s).
run_step() {
    local name=$1 max=$2
    shift 2
    local limit
    limit=$(left)
    limit=$((limit - 15))
    ((limit > max)) && limit=$max
    ((limit < 5)) && fail "$name: no time left in the ${BUDGET} s budget"
    note "$name (limit ${limit} s)"
    local t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    add "- $name: $(($(date +%s) - t0)) s (exit $rc)"
    return $rc
}

add "## Machine"
add ""
# 1. The GPU, first: without one there is nothing to check.
if ! command -v nvidia-smi >/dev/null 2>&1; then
    GPU_INFO=""
    why="nvidia-smi not found (no NVIDIA driver)"
else
    GPU_INFO=$(timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>&1)
    rc=$?
    why="nvidia-smi found no GPU (exit $rc: $(echo "$GPU_INFO" | head -n 1))"
    ((rc == 0)) && [[ -n "$GPU_INFO" ]] || GPU_INFO=""
fi
if [[ -z "$GPU_INFO" ]]; then
    if [[ "${GPU_CHECK_ALLOW_NO_GPU:-0}" != 1 ]]; then
        add "- GPU: none"
        fail "no NVIDIA GPU on this machine: $why. Run this on the GPU machine (docs/gpu.md)." 2
    fi
    note "no GPU ($why); GPU_CHECK_ALLOW_NO_GPU=1: building and running anyway, *_CUDA tests will skip"
    add "- GPU: none ($why); dry run with GPU_CHECK_ALLOW_NO_GPU=1"
else
    add "- GPU: $GPU_INFO"
fi
add "- CPU: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"

mkdir -p "$BUILD" || fail "cannot create $BUILD"

# 2. Tools.
NVCC=$(command -v nvcc || true)
[[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]] && NVCC=/usr/local/cuda/bin/nvcc
[[ -n "$NVCC" ]] || fail "nvcc not found (PATH or /usr/local/cuda/bin): install the CUDA Toolkit"
for tool in cmake ninja python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found"
done
add "- nvcc: $("$NVCC" --version | tail -n 2 | head -n 1)"
add "- cmake: $(cmake --version | head -n 1), ninja $(ninja --version)"

# 3. LibTorch from python3's torch package.
TORCH_PREFIX=""
LINKER_FLAGS=""
C10_FLAG=""
TORCH_TEXT=$(timeout 120 python3 -c 'import torch, torch.utils; print(torch.utils.cmake_prefix_path); print(torch.__version__, "CUDA", torch.version.cuda, "cuda available:", torch.cuda.is_available())' 2>>"$LOG")
if [[ $? -eq 0 && -n "$TORCH_TEXT" ]]; then
    TORCH_PREFIX=$(echo "$TORCH_TEXT" | head -n 1)
    # The torch package root too, so that find_library prefers its lib/ over any system LibTorch (a Debian
    # libc10.so would otherwise be mixed in); and the pip CUDA libraries (nvidia/*/lib) for the linker,
    # which must resolve libtorch_cuda.so's NCCL/cuBLAS dependencies against those, not system copies.
    TORCH_ROOT=$(dirname "$(dirname "$TORCH_PREFIX")")
    TORCH_PREFIX="$TORCH_PREFIX;$TORCH_ROOT"
    NV_LIBS=$(compgen -G "$(dirname "$TORCH_ROOT")/nvidia/*/lib" | tr '\n' ':')
    [[ -n "$NV_LIBS" ]] && LINKER_FLAGS="-Wl,-rpath-link,$NV_LIBS"
    [[ -f "$TORCH_ROOT/lib/libc10.so" ]] && C10_FLAG="-Dc10_LIBRARY=$TORCH_ROOT/lib/libc10.so"
    add "- PyTorch: $(echo "$TORCH_TEXT" | sed -n 2p) (LibTorch CMake files: $TORCH_PREFIX)"
else
    add "- PyTorch: not importable from python3; using the system LibTorch"
fi

# 4. GoogleTest and Google Benchmark: installed packages, or built here from sources.
DEPS=$BUILD/deps
PREFIXES="$TORCH_PREFIX"
have_package() {
    local d
    for d in /usr/lib/*/cmake /usr/lib/cmake /usr/local/lib*/cmake /usr/share/cmake /usr/local/share/cmake; do
        [[ -d "$d/$1" ]] && return 0
    done
    return 1
}
build_dep() { # NAME SOURCE_DIR extra cmake args...
    local name=$1 src=$2
    shift 2
    if [[ -f "$DEPS/$name.done" ]]; then
        return 0
    fi
    run_step "build $name from $src" 150 bash -c "cmake -G Ninja -S '$src' -B '$DEPS/build-$name' -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX='$DEPS/prefix' $* && cmake --build '$DEPS/build-$name' -j $JOBS && cmake --install '$DEPS/build-$name'" &&
        touch "$DEPS/$name.done"
}
first_dir() { for d in "$@"; do [[ -n "$d" && -f "$d/CMakeLists.txt" ]] && { echo "$d"; return; }; done; }
# A header-only package: installed, else the copy --bundle made. use_headers NAME WHO_NEEDS_IT
use_headers() {
    local prefix=$ROOT/.deps/gpu-src/$1
    if have_package "$1"; then
        add "- $1: installed package"
    elif [[ -f "$prefix/share/cmake/$1/$1Config.cmake" ]]; then
        PREFIXES="$PREFIXES;$prefix"
        add "- $1: bundled ($prefix)"
    else
        fail "no $1 ($2 needs it): install it, or bring it (tools/gpu-check.sh --bundle on a development machine)"
    fi
}
use_headers nlohmann_json "the core"
use_headers CLI11 "the CLI library, to configure"
GTEST_SRC=$(first_dir "${GTEST_SOURCE_DIR:-}" "$ROOT/.deps/gpu-src/googletest" /usr/src/googletest)
if have_package GTest; then
    add "- GoogleTest: installed package"
elif [[ -n "$GTEST_SRC" ]]; then
    build_dep googletest "$GTEST_SRC" -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON || fail "building GoogleTest from $GTEST_SRC"
    PREFIXES="$PREFIXES;$DEPS/prefix"
    add "- GoogleTest: built from $GTEST_SRC"
else
    fail "no GoogleTest: install it, or bring its sources (tools/gpu-check.sh --bundle on a development machine)"
fi
BENCH=ON
BENCH_SRC=$(first_dir "${BENCHMARK_SOURCE_DIR:-}" "$ROOT/.deps/gpu-src/benchmark")
if have_package benchmark; then
    add "- Google Benchmark: installed package"
elif [[ -n "$BENCH_SRC" ]]; then
    if build_dep benchmark "$BENCH_SRC" -DBENCHMARK_ENABLE_TESTING=OFF -DBENCHMARK_ENABLE_GTEST_TESTS=OFF -DBENCHMARK_ENABLE_WERROR=OFF -DBENCHMARK_INSTALL_DOCS=OFF; then
        PREFIXES="$PREFIXES;$DEPS/prefix"
        add "- Google Benchmark: built from $BENCH_SRC"
    else
        BENCH=OFF
        add "- Google Benchmark: building from $BENCH_SRC failed; benchmark skipped"
    fi
else
    BENCH=OFF
    add "- Google Benchmark: absent (no package, no sources); benchmark skipped, tests still run"
fi

# 5. Configure and build only what the check runs.
add ""
add "## Steps"
add ""
# A CUDA LibTorch probes the GPUs at configure time unless told the architectures (and that probe
# fails with CMake < 3.26 and C++20 CUDA): name them.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
run_step configure 150 cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE="${GPU_CHECK_BUILD_TYPE:-Release}" \
    -DSINKSCOPE_BUILD_GUI=OFF -DSINKSCOPE_BUILD_TESTS=ON -DSINKSCOPE_BUILD_BENCH=$BENCH \
    -DSINKSCOPE_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_PREFIX_PATH="$PREFIXES" \
    -DCMAKE_EXE_LINKER_FLAGS="$LINKER_FLAGS" $C10_FLAG ||
    fail "configure (see $LOG)"
TARGETS="kernel_tests"
[[ $BENCH == ON ]] && TARGETS="$TARGETS kernels_bench"
run_step "build $TARGETS" 330 ninja -C "$BUILD" -j "$JOBS" $TARGETS || fail "build (see $LOG)"

# 6. Parity tests.
add ""
add "## Parity tests (kernel_tests)"
add ""
TEST_OUT=$OUTDIR/kernel_tests.txt
run_step "kernel_tests" 200 bash -c "set -o pipefail; '$BUILD/bin/kernel_tests' --gtest_output=xml:'$OUTDIR/kernel_tests.xml' 2>&1 | tee '$TEST_OUT'"
TEST_RC=$?
passed=$(grep -c '^\[       OK \]' "$TEST_OUT" 2>/dev/null || true)
# Result lines carry a duration; gtest's closing summary repeats the names without one.
failed=$(grep -cE '^\[  FAILED  \] .*\([0-9]+ ms\)' "$TEST_OUT" 2>/dev/null || true)
skipped=$(grep -cE '^\[  SKIPPED \] .*\([0-9]+ ms\)' "$TEST_OUT" 2>/dev/null || true)
add "$passed passed, $failed failed, $skipped skipped (exit $TEST_RC)"
add ""
add '```'
add "$(grep -E '^\[ +(OK|FAILED|SKIPPED) +\] .*\([0-9]+ ms\)' "$TEST_OUT" | head -n 40)"
add '```'
VERDICT=PASSED
((TEST_RC != 0 || failed > 0)) && VERDICT="FAILED (parity tests)"
if [[ -n "$GPU_INFO" && $skipped -gt 0 ]]; then
    VERDICT="FAILED (GPU tests skipped on a GPU machine)"
fi

# 7. Benchmark.
add ""
add "## Kernel benchmark (kernels_bench)"
add ""
if [[ $BENCH == ON ]]; then
    BENCH_JSON=$OUTDIR/kernels_bench.json
    if run_step kernels_bench 150 "$BUILD/bin/kernels_bench" --benchmark_out="$BENCH_JSON" --benchmark_out_format=json \
        --benchmark_counters_tabular=true; then
        if [[ -s "$BENCH_JSON" ]]; then
            add "$(python3 - "$BENCH_JSON" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
by = {}
for r in runs:
    name, _, t = r["name"].partition("/")
    t = t.split("/")[0]
    by.setdefault(int(t), {})[name] = r
rate = next(iter(runs), {})
print("| T | kernel ms | LibTorch materialise ms | LibTorch / kernel | compute bound ms | memory bound ms | kernel / bound | kernel TFLOP/s |")
print("|---|---|---|---|---|---|---|---|")
for t in sorted(by):
    k = by[t].get("BM_StatsKernel", {})
    m = by[t].get("BM_TorchMaterialize", {})
    f = lambda r, key, fmt="{:.2f}": fmt.format(r[key]) if key in r else "n/a"
    ratio = "{:.1f}x".format(m["ms"] / k["ms"]) if "ms" in m and "ms" in k and k["ms"] > 0 else "n/a"
    print(f"| {t} | {f(k,'ms')} | {f(m,'ms')} | {ratio} | {f(k,'compute_bound_ms')} | {f(k,'memory_bound_ms',  '{:.3f}')} | {f(k,'x_bound')} | {f(k,'TFLOPs')} |")
if rate:
    print()
    print("Rates measured in the same run: fp32 {:.1f} TFLOP/s ({}), HBM {:.0f} GB/s (device-to-device copy).".format(
        rate.get("fp32_TFLOPs_rate", 0), "LibTorch mm, TF32 off" if rate.get("rate_measured") else "nominal SM x clock", rate.get("hbm_GBps", 0)))
PY
)"
        else
            add "kernels_bench wrote no results: $(tail -n 1 "$LOG")"
        fi
    else
        add "kernels_bench failed or timed out (see gpu-check.log)"
        [[ $VERDICT == PASSED ]] && VERDICT="PASSED (tests) / benchmark failed"
    fi
else
    add "skipped: no Google Benchmark"
fi
write_report "$VERDICT"
[[ $VERDICT == PASSED* ]] && exit 0 || exit 1
