#!/usr/bin/env python3
"""Static checks of deploy/docker (the image itself is not built in CI):
the Dockerfile's final stage is Debian 12, runs as a non-root user, installs
no -dev package and has a health check; the compose file parses, runs
Redis 7 with a `redis-cli ping` health check and a volume, and starts
jeweler-server once Redis is healthy.

usage: check_docker.py deploy/docker
"""
import os
import re
import sys

import yaml


def main(d):
    problems = []
    text = open(os.path.join(d, "Dockerfile"), encoding="utf-8").read()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    if len(stages) < 2:
        problems.append("Dockerfile: expected a build stage and a runtime stage")
    final = stages[-1]
    if not re.match(r"debian:12", final):
        problems.append("Dockerfile: the final stage is not Debian 12")
    if re.search(r"\b[a-z0-9.+-]+-dev\b", final):
        problems.append("Dockerfile: a -dev package in the final stage")
    users = re.findall(r"(?m)^USER\s+(\S+)", final)
    if not users or users[-1] in ("root", "0"):
        problems.append("Dockerfile: the final stage does not switch to a non-root USER")
    if "HEALTHCHECK" not in final:
        problems.append("Dockerfile: no HEALTHCHECK")
    compose = yaml.safe_load(open(os.path.join(d, "compose.yaml"), encoding="utf-8"))
    services = compose.get("services", {})
    redis = services.get("redis", {})
    if not str(redis.get("image", "")).rsplit(":", 1)[-1].startswith("7"):
        problems.append("compose: redis is not Redis 7")
    if "redis-cli" not in " ".join(map(str, redis.get("healthcheck", {}).get("test", []))):
        problems.append("compose: redis has no redis-cli ping health check")
    if not redis.get("volumes"):
        problems.append("compose: redis has no volume")
    server = services.get("jeweler-server", {})
    dep = server.get("depends_on", {})
    if not isinstance(dep, dict) or dep.get("redis", {}).get("condition") != "service_healthy":
        problems.append("compose: jeweler-server does not wait for a healthy Redis")
    if "REDIS_URL" not in server.get("environment", {}):
        problems.append("compose: jeweler-server has no REDIS_URL")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("deploy/docker: ok (static checks; the image is not built here)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
