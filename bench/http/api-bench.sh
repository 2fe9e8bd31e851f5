#!/usr/bin/env bash
# The platform API benchmark of docs/PERFORMANCE.md: ../shared/bench/http-bench.sh
# (login, then wrk on GET /api/dashboard/kpi, GET /api/auth/me, GET /health/live)
# against jeweler-server with demo data, and in the same run against the bare
# Beast hello server (live only: it has no API), alternating rounds. Also
# counts Redis commands per authenticated request (INFO commandstats delta /
# jeweler_http_requests_total delta) for each scenario.
#
#   bench/http/api-bench.sh [BUILD_DIR] [DURATION_S] [CONNECTIONS] [SERVER_THREADS] [ROUNDS]
#
# Rate limits are raised (10^6 per 10 s, the most a sliding log allows) so the
# run measures throughput, not 429s; the api
# limiter still runs its sliding-window script on every request. LOG_LEVEL
# (default info: one access-log line per request) is passed to the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
build="$(realpath "${1:-build}")"
duration="${2:-10}"
conns="${3:-64}"
threads="${4:-2}"
rounds="${5:-2}"
bench="$(realpath ../shared/bench/http-bench.sh 2>/dev/null || true)"
[[ -x "$bench" || -f "$bench" ]] || { echo "missing ../shared/bench/http-bench.sh" >&2; exit 2; }
server_bin="$build/src/app/jeweler-server"
hello_bin="$build/bench/http/http_hello_server"
source "$(dirname "$0")/lib.sh"
start_redis
app_port="$(free_port)"
(cd "$work" && REDIS_URL="redis://127.0.0.1:$redis_port" PORT="$app_port" HTTP_THREADS="$threads" \
  RATE_LIMIT_MAX_REQUESTS=1000000 RATE_LIMIT_TENANT_MAX=1000000 RATE_LIMIT_WINDOW_MS=10000 \
  DATABASE_PATH="$work/var/jeweler.db" LOG_LEVEL="${LOG_LEVEL:-info}" \
  exec "$server_bin" --demo-data >"$work/server.log" 2>&1) &
pids+=($!)
start_hello
wait_live "$app_port" "$hello_port"

# Commands sent by clients (EVALSHA, GET, ...), not those the scripts run inside.
commands() {
  redis-cli -p "$redis_port" info commandstats |
    awk -F'[=,:]' '/^cmdstat_(evalsha|evalsha_ro|eval|get|mget|set|del|unlink|scan|exists|pttl|ping|incrby|hello|client|select|script)[:|]/ {n += $3} END {print n+0}'
}
requests() { # route -> jeweler_http_requests_total summed over methods/statuses
  curl -s "http://127.0.0.1:$app_port/metrics" |
    awk -v r="route=\"$1\"" 'index($0, "jeweler_http_requests_total{") == 1 && index($0, r) {n += $NF} END {print n+0}'
}

echo "server threads=$threads, wrk: $conns connections, ${duration}s per scenario, $rounds rounds, LOG_LEVEL=${LOG_LEVEL:-info}"
for r in $(seq "$rounds"); do
  echo "--- round $r"
  SCENARIOS=live DURATION="$duration" CONNECTIONS="$conns" bash "$bench" "http://127.0.0.1:$hello_port" |
    sed 's/^/hello  /'
  for s in kpi me live; do
    c0="$(commands)"; q0="$(requests "$(case $s in kpi) echo /api/dashboard/kpi;; me) echo /api/auth/me;; live) echo /health/live;; esac)")"
    SCENARIOS="$s" DURATION="$duration" CONNECTIONS="$conns" bash "$bench" "http://127.0.0.1:$app_port" |
      sed 's/^/jeweler /' | tr -d '\n'
    c1="$(commands)"; q1="$(requests "$(case $s in kpi) echo /api/dashboard/kpi;; me) echo /api/auth/me;; live) echo /health/live;; esac)")"
    python3 -c "q=$q1-$q0; c=$c1-$c0; print(f'  redis_commands_per_request={c/q:.2f}' if q else '')"
  done
done
echo "--- Redis commandstats of the run (usec_per_call includes the commands scripts ran)"
redis-cli -p "$redis_port" info commandstats | grep -E "evalsha|cmdstat_get:" || true
