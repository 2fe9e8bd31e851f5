#!/usr/bin/env bash
# Soak and chaos run (docs/RELIABILITY.md): a private redis-server and
# jeweler-server --demo-data, a mixed load for SECONDS (default 180) from
# scripts/soak_driver.py, while Redis is killed (-9) and restarted with its
# data, frozen (SIGSTOP) and thawed, then killed and restarted EMPTY.
# Prints one line per second (status counts, latency p50/p99/max, server RSS,
# the chaos events) and a summary; exits 1 if a request got no answer or a
# 5xx other than 503, or if the server died.
#
#   scripts/soak.sh [SECONDS]              # soak + chaos
#   scripts/soak.sh --outage [SECONDS]     # 503 latency while Redis is down
#                                          # (64 connections on /api/auth/me; wrk if installed)
#   scripts/soak.sh --freeze [SECONDS]     # how long after SIGSTOP of Redis /health and
#                                          # jeweler_redis_up say down: 8 trials idle, 8 under
#                                          # load (16 clients on /api/auth/me)
#
# Environment: JEWELER_SERVER (default build/src/app/jeweler-server),
# SOAK_WORKERS (16 clients), HTTP_THREADS (2).
set -euo pipefail

mode=soak
if [[ "${1:-}" == "--outage" || "${1:-}" == "--freeze" ]]; then
  mode="${1#--}"
  shift
fi
secs="${1:-180}"
[[ "$secs" =~ ^[0-9]+$ && "$secs" -ge 10 ]] || { echo "usage: scripts/soak.sh [--outage] [SECONDS>=10]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
server_bin="${JEWELER_SERVER:-$root/build/src/app/jeweler-server}"
workers="${SOAK_WORKERS:-16}"
threads="${HTTP_THREADS:-2}"
[[ -x "$server_bin" ]] || { echo "missing $server_bin: build the target jeweler-server" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is not installed (scripts/deps.sh)" >&2; exit 2; }

work="$(mktemp -d)"
pids=()
cleanup() {
  [[ -f "$work/redis.pid" ]] && pids+=("$(cat "$work/redis.pid")")  # restarted by the chaos job
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port="$(free_port)"
mkdir -p "$work/redis"
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --appendonly yes \
    --appendfsync everysec --save "" >>"$work/redis.log" 2>&1 &
  redis_pid=$!
  echo "$redis_pid" >"$work/redis.pid"
  pids+=("$redis_pid")
  for _ in $(seq 200); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
}
start_redis

http_port="$(free_port)"
env -i PATH="$PATH" HOME="${HOME:-/tmp}" HOST=127.0.0.1 PORT="$http_port" HTTP_THREADS="$threads" \
  REDIS_URL="redis://127.0.0.1:$redis_port" DATABASE_PATH="$work/jeweler.db" COOKIE_SECURE=false \
  LOG_LEVEL=warn RATE_LIMIT_MAX_REQUESTS=1000000 RATE_LIMIT_TENANT_MAX=10000000 \
  RATE_LIMIT_AUTH_MAX=1000000 SESSION_MAX_PER_USER=1000 \
  "$server_bin" --demo-data >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 1200); do curl -sf "http://127.0.0.1:$http_port/health/live" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$http_port/health/live" >/dev/null ||
  { echo "jeweler-server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
echo "jeweler-server $("$server_bin" --version 2>/dev/null | head -1) on :$http_port (pid $server_pid, $threads threads), redis-server on :$redis_port"

if [[ "$mode" == outage ]]; then
  token="$(curl -s -X POST "http://127.0.0.1:$http_port/api/auth/login" -A jeweler-soak/1.0 \
    -H 'Content-Type: application/json' -d '{"email":"clerk@aurum.example","password":"aurum-clerk-pw"}' |
    sed -E 's/.*"token":"([^"]+)".*/\1/')"
  kill -9 "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
  sleep 1
  echo "redis-server killed; $secs s of GET /api/auth/me on 64 connections"
  if command -v wrk >/dev/null; then
    wrk -t2 -c64 -d"${secs}s" --latency -H "Authorization: Bearer $token" -H "User-Agent: jeweler-soak/1.0" \
      "http://127.0.0.1:$http_port/api/auth/me"
  else
    python3 "$root/scripts/soak_driver.py" outage --port "$http_port" --seconds "$secs" --workers 64 \
      --pid "$server_pid" --token "$token" --target /api/auth/me || true
  fi
  echo "one more request: $(curl -s -o /dev/null -A jeweler-soak/1.0 -H "Authorization: Bearer $token" \
    -w '%{http_code} in %{time_total}s' "http://127.0.0.1:$http_port/api/auth/me")," \
    "Retry-After: $(curl -s -D - -o /dev/null -A jeweler-soak/1.0 -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$http_port/api/auth/me" | tr -d '\r' | sed -n 's/^[Rr]etry-[Aa]fter: //p')"
  kill -0 "$server_pid" || { echo "jeweler-server died" >&2; exit 1; }
  exit 0
