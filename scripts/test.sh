#!/usr/bin/env bash
# The whole test suite: a Release build, then an ASan+UBSan build, each run
# with CTest. Ends with one line "tests: N passed, M failed" over both runs
# and exits non-zero if anything failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${KOKORO_TEST_JOBS:-1}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

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

CMAKE_BUILD_TYPE=RelWithDebInfo bash "$root/scripts/build.sh" build-asan -DKOKORO_SANITIZE=ON
asan=0
run_suite asan "$root/build-asan" \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 || asan=$?

# the web UI in headless chromium against the Release build (same summary line)
echo "== browser: tests"
browser=0
bash "$root/tests/browser/run.sh" "$root/build" 2>&1 | tee "$logs/browser.log" || browser=$?

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
echo "release $([ $release -eq 0 ] && echo passed || echo FAILED), asan+ubsan $([ $asan -eq 0 ] && echo passed || echo FAILED), browser $([ $browser -eq 0 ] && echo passed || echo FAILED)"
echo "tests: $passed passed, $failed failed"
[ $release -eq 0 ] && [ $asan -eq 0 ] && [ $browser -eq 0 ] && [ $failed -eq 0 ]
