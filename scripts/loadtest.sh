#!/usr/bin/env bash
# Load test of kokoro-server with wrk on loopback, bounded in time.
# usage: scripts/loadtest.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
# Starts a server with the test weights and the repo's test voices, then runs
#   1. GET /health                       (the HTTP layer alone)
#   2. POST /v1/audio/speech, pcm, one short sentence (synthesis)
# each for SECONDS with CONNECTIONS concurrent clients, and prints wrk's
# latency distribution (p50/p90/p99) and the non-2xx count (must be 0).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
secs="${2:-10}"
conns="${3:-8}"
workers="${KOKORO_WORKERS:-2}"
command -v wrk >/dev/null || { echo "loadtest: wrk is missing (apt-get install wrk)" >&2; exit 1; }

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$build/kokoro-server" --test-weights --voices "$root/tests/data/voices" --port 0 --data-dir "$tmp/data" \
  --workers "$workers" --job-workers 0 >"$tmp/out" 2>"$tmp/err" &
server_pid=$!
for _ in $(seq 1 600); do
  grep -q "listening" "$tmp/out" 2>/dev/null && break
  sleep 0.1
done
url="$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/out")" || { cat "$tmp/err" >&2; exit 1; }

# wrk counts non-2xx answers; make any of them fail this script
cat >"$tmp/speech.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"kokoro","input":"Hello world.","voice":"af_heart","response_format":"pcm","stream":false}'
bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, %d requests, %d errors\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout))
end
EOF
sed -e '/^wrk\./d' "$tmp/speech.lua" >"$tmp/get.lua"

echo "== GET /health: $conns connections, ${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s --latency -s "$tmp/get.lua" "$url/health" | tee "$tmp/health.txt"
echo "== POST /v1/audio/speech (pcm, 'Hello world.'): $conns connections, ${secs}s, $workers workers"
wrk -t2 -c"$conns" -d"${secs}s" --timeout 120s --latency -s "$tmp/speech.lua" "$url/v1/audio/speech" | tee "$tmp/speech.txt"
if grep -q "Non-2xx" "$tmp/health.txt" "$tmp/speech.txt" || grep -q "Socket errors" "$tmp/health.txt" "$tmp/speech.txt"; then
  echo "loadtest: errors (see above)" >&2
  exit 1
fi
echo "loadtest: zero errors"
