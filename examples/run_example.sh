#!/usr/bin/env bash
# usage: run_example.sh EXAMPLE_BINARY
# Starts a private redis-server on a unix socket in a temp dir (no TCP port,
# nothing shared with other tests), runs the example with REDIS_URL set to
# the socket path, and stops the server.
set -euo pipefail
bin="$1"
tmp="$(mktemp -d)"
redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 --dir "$tmp" \
  --save "" --appendonly no --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
cleanup() {
  [[ -f "$tmp/redis.pid" ]] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do
  [[ -S "$tmp/redis.sock" ]] && redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1 && break
  sleep 0.1
done
# A bare socket path is a valid REDIS_URL (as redis-cli -s takes it).
REDIS_URL="$tmp/redis.sock" "$bin"
