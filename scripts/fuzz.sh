#!/usr/bin/env bash
# Long fuzzing runs: scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]
# Builds build-fuzz (clang, libFuzzer + ASan + UBSan), runs each target (all of
# tests/fuzz/fuzz_*.c by default) one after the other under nice, keeping the
# inputs it finds in build-fuzz/tests/fuzz/work/<target>/new, and records one
# row per target in fuzz/REPORT.md, whose totals it recomputes. A crash input
# lands in build-fuzz/tests/fuzz/work/<target>/artifacts/: fix the parser,
# then copy the input to tests/fuzz/regress/<target>/ so the suite replays it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.c; do
    n="$(basename "$f" .c)"
    targets+=("${n#fuzz_}")
  done
fi
bash "$root/scripts/deps.sh"
dir="$root/build-fuzz"
cmake -S "$root" -B "$dir" -DCMAKE_C_COMPILER=clang -DKOKORO_FUZZ=ON -DKOKORO_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" --target kokoro_fuzz -j"${KOKORO_BUILD_JOBS:-2}" >/dev/null
report="$root/fuzz/REPORT.md"
mkdir -p "$root/fuzz"

# REPORT.md = fixed header, every row so far (date, target, seconds,
# executions, crashes, commit), then the totals per target.
record() { # row
  local rows
  rows="$( (grep -E '^\| [0-9]{4}-' "$report" 2>/dev/null || true; echo "$1") )"
  {
    echo "# Fuzzing report"
    echo
    echo "Written by \`scripts/fuzz.sh\`: one row per run of a target (libFuzzer + ASan + UBSan, one"
    echo "process under \`nice\`), then the totals per target. Crashes are fixed and their inputs kept in"
    echo "\`tests/fuzz/regress/<target>/\`."
    echo
    echo "| date (UTC) | target | seconds | executions | crashes | commit |"
    echo "|---|---|---|---|---|---|"
    echo "$rows"
    echo
    echo "## Totals"
    echo
    echo "| target | time fuzzed | executions | crashes |"
    echo "|---|---|---|---|"
    awk -F' *[|] *' '{ s[$3] += $4; e[$3] += $5; c[$3] += $6 }
      END { for (t in s) printf "| %s | %dh%02dm%02ds | %d | %d |\n", t, s[t] / 3600, s[t] % 3600 / 60, s[t] % 60, e[t], c[t] }' \
      <<<"$rows" | sort
  } >"$report.tmp"
  mv "$report.tmp" "$report"
}

status=0
for t in "${targets[@]}"; do
  bin="$dir/tests/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no target '$t'" >&2; exit 2; }
  work="$dir/tests/fuzz/work/$t"
  mkdir -p "$work/new" "$work/artifacts"
  dirs=()
  for d in "$root/tests/fuzz/regress/$t" "$root/tests/fuzz/corpus/$t"; do
    [ -d "$d" ] && dirs+=("$d")
  done
  log="$work/last.log"
  before="$(ls "$work/artifacts" | wc -l)"
  echo "== fuzz_$t: ${secs}s"
  rc=0
  start="$(date +%s)"
  # one process, stopped by the first crash (whose input is kept)
  ASAN_OPTIONS="detect_leaks=1" LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    nice -n 19 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/new" "${dirs[@]}" >"$log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n1 || true)"
  after="$(ls "$work/artifacts" | wc -l)"
  crashes=$((after - before))
  [ $rc -ne 0 ] && [ $crashes -eq 0 ] && crashes=1
  if [ $crashes -gt 0 ]; then
    status=1
    echo "fuzz_$t: CRASH, see $log and $work/artifacts/" >&2
    grep -E "ERROR|SUMMARY" "$log" | head -n 5 >&2 || true
  fi
  record "| $(date -u '+%Y-%m-%d %H:%M') | $t | $elapsed | ${execs:-0} | $crashes | $(git -C "$root" rev-parse --short HEAD) |"
  echo "fuzz_$t: ${execs:-0} executions in ${elapsed}s, $crashes crash(es)"
done
exit $status
