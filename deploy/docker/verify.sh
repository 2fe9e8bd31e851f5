#!/usr/bin/env bash
# Verifies deploy/docker/ without an image registry: builds a Debian 12 base
# image with debootstrap from the Debian mirror, imports it into podman as
# debian:12 and debian:12-slim, builds the jeweler-server image, then runs
# Redis (from the same Debian base: no docker.io/library/redis) and the server
# in one pod and waits for both health checks.
#
#   sudo deploy/docker/verify.sh          (needs: debootstrap podman; ~2 GB, network to deb.debian.org)
#
# NOT RUN in this repository yet (see deploy/README.md): treat as a recipe.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v debootstrap >/dev/null && command -v podman >/dev/null || {
  echo "needs debootstrap and podman (apt-get install debootstrap podman)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'podman pod rm -f jeweler-verify >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

if ! podman image exists localhost/debian:12; then
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian
  tar -C "$work/rootfs" -c . | podman import - localhost/debian:12
  podman tag localhost/debian:12 localhost/debian:12-slim
fi
# The Dockerfile names debian:12 / debian:12-slim: resolve them locally.
sed -e 's|^FROM debian:12 AS build|FROM localhost/debian:12 AS build|' \
    -e 's|^FROM debian:12-slim|FROM localhost/debian:12-slim|' \
    deploy/docker/Dockerfile >"$work/Dockerfile"
podman build -f "$work/Dockerfile" -t localhost/jeweler-server:verify .

# Redis 7 from Debian's redis-server package on the same base.
printf 'FROM localhost/debian:12-slim\nRUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*\nCMD ["redis-server","--appendonly","yes","--dir","/data","--protected-mode","no"]\n' \
  >"$work/Redis.Dockerfile"
podman build -f "$work/Redis.Dockerfile" -t localhost/jeweler-redis:verify "$work"

podman pod create --name jeweler-verify -p 127.0.0.1:18080:8080
podman volume create jeweler-verify-redis >/dev/null
podman run -d --pod jeweler-verify --name jeweler-verify-redis -v jeweler-verify-redis:/data \
  --health-cmd 'redis-cli ping' --health-interval 2s localhost/jeweler-redis:verify
for _ in $(seq 30); do podman healthcheck run jeweler-verify-redis >/dev/null 2>&1 && break; sleep 1; done
podman healthcheck run jeweler-verify-redis
podman run -d --pod jeweler-verify --name jeweler-verify-server \
  -e REDIS_URL=redis://127.0.0.1:6379/0 -e COOKIE_SECURE=false \
  localhost/jeweler-server:verify --demo-data
for _ in $(seq 60); do podman healthcheck run jeweler-verify-server >/dev/null 2>&1 && break; sleep 1; done
podman healthcheck run jeweler-verify-server
test "$(podman exec jeweler-verify-server id -u)" != 0
curl -fsS http://127.0.0.1:18080/health
echo
echo "deploy/docker verified: image built, Redis and jeweler-server healthy, server not root"
