#!/usr/bin/env bash
# usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR
set -euo pipefail
build="$1"
src="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/jeweler/redis/client.hpp"
cmake -S "$src" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_BUILD_TYPE=Release ${JEWELER_SANITIZED:+-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined} >/dev/null
cmake --build "$tmp/build" >/dev/null
out="$("$tmp/build/consumer" | head -n 1)"
echo "$out"
[[ "$out" == "consumer ok: redis://example.org:6390/2" ]]
