#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds examples/synth.c
# against it with pkg-config, linked shared and static; both must run.
set -euo pipefail
build="$1"; src="$2"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc="$(find "$prefix" -name kokoro.pc | head -n1)"
[ -n "$pc" ] || { echo "kokoro.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
[ -f "$prefix/include/kokoro.h" ] || { echo "kokoro.h was not installed"; exit 1; }
cc -std=c11 -Wall -Werror "$src/examples/synth.c" $(pkg-config --cflags --libs kokoro) -o "$prefix/synth-shared"
LD_LIBRARY_PATH="$(dirname "$(dirname "$pc")")" "$prefix/synth-shared" | tee "$prefix/out-shared"
cc -std=c11 -Wall -Werror "$src/examples/synth.c" -static-libgcc \
  $(pkg-config --cflags kokoro) "$(dirname "$(dirname "$pc")")/libkokoro.a" $(pkg-config --static --libs-only-l --libs-only-L kokoro | sed 's/-lkokoro//') \
  -o "$prefix/synth-static"
"$prefix/synth-static" | tee "$prefix/out-static"
grep -q "samples" "$prefix/out-shared"
cmp "$prefix/out-shared" "$prefix/out-static"
# the engine example: text to pieces and to a file, through the installed library
cc -std=c11 -Wall -Werror "$src/examples/speak.c" $(pkg-config --cflags --libs kokoro) -o "$prefix/speak"
LD_LIBRARY_PATH="$(dirname "$(dirname "$pc")")" "$prefix/speak" --test-weights "$src/tests/data/voices" \
  "Hello there. This example speaks through the engine API, in small pieces." "$prefix/speak.wav" | tee "$prefix/out-speak"
grep -q "pieces, .* samples, .* timed words; wrote" "$prefix/out-speak"
[ "$(grep -c '^piece ' "$prefix/out-speak")" -ge 2 ]
[ -s "$prefix/speak.wav" ]
echo "install + pkg-config: 2 passed, 0 failed"
