# Shared by bench/http/run.sh and bench/http/api-bench.sh (sourced, not run):
# a temp dir and background processes cleaned up on exit, free ports, a
# private redis-server, the hello server, waiting for /health/live.
# Expects: server_bin, hello_bin, threads.

for b in "$server_bin" "$hello_bin"; do
  [[ -x "$b" ]] || { echo "missing $b: build the targets jeweler-server http_hello_server" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is not installed (scripts/deps.sh --bench)" >&2; exit 2; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Sets redis_port: a redis-server without persistence in $work.
start_redis() {
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

# Sets hello_port: the bare Beast server with $threads threads.
start_hello() {
  hello_port="$(free_port)"
  "$hello_bin" "$hello_port" "$threads" >"$work/hello.log" 2>&1 &
  pids+=($!)
}

# Waits (up to 60 s: demo data takes seconds) until every port given answers
# GET /health/live; exits with the server log otherwise.
wait_live() {
  for port in "$@"; do
    for _ in $(seq 1200); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.05; done
    curl -sf "http://127.0.0.1:$port/health/live" >/dev/null ||
      { echo "server on $port did not start" >&2; cat "$work/server.log" >&2; exit 1; }
  done
}
