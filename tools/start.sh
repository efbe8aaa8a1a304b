#!/usr/bin/env bash
# The main job: set everything up, then open the SinkScope window on the default model.
# Without a display it runs under Xvfb and saves a screenshot (docs use the same route).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/tools/setup.sh"
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$repo/build/bin/sinkscope" "$@"
fi
echo "[start] no display: running the window under Xvfb for 15 s and saving build/sinkscope-screenshot.png"
xvfb-run -a -s "-screen 0 1600x1000x24" bash -c '
  "$0/build/bin/sinkscope" "${@}" & pid=$!
  sleep 15
  import -window root "$0/build/sinkscope-screenshot.png" || true
  kill $pid 2>/dev/null || true' "$repo" "$@"
echo "[start] screenshot: $repo/build/sinkscope-screenshot.png"
