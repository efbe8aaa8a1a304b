#!/usr/bin/env bash
# Screenshots of the main views for the README: runs the window under Xvfb on the default model (or
# the model given as $1), lets it run the default prompt, and saves docs/screenshots/*.png.
#   tools/screenshots.sh [MODEL.pt] [BUILD_DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-}"
build="${2:-$repo/build}"
out="$repo/docs/screenshots"
mkdir -p "$out"
command -v xvfb-run >/dev/null || { echo "xvfb-run not found (apt-get install xvfb)" >&2; exit 1; }
[ -x "$build/bin/sinkscope" ] || { echo "$build/bin/sinkscope not built" >&2; exit 1; }
# A fixed screen and font DPI so that the pictures do not depend on the machine.
# 1600 x 1000: the normal views are taken at 1400 x 900, presenter mode at 1600 x 1000 (a projector).
timeout 300 xvfb-run -a -s "-screen 0 1600x1000x24 -dpi 96" \
  "$build/bin/sinkscope" ${model:+"$model"} --screenshots "$out"
ls -1 "$out"/*.png
