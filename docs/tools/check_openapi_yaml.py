#!/usr/bin/env python3
"""Checks that docs/openapi.yaml reads the same with YAML 1.1 tools.

PyYAML implements YAML 1.1 (many OpenAPI tools still do). The file must load
with it, and no plain (unquoted) scalar may hold what YAML 1.1 and 1.2 read
differently or what some parsers take for a mapping: a ':' (quote it:
"customers:read"), or yes/no/on/off/y/n (booleans in 1.1), or a
sexagesimal-looking number (1:30 is 90 in 1.1).

usage: check_openapi_yaml.py [docs/openapi.yaml]
"""
import re
import sys

import yaml


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    problems = []
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        print(f"{path}: does not parse as YAML 1.1: {e}", file=sys.stderr)
        return 1
    if not isinstance(doc, dict) or "openapi" not in doc or "paths" not in doc:
        problems.append("not an OpenAPI document (no 'openapi' or 'paths')")
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if not isinstance(event, yaml.ScalarEvent) or event.style is not None:
            continue
        v = event.value
        line = event.start_mark.line + 1
        if ":" in v and not re.match(r"^https?://", v):
            problems.append(f"line {line}: plain scalar with ':' must be quoted: {v!r}")
        if v.lower() in ("yes", "no", "on", "off", "y", "n"):
            problems.append(f"line {line}: {v!r} is a boolean in YAML 1.1: quote it")
        if re.fullmatch(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?", v):
            problems.append(f"line {line}: {v!r} is a sexagesimal number in YAML 1.1: quote it")
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: ok ({len(doc['paths'])} paths, YAML 1.1 safe)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.yaml"))
