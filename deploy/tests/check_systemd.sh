#!/usr/bin/env bash
# usage: check_systemd.sh UNIT_FILE SERVER_BINARY
# `systemd-analyze verify` on the unit (ExecStart pointed at the built
# binary; any warning about the unit fails), and `systemd-analyze security
# --offline` must rate its exposure at most 2.0 ("OK"). Skips (exit 77) when
# systemd-analyze is not installed.
set -euo pipefail
unit="$1"
bin="$2"
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not found (Debian package systemd)"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
name="$(basename "$unit")"
sed "s|^ExecStart=[^ ]*|ExecStart=$bin|" "$unit" >"$tmp/$name"
grep -q "^ExecStart=$bin" "$tmp/$name"
out="$(systemd-analyze verify "$tmp/$name" 2>&1)" || { echo "$out"; exit 1; }
if grep -F "$name" <<<"$out"; then
  echo "systemd-analyze verify reported problems in $name" >&2
  exit 1
fi
echo "verify: ok"
# A unit with a typo must be caught by the check above (the check can fail).
sed 's/^ProtectSystem=strict/ProtectSystem=stirct/' "$tmp/$name" >"$tmp/broken-$name"
if ! systemd-analyze verify "$tmp/broken-$name" 2>&1 | grep -qF "broken-$name"; then
  echo "systemd-analyze verify did not report a broken unit: the check is blind" >&2
  exit 1
fi
for setting in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes StateDirectory=jeweler \
  PrivateTmp=yes ProtectHome=yes CapabilityBoundingSet= SystemCallFilter=@system-service; do
  grep -qx "$setting" "$tmp/$name" || { echo "missing hardening: $setting" >&2; exit 1; }
done
systemd-analyze security --offline=yes --threshold=20 "$tmp/$name" | tail -n 1
echo "security: exposure <= 2.0"
