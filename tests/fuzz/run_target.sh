#!/usr/bin/env bash
# One fuzz target, briefly: run_target.sh BINARY NAME SECONDS SRC_DIR WORK_DIR
# First every regression input and seed once (any crash fails), then SECONDS of
# fuzzing. New inputs go to WORK_DIR, never into the repository's corpus.
set -euo pipefail
bin="$1" name="$2" secs="$3" src="$4" work="$5"
out="$work/$name"
mkdir -p "$out/new" "$out/artifacts"
dirs=()
for d in "$src/regress/$name" "$src/corpus/$name"; do
  [ -d "$d" ] && dirs+=("$d")
done
opts=(-timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$out/artifacts/")
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$src/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# -runs=0 only executes the given corpora (regressions and seeds) and exits
echo "== $name: regressions and seeds"
"$bin" "${opts[@]}" -runs=0 "$out/new" "${dirs[@]}"
# A fixed seed (KOKORO_FUZZ_SEED, default 1) so that a red test suite can be
# replayed; scripts/fuzz.sh does the long runs with fresh seeds.
echo "== $name: fuzzing ${secs}s, seed ${KOKORO_FUZZ_SEED:-1}"
"$bin" "${opts[@]}" -seed="${KOKORO_FUZZ_SEED:-1}" -max_total_time="$secs" "$out/new" "${dirs[@]}"
