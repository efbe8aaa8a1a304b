#!/usr/bin/env bash
# Installs SinkScope into a temporary prefix, moves the prefix, and runs the CLI and the window
# (offscreen) from the new place with an empty home: data must be found relative to the executables,
# the default model converted into $XDG_CACHE_HOME/sinkscope, and no source path left in the binaries.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1" src="$2"
work="$(mktemp -d "${TMPDIR:-/tmp}/sinkscope-install-XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() { echo "install_test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/first" --strip >/dev/null
mv "$work/first" "$work/moved"
p="$work/moved"

for f in bin/sinkscope-cli bin/sinkscope share/sinkscope/probes/default.json \
         share/sinkscope/papers/gu-table1.json share/sinkscope/papers/streamingllm-table1.json \
         share/sinkscope/papers/sun-massive.json share/sinkscope/lessons/01-what-is-a-sink.md \
         share/sinkscope/models/SmolLM2-135M-Instruct.Q4_1.gguf \
         share/applications/io.github.sinkscope.SinkScope.desktop \
         share/metainfo/io.github.sinkscope.SinkScope.metainfo.xml \
         share/icons/hicolor/scalable/apps/io.github.sinkscope.SinkScope.svg \
         share/icons/hicolor/256x256/apps/io.github.sinkscope.SinkScope.png \
         share/icons/hicolor/16x16/apps/io.github.sinkscope.SinkScope.png \
         share/man/man1/sinkscope-cli.1 share/man/man1/sinkscope.1; do
  [ -s "$p/$f" ] || fail "$f is not installed"
done
[ -z "$(find "$p" -type l)" ] || fail "the install holds links: $(find "$p" -type l | head -3)"
for b in "$p"/bin/*; do
  if grep -q -F -- "$src" "$b"; then fail "$b holds the source path $src"; fi
  if grep -q -F -- "$build" "$b"; then fail "$b holds the build path $build"; fi
done
grep -q '^\.SS compare' "$p/share/man/man1/sinkscope-cli.1" || fail "sinkscope-cli.1 lacks the compare command"
grep -q 'mask-sink' "$p/share/man/man1/sinkscope-cli.1" || fail "sinkscope-cli.1 lacks the mitigation methods"

# A user with an empty home runs the moved copy: nothing from the source or build tree is used.
home="$work/home"
mkdir -p "$home"
run() { env -i PATH=/usr/bin:/bin HOME="$home" XDG_CACHE_HOME="$home/.cache" QT_QPA_PLATFORM=offscreen "$@"; }
out="$(run "$p/bin/sinkscope-cli" info)" || fail "sinkscope-cli info failed from the moved prefix: $out"
echo "$out" | grep -q "SmolLM2" || fail "info does not describe the default model: $out"
[ -s "$home/.cache/sinkscope/models/SmolLM2-135M-Instruct.pt" ] || fail "the default model was not converted into \$XDG_CACHE_HOME/sinkscope/models"
out="$(run "$p/bin/sinkscope-cli" probe --limit 2)" || fail "sinkscope-cli probe (default probe set) failed: $out"
echo "$out" | grep -q -i "accuracy" || fail "probe printed no accuracy: $out"
out="$(run "$p/bin/sinkscope-cli" paper LIST)" || fail "sinkscope-cli paper LIST failed from the moved prefix: $out"
echo "$out" | grep -q "When Attention Sink Emerges" || fail "paper LIST did not read the installed tables: $out"
out="$(run "$p/bin/sinkscope-cli" lesson --list)" || fail "sinkscope-cli lesson --list failed from the moved prefix: $out"
echo "$out" | grep -q "what-is-a-sink" || fail "lesson --list did not read the installed course: $out"
run "$p/bin/sinkscope" --screenshots "$work/shots" --prompt "The capital of France is" >/dev/null 2>&1 ||
  fail "the window failed to start from the moved prefix"
ls "$work/shots"/*.png >/dev/null 2>&1 || fail "the window wrote no screenshots"
[ ! -e "$src/models" ] || echo "install_test: note: $src/models exists (left by an older SinkScope)" >&2
echo "install_test: installed, moved to $p, CLI and window ran from there"
