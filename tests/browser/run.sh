#!/usr/bin/env bash
# Browser tests of the web UI: installs playwright-core from npm into
# tests/browser/node_modules (pinned by package-lock.json) when missing, then
# drives Debian's chromium headless against a fresh kokoro-server.
# usage: tests/browser/run.sh [BUILD_DIR]   (default: build)
# The last line is CTest-style: "N% tests passed, M tests failed out of K".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "browser tests: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  echo "0% tests passed, 1 tests failed out of 1"
  exit 1
fi
if [ ! -x "${KOKORO_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "browser tests: ${KOKORO_CHROMIUM:-/usr/bin/chromium} not found (Debian: apt-get install chromium)" >&2
  echo "0% tests passed, 1 tests failed out of 1"
  exit 1
fi
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
exec node "$here/ui.test.mjs" "$build"
