#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those that
# are missing. Safe to run again; fast when everything is there.
set -euo pipefail

PACKAGES=(
  build-essential
  cmake
  pkg-config
  libopenblas-dev
  libzip-dev
  zlib1g-dev
  libcjson-dev
  libcmocka-dev
  libcurl4-openssl-dev
  libsndfile1-dev
  libmp3lame-dev
  libavformat-dev
  libavcodec-dev
  libavutil-dev
  portaudio19-dev
  libasound2-dev
  libjack-jackd2-dev
  ffmpeg
  libespeak-ng-dev
  espeak-ng-data
  libutf8proc-dev
  libxml2-dev
  libpoppler-glib-dev
  libcairo2-dev
  libmicrohttpd-dev
  libsqlite3-dev
  wrk
  chromium
  nodejs
  clang
  libclang-rt-14-dev
  valgrind
)
# npm (browser tests): Debian's package, unless the Node.js present bundles it
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "deps.sh: missing packages (${missing[*]}) and not root, and sudo is not available" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
