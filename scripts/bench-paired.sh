#!/bin/bash
# Paired A/B timing of two kokoro-bench binaries on a noisy 2-core host: both run at the same
# time, one pinned to each core (taskset), the cores swapped every round, so the host's slow
# and fast phases hit both alike (the same binary against itself this way: within ±1 %).
#
#   scripts/bench-paired.sh ROUNDS BIN_A BIN_B [STAGE_PATTERN]
#
# Environment: TOKENS (default 150), DTYPE (f32), THREADS per binary (1). Prints per round the
# real-time factor of each (fastest of 2 repeats), the --profile milliseconds of the stages whose
# names match STAGE_PATTERN (an extended regex; default the generator's resblock stages), and B/A.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 ROUNDS BIN_A BIN_B [STAGE_PATTERN]" >&2
    exit 2
fi
rounds=$1 a=$2 b=$3 pattern=${4:-4.8kHz|800Hz|noise convs}
tokens=${TOKENS:-150} dtype=${DTYPE:-f32} threads=${THREADS:-1}
case $rounds in '' | *[!0-9]*) echo "$0: ROUNDS must be a number, got '$rounds'" >&2; exit 2 ;; esac
for bin in "$a" "$b"; do
    [ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 2; }
done
command -v taskset >/dev/null || { echo "$0: needs taskset (util-linux)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

one() { # binary core log
    taskset -c "$2" "$1" --tokens "$tokens" --out "$tmp/$2.npz" --test-weights --no-noise \
        --threads "$threads" --repeat 2 --dtype "$dtype" --profile >"$3" 2>&1
}
rtf() { grep '^  long' "$1" | sed 's/.*RTF //'; }
stages() { grep -E "$pattern" "$1" | awk '{print $(NF-8)}' | tr '\n' ' '; }

for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then ca=0 cb=1; else ca=1 cb=0; fi
    one "$a" "$ca" "$tmp/a.log" &
    pid=$!
    one "$b" "$cb" "$tmp/b.log"
    wait "$pid"
    ra=$(rtf "$tmp/a.log") rb=$(rtf "$tmp/b.log")
    echo "A $ra [$(stages "$tmp/a.log")]  B $rb [$(stages "$tmp/b.log")]  B/A $(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.3f", b / a }')"
done
