#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang, ASan + UBSan; docs/reliability.md, "Fuzzing") and
# runs each for a bounded time on a copy of its seed corpus (tests/fuzz/corpus; the committed corpus is
# never written). First every input that once crashed a target (tests/fuzz/regressions/<target>) is
# replayed. Prints the executions per target; exit 1 on any crash, leak, UB, timeout or OOM, naming the
# input that caused it (kept under build-fuzz/fuzz-artifacts/<target>/).
# Usage: tools/fuzz.sh [--seconds-per-target N] [TARGET...]   (default 30 s each, every target)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
seconds=30
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds-per-target) seconds="$2"; shift 2 ;;
    --seconds-per-target=*) seconds="${1#*=}"; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is not installed (tools/setup.sh installs clang)" >&2; exit 1; }
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
build="$repo/build-fuzz"
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < "$build/fuzz_targets.txt"

# The longest input worth trying: whole small files for the binary formats, lines for the lists.
max_len() {
  case "$1" in
    gguf|tokenizer_gguf|safetensors|tokenizer_json|tokenizer_archive) echo 16384 ;;
    dequant) echo 4096 ;;
    tokenizer_roundtrip) echo 1024 ;;
    mitigation|cli_lists) echo 256 ;;
    *) echo 8192 ;;
  esac
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
work="$build/fuzz-work"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/bin/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no target fuzz_$t" >&2; exit 2; }
  artifacts="$build/fuzz-artifacts/$t"
  rm -rf "${work:?}/$t" "$artifacts"
  mkdir -p "$work/$t" "$artifacts"
  regressions=("$repo/tests/fuzz/regressions/$t"/*)
  if [ -e "${regressions[0]}" ]; then
    log "$t: replaying ${#regressions[@]} regression inputs"
    if ! "$bin" -artifact_prefix="$artifacts/" "${regressions[@]}" > "$artifacts/replay.log" 2>&1; then
      tail -30 "$artifacts/replay.log" >&2
      failed+=("$t (a regression input crashes again: $artifacts/replay.log)")
      summary+=("$(printf '%-20s %12s' "$t" "regression")")
      continue
    fi
  fi
  cp -r "$repo/tests/fuzz/corpus/$t/." "$work/$t/"
  log "$t: ${seconds}s, inputs up to $(max_len "$t") bytes"
  rc=0
  "$bin" "$work/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" > "$artifacts/run.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$artifacts/run.log" | tail -1)
  summary+=("$(printf '%-20s %12s' "$t" "${execs:-?}")")
  if [ "$rc" -ne 0 ]; then
    tail -40 "$artifacts/run.log" >&2
    failed+=("$t (exit $rc; input: $(ls "$artifacts" | grep -v '\.log$' | head -1))")
  fi
done

log "executions per target (${seconds}s each):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  echo "inputs under $build/fuzz-artifacts/; once fixed, add each to tests/fuzz/regressions/<target>/" >&2
  exit 1
fi
log "no crash in ${#targets[@]} targets"
