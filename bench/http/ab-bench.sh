#!/usr/bin/env bash
# A/B of two jeweler-server builds on the kpi load of ../shared/bench/http-bench.sh,
# alternating A and B so that the host's noise falls on both alike. Each run
# starts a private redis-server and the server (2 threads, --demo-data,
# limits 10^9 per 60 s: the sliding counter), loads GET /api/dashboard/kpi
# for DURATION_S seconds and prints req/s and the CPU time per request of
# jeweler-server and redis-server (/proc/PID/stat); then mean and best per
# build. docs/PERFORMANCE.md ("HTTP API") has a result.
#
#   bench/http/ab-bench.sh BUILD_A BUILD_B [ROUNDS] [DURATION_S] [SCENARIO]
set -euo pipefail
cd "$(dirname "$0")/../.."
a="$(realpath "${1:?usage: ab-bench.sh BUILD_A BUILD_B [ROUNDS] [DURATION_S] [SCENARIO]}")"
b="$(realpath "${2:?usage: ab-bench.sh BUILD_A BUILD_B [ROUNDS] [DURATION_S] [SCENARIO]}")"
rounds="${3:-5}"
duration="${4:-4}"
scenario="${5:-kpi}"
bench="$(realpath ../shared/bench/http-bench.sh 2>/dev/null || true)"
[[ -f "$bench" ]] || { echo "missing ../shared/bench/http-bench.sh" >&2; exit 2; }

one_run() { # build dir -> "rps server_us redis_us"
  local build="$1"
  (
    server_bin="$build/src/app/jeweler-server"
    hello_bin="$build/bench/http/http_hello_server"
    threads=2
    source bench/http/lib.sh
    start_redis
    local redis_pid="${pids[0]}" port
    port="$(free_port)"
    (cd "$work" && REDIS_URL="redis://127.0.0.1:$redis_port" PORT="$port" HTTP_THREADS=2 \
      RATE_LIMIT_MAX_REQUESTS=1000000000 RATE_LIMIT_TENANT_MAX=1000000000 \
      RATE_LIMIT_WINDOW_MS=60000 DATABASE_PATH="$work/j.db" \
      exec "$server_bin" --demo-data >"$work/server.log" 2>&1) &
    local server_pid=$!
    pids+=($server_pid)
    wait_live "$port"
    cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    requests() { # the server's own count of /api and /health requests
      curl -s "http://127.0.0.1:$port/metrics" |
        awk 'index($0, "jeweler_http_requests_total{") == 1 && (index($0, "/api/") || index($0, "/health/live")) {n += $NF} END {print n + 0}'
    }
    local s0 r0 q0 s1 r1 q1 out
    s0="$(cpu "$server_pid")"
    r0="$(cpu "$redis_pid")"
    q0="$(requests)"
    out="$(SCENARIOS="$scenario" DURATION="$duration" bash "$bench" "http://127.0.0.1:$port")"
    s1="$(cpu "$server_pid")"
    r1="$(cpu "$redis_pid")"
    q1="$(requests)"
    python3 - "$out" "$s0" "$s1" "$r0" "$r1" "$q0" "$q1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
out, s0, s1, r0, r1, q0, q1, hz = sys.argv[1:]
rps = float(re.search(r"rps=([0-9.]+)", out).group(1))
n = max(1.0, float(q1) - float(q0))
us = 1e6 / float(hz) / n
print(f"{rps:.0f} {(float(s1) - float(s0)) * us:.1f} {(float(r1) - float(r0)) * us:.1f}")
PY
  )
}

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for r in $(seq "$rounds"); do
  for which in A B; do
    build="$a"
    [[ "$which" == B ]] && build="$b"
    line="$(one_run "$build")"
    echo "round $r $which: req/s, server us/req, redis us/req = $line"
    echo "$which $line" >>"$results"
  done
done
awk '{n[$1]++; r[$1] += $2; s[$1] += $3; d[$1] += $4
      if (!($1 in br) || $2 > br[$1]) br[$1] = $2
      if (!($1 in bs) || $3 < bs[$1]) bs[$1] = $3}
     END {for (k in n) printf "%s: req/s mean %.0f best %.0f | server us/req mean %.1f best %.1f | redis us/req mean %.1f\n",
          k, r[k] / n[k], br[k], s[k] / n[k], bs[k], d[k] / n[k]}' "$results" | sort
