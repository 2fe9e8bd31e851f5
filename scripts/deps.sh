#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs, only when one is missing.
# Safe to run repeatedly; needs root (or sudo) the first time.
#
#   scripts/deps.sh           # build + test dependencies (scripts/run.sh, scripts/test.sh, CI;
#                             # clang-15 + libfuzzer-15-dev for scripts/fuzz.sh, which CI runs)
#   scripts/deps.sh --bench   # also the HTTP benchmark tools (wrk, python3 for bench/http/*.sh)
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git curl clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl libsodium-dev libsqlite3-dev
  chromium chromium-driver python3-selenium  # the web console's browser test (tests/console)
  libspdlog-dev libfmt-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server redis-tools
  prometheus python3 python3-yaml
  clang-15 libfuzzer-15-dev
)
case "${1:-}" in
  "") ;;
  --bench) PKGS+=(wrk python3) ;;
  *) echo "usage: scripts/deps.sh [--bench]" >&2; exit 2 ;;
esac
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
