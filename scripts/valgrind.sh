#!/usr/bin/env bash
# valgrind memcheck over the parsers' tests: scripts/valgrind.sh [BUILD_DIR] [TEST...]
# Uses an existing non-sanitized build (default build/, as scripts/test.sh makes
# it); valgrind is ~30x slower, so only the fast parser and front-end tests run by
# default (espeak-ng 1.51's harmless uninitialised tests are suppressed:
# tests/valgrind/espeak-ng-1.51.supp).
# Any error or leak (definite, indirect, possible) fails. Ends with one line
# "valgrind: N clean, M failed".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/build}"
shift || true
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(test_npz test_voices test_config test_limits test_text_regress test_text_phonemes test_text_chunk)
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (scripts/deps.sh)" >&2; exit 2; }
logs="$dir/valgrind"
mkdir -p "$logs"
clean=0 failed=0
for t in "${tests[@]}"; do
  bin="$dir/tests/$t"
  if [ ! -x "$bin" ]; then
    echo "valgrind.sh: $bin not built" >&2
    failed=$((failed + 1))
    continue
  fi
  log="$logs/$t.log"
  start=$(date +%s)
  rc=0
  # OpenBLAS would start a thread pool per core: one thread keeps valgrind fast
  OPENBLAS_NUM_THREADS=1 CMOCKA_MESSAGE_OUTPUT=stdout \
    valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --track-origins=yes \
    --suppressions="$root/tests/valgrind/espeak-ng-1.51.supp" \
    --log-file="$log" "$bin" >"$log.out" 2>&1 || rc=$?
  summary="$(grep -E "ERROR SUMMARY" "$log" | tail -n1 | sed 's/^==[0-9]*== //' || true)"
  leaks="$(grep -E "definitely lost|indirectly lost|possibly lost" "$log" | sed 's/^==[0-9]*== *//' | tr '\n' ' ' || true)"
  if [ $rc -eq 0 ]; then
    clean=$((clean + 1))
    echo "valgrind $t: clean ($(($(date +%s) - start)) s) $summary ${leaks:-no leaks possible}"
  else
    failed=$((failed + 1))
    echo "valgrind $t: FAILED (exit $rc) $summary $leaks; see $log and $log.out" >&2
  fi
done
echo "valgrind: $clean clean, $failed failed"
[ $failed -eq 0 ]
