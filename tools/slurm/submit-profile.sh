#!/usr/bin/env bash
# Submits a sink profile to Slurm as a job array of shards plus a merge that runs when every shard
# succeeded (docs/scale-out.md).
#
# Usage:
#   tools/slurm/submit-profile.sh --out DIR --shards N [options] -- [sinkscope-cli profile options]
#   tools/slurm/submit-profile.sh --out DIR --resume [options]
# Example:
#   tools/slurm/submit-profile.sh --out /shared/sweep1 --shards 20 --cpus 2 --cli /shared/bin/sinkscope-cli \
#     -- --model /shared/models/SmolLM2-135M-Instruct.pt --model /shared/models/gemma-3-270m.pt \
#        --data natural,random,repeated --samples 1000 --tokens 64 --seed 1
#
# Options (environment variable in brackets):
#   --out DIR          shared folder every node can write [SINKSCOPE_OUT]; shards go to DIR/shard-K,
#                      the merged profile to DIR/merged
#   --shards N         array tasks, each a contiguous range of samples of every model and data set
#                      [SINKSCOPE_SHARDS]
#   --cli PATH         sinkscope-cli as the nodes see it [SINKSCOPE_CLI; default: the one on PATH]
#   --cpus N           CPUs per task; the CLI's threads follow [SINKSCOPE_CPUS; default 2]
#   --format LIST      the merge's figures (png,svg,pdf) [default: png]
#   --no-figures       the merge writes no figures
#   --sbatch-arg ARG   passed to both sbatch calls (repeat: --sbatch-arg=--partition=cpu --sbatch-arg=--time=4:00:00)
#   --resume           submit again only the shards of DIR without a finished DIR/shard-K (same settings,
#                      read from DIR/submit.args), then the merge
#   --wait             wait for the merge job and exit with its exit code (sbatch --wait)
#   -h, --help
# Everything after `--` goes to `sinkscope-cli profile` unchanged, except --shard, --out, --format and
# --no-figures, which this script sets. Prints the array's and the merge's job ids.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "submit-profile.sh: $*" >&2; exit 2; }

out="${SINKSCOPE_OUT:-}"
shards="${SINKSCOPE_SHARDS:-}"
cli="${SINKSCOPE_CLI:-}"
cpus="${SINKSCOPE_CPUS:-2}"
resume=0 wait=0
merge_opts=(--format png)
sbatch_args=()
profile_opts=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift ;;
    --out=*) out="${1#*=}" ;;
    --shards) shards="${2:?--shards needs a count}"; shift ;;
    --shards=*) shards="${1#*=}" ;;
    --cli) cli="${2:?--cli needs a path}"; shift ;;
    --cli=*) cli="${1#*=}" ;;
    --cpus) cpus="${2:?--cpus needs a count}"; shift ;;
    --cpus=*) cpus="${1#*=}" ;;
    --format) merge_opts=(--format "${2:?--format needs a list}"); shift ;;
    --format=*) merge_opts=(--format "${1#*=}") ;;
    --no-figures) merge_opts=(--no-figures) ;;
    --sbatch-arg) sbatch_args+=("${2:?--sbatch-arg needs a value}"); shift ;;
    --sbatch-arg=*) sbatch_args+=("${1#*=}") ;;
    --resume) resume=1 ;;
    --wait) wait=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; profile_opts=("$@"); break ;;
    *) die "unknown option '$1' (sinkscope-cli profile options go after --; --help)" ;;
  esac
  shift
done

[ -n "$out" ] || die "--out DIR is required"
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "--cpus '$cpus' is not a positive count"
for o in "${profile_opts[@]}"; do
  case "$o" in
    --shard | --shard=* | --out | --out=* | --format | --format=* | --no-figures)
      die "'$o' is set by this script (shards: --shards; the merge's figures: --format / --no-figures)" ;;
  esac
done
if [ -z "$cli" ]; then
  cli="$(command -v sinkscope-cli || true)"
  [ -n "$cli" ] || die "no sinkscope-cli on PATH: give --cli PATH (as the compute nodes see it)"
fi
case "$cli" in /*) ;; *) cli="$(cd "$(dirname "$cli")" && pwd)/$(basename "$cli")" ;; esac
[ -x "$cli" ] || die "$cli is not executable"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# The settings of a sweep are written once; shards of different settings must never meet in a merge.
args_file="$out/submit.args"
if [ "$resume" -eq 1 ]; then
  [ -f "$args_file" ] || die "$args_file is missing: nothing to resume in $out"
  [ "${#profile_opts[@]}" -eq 0 ] || die "--resume takes the profile options from $args_file; give none after --"
  saved=()
  mapfile -d '' saved <"$args_file"
  [ -z "$shards" ] || [ "$shards" = "${saved[0]}" ] || die "--shards $shards differs from the sweep's ${saved[0]}"
  shards="${saved[0]}"
  profile_opts=("${saved[@]:1}")
else
  [ -n "$shards" ] || die "--shards N is required"
  [[ "$shards" =~ ^[1-9][0-9]*$ ]] || die "--shards '$shards' is not a positive count"
  [ "${#profile_opts[@]}" -gt 0 ] || die "no profile options after -- (at least --model and --data)"
  new="$(mktemp "$out/.submit.args.XXXXXX")"
  printf '%s\0' "$shards" "${profile_opts[@]}" >"$new"
  if [ -f "$args_file" ] && ! cmp -s "$new" "$args_file"; then
    rm -f "$new"
    die "$out holds a sweep with other settings ($args_file): use another --out, or --resume"
  fi
  mv "$new" "$args_file"
fi

todo=()
for ((k = 1; k <= shards; k++)); do
  if [ "$resume" -eq 0 ] || [ ! -f "$out/shard-$k/profile.json" ]; then
    todo+=("$k")
  fi
done

mkdir -p "$out/logs"
merge_deps=()
if [ "${#todo[@]}" -gt 0 ]; then
  array="$(IFS=,; echo "${todo[*]}")"
  if [ "${#todo[@]}" -eq "$shards" ]; then
    array="1-$shards"
  fi
  array_job="$(sbatch --parsable --array="$array" --cpus-per-task="$cpus" \
    --output="$out/logs/shard-%a.out" "${sbatch_args[@]}" \
    "$here/profile.sbatch" "$cli" "$out" "$shards" "${profile_opts[@]}")"
  array_job="${array_job%%;*}" # --parsable prints "id" or "id;cluster"
  echo "shards: job $array_job, array $array"
  merge_deps=(--dependency="afterok:$array_job" --kill-on-invalid-dep=yes)
else
  echo "shards: all $shards finished already"
fi

wait_opts=()
if [ "$wait" -eq 1 ]; then
  wait_opts=(--wait)
fi
merge_rc=0
merge_job="$(sbatch --parsable "${merge_deps[@]}" "${wait_opts[@]}" --cpus-per-task=2 \
  --output="$out/logs/merge.out" "${sbatch_args[@]}" \
  "$here/merge.sbatch" "$cli" "$out" "$shards" "${merge_opts[@]}")" || merge_rc=$?
merge_job="${merge_job%%;*}"
echo "merge: job ${merge_job:-?} -> $out/merged (logs: $out/logs)"
if [ "$wait" -eq 1 ] && [ "$merge_rc" -ne 0 ]; then
  echo "submit-profile.sh: the merge did not succeed (exit code $merge_rc; see $out/logs)" >&2
fi
exit "$merge_rc"