fi

if [[ "$mode" == freeze ]]; then
  token="$(curl -s -X POST "http://127.0.0.1:$http_port/api/auth/login" -A jeweler-soak/1.0 \
    -H 'Content-Type: application/json' -d '{"email":"clerk@aurum.example","password":"aurum-clerk-pw"}' |
    sed -E 's/.*"token":"([^"]+)".*/\1/')"
  for load in idle loaded; do
    load_pid=
    if [[ "$load" == loaded ]]; then
      python3 "$root/scripts/soak_driver.py" outage --port "$http_port" --seconds 3600 --workers 16 \
        --token "$token" --target /api/auth/me >/dev/null 2>&1 &
      load_pid=$!
      sleep 1
    fi
    python3 - "$http_port" "$redis_pid" "$load" <<'PY'
import random, signal, os, sys, time, urllib.request, urllib.error
port, pid, load = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def status(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            body = r.read().decode()
            return r.status, body
    except urllib.error.HTTPError as e:
        return e.code, ""
def metric_up():
    _, body = status("/metrics")
    return "\njeweler_redis_up 1" in body
health_ms, metric_ms = [], []
for trial in range(8):
    while status("/health")[0] != 200 or not metric_up():
        time.sleep(0.05)
    time.sleep(random.uniform(0, 1.0))  # any phase of the 1 s health PING
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    h = m = None
    while h is None or m is None:
        now = (time.monotonic() - t0) * 1000
        if h is None and status("/health")[0] == 503: h = now
        if m is None and not metric_up(): m = now
        if now > 20000: break
        time.sleep(0.01)
    os.kill(pid, signal.SIGCONT)
    health_ms.append(h or -1); metric_ms.append(m or -1)
fmt = lambda v: " ".join(f"{x:.0f}" for x in v)
print(f"{load:7s} /health 503 after SIGSTOP (ms): {fmt(sorted(health_ms))}")
print(f"{load:7s} jeweler_redis_up 0 after SIGSTOP (ms): {fmt(sorted(metric_ms))}")
PY
    [[ -n "$load_pid" ]] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null || true
  done
  kill -0 "$server_pid" || { echo "jeweler-server died" >&2; exit 1; }
  exit 0
fi

# The chaos schedule, as fractions of the run.
events="$work/events"
: >"$events"
at() { python3 -c "print(int($secs * $1))"; }
chaos() {
  local t0=$SECONDS
  wait_until() { while ((SECONDS - t0 < $1)); do sleep 0.2; done; }
  note() { echo "$((SECONDS - t0)) $*" >>"$events"; }
  wait_until "$(at 0.15)"; kill -9 "$redis_pid"; note "redis kill -9"
  wait_until "$(at 0.22)"; start_redis; note "redis restarted with its data"
  wait_until "$(at 0.38)"; kill -STOP "$redis_pid"; note "redis SIGSTOP"
  wait_until "$(at 0.45)"; kill -CONT "$redis_pid"; note "redis SIGCONT"
  wait_until "$(at 0.60)"; kill -9 "$redis_pid"; rm -rf "$work/redis"/*; note "redis kill -9, data deleted"
  wait_until "$(at 0.67)"; start_redis; note "redis restarted EMPTY (sessions gone: 401, then new logins)"
}
chaos &
chaos_pid=$!
pids+=("$chaos_pid")

rc=0
python3 "$root/scripts/soak_driver.py" soak --port "$http_port" --seconds "$secs" --workers "$workers" \
  --pid "$server_pid" --events "$events" || rc=$?
wait "$chaos_pid" 2>/dev/null || true
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAIL: jeweler-server died" >&2
  tail -20 "$work/server.log" >&2
  exit 1
fi
echo "  server alive after the run; log lines at level error/critical: $(grep -c '"level":"\(error\|critical\)"' "$work/server.log" || true)"
if grep -q '"level":"\(error\|critical\)"' "$work/server.log"; then
  grep '"level":"\(error\|critical\)"' "$work/server.log" | sed -E 's/.*"msg":"([^"]{0,100}).*/    \1/' |
    sort | uniq -c | sort -rn | head -5
  cp "$work/server.log" "${TMPDIR:-/tmp}/jeweler-soak-server.log"
  echo "  server log kept in ${TMPDIR:-/tmp}/jeweler-soak-server.log"
fi
exit "$rc"
