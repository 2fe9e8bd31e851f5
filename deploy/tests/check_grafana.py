#!/usr/bin/env python3
"""Checks the Grafana dashboard: valid JSON, panels with unique ids, every
query names only metrics jeweler-server exports (so it never shows an empty
panel because of a typo), and every exported jeweler_* family has a panel.

usage: check_grafana.py deploy/grafana/jeweler-dashboard.json
"""
import json
import re
import sys

EXPORTED = {
    "jeweler_http_requests_total", "jeweler_http_request_duration_seconds_bucket",
    "jeweler_ratelimit_decisions_total", "jeweler_cache_requests_total",
    "jeweler_sessions_active", "jeweler_redis_command_duration_seconds_bucket",
    "jeweler_redis_reconnects_total", "jeweler_redis_up", "jeweler_build_info",
    "jeweler_http_connections", "jeweler_redis_memory_used_bytes",
    "jeweler_redis_memory_max_bytes", "jeweler_redis_evicted_keys_total",
    "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
    "process_max_fds",
}


def main(path):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    problems = []
    panels = dash.get("panels", [])
    if not panels:
        problems.append("no panels")
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append("duplicate panel ids")
    used = set()
    for p in panels:
        for t in p.get("targets", []):
            for name in re.findall(r"\b((?:jeweler|process)_[a-z_]+)\b", t.get("expr", "")):
                used.add(name)
                if name not in EXPORTED:
                    problems.append(f"panel {p.get('title')!r}: unknown metric {name}")
    for name in EXPORTED:
        base = name.removesuffix("_bucket")
        if name not in used and base.startswith("jeweler_"):
            problems.append(f"no panel shows {name}")
    for pr in problems:
        print(f"{path}: {pr}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: ok ({len(panels)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
