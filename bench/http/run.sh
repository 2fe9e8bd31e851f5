#!/usr/bin/env bash
# wrk on GET /health/live against jeweler-server and against the bare Beast
# hello server, in the same run, alternating rounds; prints requests/s of
# each and the ratio (target >= 90%).
#
#   bench/http/run.sh [BUILD_DIR] [DURATION_S] [CONNECTIONS] [THREADS] [ROUNDS]
#
# BUILD_DIR must hold src/app/jeweler-server and bench/http/http_hello_server
# (cmake --build BUILD_DIR --target jeweler-server http_hello_server).
# Needs wrk and redis-server. LOG_LEVEL (default info) is passed to the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
duration="${2:-10}"
conns="${3:-64}"
threads="${4:-1}"
rounds="${5:-3}"
build="$(realpath "$build")"
server_bin="$build/src/app/jeweler-server"
hello_bin="$build/bench/http/http_hello_server"
source "$(dirname "$0")/lib.sh"
start_redis
app_port="$(free_port)"
(cd "$work" && REDIS_URL="redis://127.0.0.1:$redis_port" PORT="$app_port" HTTP_THREADS="$threads" \
  LOG_LEVEL="${LOG_LEVEL:-info}" exec "$server_bin" >"$work/server.log" 2>&1) &
pids+=($!)
start_hello
wait_live "$app_port" "$hello_port"

rps() { # port -> requests/s
  wrk -t1 -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$1/health/live" >"$work/wrk.out"
  awk '/Requests\/sec/ {print $2}' "$work/wrk.out"
}
p99() { awk '$1=="99%" {print $2}' "$work/wrk.out"; }

echo "wrk -t1 -c$conns -d${duration}s GET /health/live, server threads=$threads, rounds=$rounds"
best_app=0
best_hello=0
for r in $(seq "$rounds"); do
  h="$(rps "$hello_port")"; hp="$(p99)"
  a="$(rps "$app_port")"; ap="$(p99)"
  printf 'round %d: hello %10.0f req/s (p99 %s)   jeweler-server %10.0f req/s (p99 %s)\n' "$r" "$h" "$hp" "$a" "$ap"
  best_hello="$(python3 -c "print(max($best_hello, $h))")"
  best_app="$(python3 -c "print(max($best_app, $a))")"
done
python3 - "$best_app" "$best_hello" <<'PY'
import sys
app, hello = float(sys.argv[1]), float(sys.argv[2])
print(f"best: jeweler-server {app:.0f} req/s, hello {hello:.0f} req/s, ratio {100*app/hello:.1f}% (target >= 90%)")
PY
