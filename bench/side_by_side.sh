#!/usr/bin/env bash
# SinkScope side by side with Hugging Face transformers (docs/performance.md, "Side by side with Hugging Face transformers").
# Makes (or reuses) the reference venv at ${REFENV:-/work/refenv} from tools/requirements-reference.txt and
# runs bench/side_by_side.py in it with this script's arguments, e.g.
#   bench/side_by_side.sh --tokens 256,1024 --threads default,1 --out /tmp/sbs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REFENV="${REFENV:-/work/refenv}"
if ! "$REFENV/bin/python" -c 'import transformers, gguf, torch' >/dev/null 2>&1; then
    echo "side_by_side.sh: making the reference venv at $REFENV (torch, transformers, gguf; a few minutes)" >&2
    python3 -m venv "$REFENV"
    "$REFENV/bin/pip" install -q -r "$root/tools/requirements-reference.txt" safetensors sentencepiece protobuf
fi
exec "$REFENV/bin/python" "$root/bench/side_by_side.py" "$@"
