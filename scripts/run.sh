#!/usr/bin/env bash
# Quick start: installs what is missing (Debian 12, as root or with sudo),
# builds jeweler-server (Release) and runs it with the demo data of API.md
# section 8, listening on http://127.0.0.1:8080.
#
#   scripts/run.sh [jeweler-server arguments...]
#
# Environment (all optional; see README.md "Configuration" for the rest):
#   HOST, PORT          listen address (default 127.0.0.1, 8080)
#   COOKIE_SECURE       default false here: a local run has no TLS, so the
#                       session cookie must not be marked Secure or a browser
#                       would not send it back over plain http://. Never set it
#                       to false behind real users; put TLS in front instead.
#   JEWELER_BUILD_DIR   build directory (default build)
#   REDIS_*             a Redis to use. With none configured and nothing
#                       answering on localhost:6379, the server starts its own
#                       redis-server with its data under ./var/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

build="${JEWELER_BUILD_DIR:-build}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
echo "=== configure ${build} (Release)" >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
echo "=== build jeweler-server" >&2
cmake --build "$build" --target jeweler-server

export HOST="${HOST:-127.0.0.1}"
export PORT="${PORT:-8080}"
export COOKIE_SECURE="${COOKIE_SECURE:-false}"

url_host="$HOST"
[[ "$url_host" == *:* ]] && url_host="[$url_host]"  # IPv6 literal in a URL
base="http://${url_host}:${PORT}"
[[ "$PORT" == 0 ]] && base="http://${url_host}:PORT (PORT=0: see the start-up line for the port)"

cat >&2 <<EOF

=== jeweler-server on ${base}, demo data (API.md section 8), COOKIE_SECURE=${COOKIE_SECURE}
    (no TLS locally: the sid cookie is sent without the Secure flag; use TLS
    and COOKIE_SECURE=true anywhere else)

Web console: open ${base}/ in a browser and sign in as owner@aurum.example /
aurum-owner-pw (demo admin of tenant "aurum"; README.md lists the other users).

Or log in with curl:

  curl -s -X POST ${base}/api/auth/login -H 'Content-Type: application/json' \\
    -d '{"email":"owner@aurum.example","password":"aurum-owner-pw"}'

Then send the "token" of the answer as a Bearer token:

  TOKEN=\$(curl -s -X POST ${base}/api/auth/login -H 'Content-Type: application/json' \\
    -d '{"email":"owner@aurum.example","password":"aurum-owner-pw"}' | sed -E 's/.*"token":"([^"]+)".*/\\1/')
  curl -s ${base}/api/auth/me -H "Authorization: Bearer \$TOKEN"
  curl -s -i ${base}/api/dashboard/kpi -H "Authorization: Bearer \$TOKEN"

Health: curl -s ${base}/health    Metrics: curl -s ${base}/metrics
Stop with Ctrl-C (graceful shutdown; the embedded redis-server, if any, stops too).

EOF

exec "$build/src/app/jeweler-server" --demo-data "$@"
