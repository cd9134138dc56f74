#!/usr/bin/env bash
# The whole test suite: a Release build, then an ASan+UBSan build, each run
# with CTest; then the fuzz stage (clang build-fuzz: every libFuzzer target
# over its seeds and regressions, then KOKORO_FUZZ_SECONDS, default 30, of
# fuzzing each, as CTest tests); then valgrind memcheck over the parsers'
# tests (scripts/valgrind.sh) and over whole kokoro-tts jobs
# (scripts/valgrind-e2e.sh). CTest runs KOKORO_TEST_JOBS tests at a time (default:
# the cores). Ends with one line "tests: N passed, M failed"
# over all of them and exits non-zero if anything failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${KOKORO_TEST_JOBS:-$(nproc)}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
# wall time of each stage (its build included), printed before the summary:
# CI has 90 minutes on 2 cores
times=""
t0=$SECONDS
stage_done() { times="$times $1 $((SECONDS - t0)) s,"; t0=$SECONDS; }

run_suite() { # name build-dir [env...]
  local name="$1" dir="$2"
  shift 2
  echo "== $name: tests"
  local rc=0
  env "$@" ctest --test-dir "$dir" --output-on-failure -j"$jobs" 2>&1 | tee "$logs/$name.log" || rc=$?
  grep -q "tests passed" "$logs/$name.log" || rc=1
  return $rc
}

bash "$root/scripts/build.sh" build
release=0
run_suite release "$root/build" || release=$?
stage_done release

CMAKE_BUILD_TYPE=RelWithDebInfo bash "$root/scripts/build.sh" build-asan -DKOKORO_SANITIZE=ON
asan=0
run_suite asan "$root/build-asan" \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 || asan=$?
stage_done asan+ubsan

# the web UI in headless chromium against the Release build (same summary line)
echo "== browser: tests"
browser=0
bash "$root/tests/browser/run.sh" "$root/build" 2>&1 | tee "$logs/browser.log" || browser=$?
stage_done browser

# libFuzzer needs clang; the library is built once more with coverage
fdir="$root/build-fuzz"
cmake -S "$root" -B "$fdir" -DCMAKE_C_COMPILER=clang -DKOKORO_FUZZ=ON -DKOKORO_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKOKORO_FUZZ_SECONDS="${KOKORO_FUZZ_SECONDS:-30}" >/dev/null
cmake --build "$fdir" --target kokoro_fuzz -j"$(nproc)"
fuzz=0
run_suite fuzz "$fdir" || fuzz=$?
stage_done fuzz

echo "== valgrind: parser tests"
vg=0
bash "$root/scripts/valgrind.sh" "$root/build" 2>&1 | tee "$logs/valgrind.txt" || vg=$?
echo "== valgrind: kokoro-tts end to end"
bash "$root/scripts/valgrind-e2e.sh" "$root/build" 2>&1 | tee "$logs/valgrind-e2e.txt" || vg=$?
stage_done valgrind

# totals from CTest's own summaries ("100% tests passed, 0 tests failed out of 5")
passed=0 failed=0
for f in "$logs"/*.log; do
  line="$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$f" | tail -n1 || true)"
  if [ -z "$line" ]; then failed=$((failed + 1)); continue; fi
  nf="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")"
  nt="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")"
  passed=$((passed + nt - nf))
  failed=$((failed + nf))
done
# and from valgrind.sh's "valgrind: N clean, M failed" (valgrind-e2e: the same)
for v in valgrind valgrind-e2e; do
  vline="$(grep -E "^$v: [0-9]+ clean, [0-9]+ failed" "$logs/$v.txt" | tail -n1 || true)"
  if [ -z "$vline" ]; then
    failed=$((failed + 1))
  else
    passed=$((passed + $(sed -E 's/^[a-z0-9-]+: ([0-9]+) clean.*/\1/' <<<"$vline")))
    failed=$((failed + $(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$vline")))
  fi
done
word() { [ "$1" -eq 0 ] && echo passed || echo FAILED; }
echo "release $(word $release), asan+ubsan $(word $asan), browser $(word $browser), fuzz $(word $fuzz), valgrind $(word $vg)"
echo "time:${times%,}; total $SECONDS s"
echo "tests: $passed passed, $failed failed"
[ $release -eq 0 ] && [ $asan -eq 0 ] && [ $browser -eq 0 ] && [ $fuzz -eq 0 ] && [ $vg -eq 0 ] && [ $failed -eq 0 ]
