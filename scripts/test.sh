#!/usr/bin/env bash
# The whole test suite: a Release build, then an ASan+UBSan build, each run
# with CTest. Exits non-zero if either fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${KOKORO_TEST_JOBS:-1}"

bash "$root/scripts/build.sh" build
echo "== Release build: tests"
release=0
ctest --test-dir "$root/build" --output-on-failure -j"$jobs" || release=$?

CMAKE_BUILD_TYPE=RelWithDebInfo bash "$root/scripts/build.sh" build-asan -DKOKORO_SANITIZE=ON
echo "== ASan+UBSan build: tests"
asan=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs" || asan=$?

echo "== summary: release $([ $release -eq 0 ] && echo passed || echo FAILED), asan+ubsan $([ $asan -eq 0 ] && echo passed || echo FAILED)"
[ $release -eq 0 ] && [ $asan -eq 0 ]
