#!/usr/bin/env bash
# usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR
# Installs the build into a temporary prefix and builds programs against it:
# through find_package(jeweler COMPONENTS ...) (only the components asked
# for, and only their dependencies, are looked for), and through pkg-config.
set -euo pipefail
build="$1"
src="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/jeweler/redis/client.hpp"
test -f "$tmp/prefix/include/jeweler/redis/log.hpp"
san=${JEWELER_SANITIZED:+-fsanitize=address,undefined}

# 1. CMake, COMPONENTS redis (the project checks nothing else was loaded),
#    then the services.
cmake -S "$src" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_BUILD_TYPE=Release -DCONSUMER_SERVICES=ON ${san:+-DCMAKE_CXX_FLAGS=$san} >/dev/null
cmake --build "$tmp/build" >/dev/null
out="$("$tmp/build/consumer" | head -n 1)"
echo "$out"
[[ "$out" == "consumer ok: redis://example.org:6390/2" ]]
out="$("$tmp/build/consumer_services" | head -n 1)"
echo "$out"
[[ "$out" == "services ok: 100 1 1" ]]

# 2. An unknown component is refused with a message naming it.
mkdir -p "$tmp/bad"
cat >"$tmp/bad/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(bad LANGUAGES CXX)
find_package(jeweler 0.1 REQUIRED COMPONENTS redis nosuchthing)
CMAKE
if cmake -S "$tmp/bad" -B "$tmp/bad/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/bad.log" 2>&1; then
  echo "an unknown component was accepted" >&2
  exit 1
fi
grep -q "nosuchthing" "$tmp/bad.log"
echo "unknown component refused"

# 3. pkg-config (static libraries: --static).
pcdir="$(dirname "$(find "$tmp/prefix" -name jeweler-redis.pc | head -n 1)")"
test -f "$pcdir/jeweler.pc"
export PKG_CONFIG_PATH="$pcdir"
pkg-config --exists --print-errors "jeweler-redis >= 0.1"
# shellcheck disable=SC2046
c++ -std=c++20 $san -o "$tmp/consumer_pc" "$src/main.cpp" \
  $(pkg-config --static --cflags --libs jeweler-redis)
out="$("$tmp/consumer_pc" | head -n 1)"
echo "pkg-config: $out"
[[ "$out" == "consumer ok: redis://example.org:6390/2" ]]
# The Redis client alone does not pull in SQLite or libsodium.
! pkg-config --static --libs jeweler-redis | grep -Eq 'sqlite|sodium'
pkg-config --static --libs jeweler-session | grep -q sodium
echo "consumer test ok"
