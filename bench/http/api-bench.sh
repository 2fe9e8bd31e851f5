#!/usr/bin/env bash
# The platform API benchmark of docs/PERFORMANCE.md: ../shared/bench/http-bench.sh
# (login, then wrk on GET /api/dashboard/kpi, GET /api/auth/me, GET /health/live)
# against jeweler-server with demo data, and in the same run against the bare
# Beast hello server (live only: it has no API), alternating rounds. For each
# scenario it also reports, per request: the CPU time of jeweler-server and of
# redis-server (/proc/PID/stat), the Redis round trips the server made (its
# own jeweler_redis_command_duration_seconds counts: one per command or
# pipeline sent) and the EVALSHA calls Redis ran (INFO commandstats).
#
#   bench/http/api-bench.sh [BUILD_DIR] [DURATION_S] [CONNECTIONS] [SERVER_THREADS] [ROUNDS]
#
# Limits: by default http-bench.sh's own advice for load tests,
# RATE_LIMIT_MAX_REQUESTS=RATE_LIMIT_TENANT_MAX=10^9 (a limit above 10^6
# selects the sliding counter) with RATE_LIMIT_WINDOW_MS=60000. API_LIMIT=1000000
# API_WINDOW_MS=10000 keeps the exact sliding log (the production algorithm)
# while never refusing. Either way the api limiter runs its script on every
# request. LOG_LEVEL (default info: one access-log line per request) is
# passed to the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="$(realpath "${1:-build}")"
duration="${2:-10}"
conns="${3:-64}"
threads="${4:-2}"
rounds="${5:-2}"
api_limit="${API_LIMIT:-1000000000}"
api_window="${API_WINDOW_MS:-60000}"
bench="$(realpath ../shared/bench/http-bench.sh 2>/dev/null || true)"
[[ -x "$bench" || -f "$bench" ]] || { echo "missing ../shared/bench/http-bench.sh" >&2; exit 2; }
server_bin="$build/src/app/jeweler-server"
hello_bin="$build/bench/http/http_hello_server"
source "$(dirname "$0")/lib.sh"
start_redis
redis_pid="${pids[0]}"
app_port="$(free_port)"
(cd "$work" && REDIS_URL="redis://127.0.0.1:$redis_port" PORT="$app_port" HTTP_THREADS="$threads" \
  RATE_LIMIT_MAX_REQUESTS="$api_limit" RATE_LIMIT_TENANT_MAX="$api_limit" RATE_LIMIT_WINDOW_MS="$api_window" \
  DATABASE_PATH="$work/var/jeweler.db" LOG_LEVEL="${LOG_LEVEL:-info}" \
  exec "$server_bin" --demo-data >"$work/server.log" 2>&1) &
server_pid=$!
pids+=($server_pid)
start_hello
wait_live "$app_port" "$hello_port"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, in clock ticks
evalsha() { redis-cli -p "$redis_port" info commandstats | awk -F'[=,:]' '/^cmdstat_evalsha:/ {print $3}'; }
metric_sum() { # prometheus name prefix, label filter -> sum of values
  curl -s "http://127.0.0.1:$app_port/metrics" |
    awk -v m="$1" -v f="$2" 'index($0, m) == 1 && index($0, f) {n += $NF} END {print n+0}'
}
route_of() { case "$1" in kpi) echo /api/dashboard/kpi ;; me) echo /api/auth/me ;; live) echo /health/live ;; esac; }
snapshot() { # scenario -> "requests round_trips evalsha server_ticks redis_ticks"
  echo "$(metric_sum 'jeweler_http_requests_total{' "route=\"$(route_of "$1")\"")" \
    "$(metric_sum jeweler_redis_command_duration_seconds_count '')" "$(evalsha)" \
    "$(cpu_ticks "$server_pid")" "$(cpu_ticks "$redis_pid")"
}

echo "server threads=$threads, wrk: $conns connections, ${duration}s per scenario, $rounds rounds," \
  "LOG_LEVEL=${LOG_LEVEL:-info}, api limit $api_limit per ${api_window} ms"
for r in $(seq "$rounds"); do
  echo "--- round $r"
  SCENARIOS=live DURATION="$duration" CONNECTIONS="$conns" bash "$bench" "http://127.0.0.1:$hello_port" |
    sed 's/^/hello  /'
  for s in kpi me live; do
    before="$(snapshot "$s")"
    SCENARIOS="$s" DURATION="$duration" CONNECTIONS="$conns" bash "$bench" "http://127.0.0.1:$app_port" |
      sed 's/^/jeweler /' | tr -d '\n'
    after="$(snapshot "$s")"
    python3 - "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import sys
b, a, hz = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()], float(sys.argv[3])
q = a[0] - b[0]
if q > 0:
    us = 1e6 / hz / q
    print(f"  round_trips/req={(a[1]-b[1])/q:.2f} evalsha/req={(a[2]-b[2])/q:.2f}"
          f" server_cpu_us/req={(a[3]-b[3])*us:.1f} redis_cpu_us/req={(a[4]-b[4])*us:.1f}")
else:
    print()
PY
  done
done
echo "--- Redis commandstats of the run (usec_per_call includes the commands scripts ran)"
redis-cli -p "$redis_port" info commandstats | grep -E "evalsha|cmdstat_get:" || true
