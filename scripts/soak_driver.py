#!/usr/bin/env python3
"""Load driver of scripts/soak.sh (docs/RELIABILITY.md). Standard library only.

Two modes:

  soak    --port P --seconds S [--workers N] [--chaos FILE]
          A mixed load (logins, me, KPI, invoices list/create, password-reset
          bursts that the limiter cuts with 429) from N keep-alive clients.
          Prints one line per second: status counts, latency p50/p99/max,
          RSS of the server, and the chaos events as they happen (written to
          the FILE given by soak.sh: "<second> <event>" lines).
  outage  --port P --seconds S [--workers N] --target PATH
          N clients hammer one route (Redis is down): throughput and latency
          percentiles of the answers, per status (the 503 p99 figure).
"""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

USERS = [
    ("owner@aurum.example", "aurum-owner-pw"),
    ("clerk@aurum.example", "aurum-clerk-pw"),
    ("owner@argent.example", "argent-owner-pw"),
]
UA = "jeweler-soak/1.0"


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sec = {}  # second -> {"codes": {status: n}, "lat": [ms]}
        self.all_lat = {}  # status -> [ms]

    def add(self, second, status, ms):
        with self.lock:
            s = self.sec.setdefault(second, {"codes": {}, "lat": []})
            s["codes"][status] = s["codes"].get(status, 0) + 1
            s["lat"].append(ms)
            self.all_lat.setdefault(status, []).append(ms)


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, token=None, body=None, timeout=15):
        headers = {"User-Agent": UA}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                payload = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, payload
            except (http.client.HTTPException, OSError):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    return 0, b""  # no answer at all (counted as status 0)
        return 0, b""


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return -1
    return -1


def soak_worker(port, stop, stats, t0, wid):
    rnd = random.Random(wid)
    c = Client(port)
    user = USERS[wid % len(USERS)]
    token = None
    customer = product = None
    while not stop.is_set():
        action = rnd.random()
        start = time.monotonic()
        # Logins are Argon2id (64 MiB, ~100 ms of CPU each): a few per
        # second, as a real client population would make, not 3 % of the load.
        if token is None or action < 0.002:
            st, body = c.request("POST", "/api/auth/login", body={"email": user[0], "password": user[1]})
            if st == 200:
                token = json.loads(body)["token"]
        elif action < 0.45:  # 0.002 .. 0.45: me
            st, _ = c.request("GET", "/api/auth/me", token)
        elif action < 0.75:
            st, _ = c.request("GET", "/api/dashboard/kpi", token)
        elif action < 0.85:
            st, body = c.request("GET", "/api/invoices?limit=5", token)
        elif action < 0.90 and user[0].startswith("clerk"):
            if customer is None or product is None:
                st, body = c.request("GET", "/api/customers?limit=1", token)
                if st == 200:
                    customer = json.loads(body)["items"][0]["id"]
                st, body = c.request("GET", "/api/products?limit=1", token)
                if st == 200:
                    product = json.loads(body)["items"][0]["id"]
            else:
                st, _ = c.request("POST", "/api/invoices", token, {
                    "customerId": customer, "items": [{"productId": product, "quantity": 1}],
                    "status": "due"})
        elif action < 0.93:
            # A burst on the password-reset limiter (3 per hour per email):
            # the fourth and later are 429.
            for _ in range(5):
                st, _ = c.request("POST", "/api/auth/password-reset",
                                  body={"email": f"soak{wid}@example.org"})
                ms = (time.monotonic() - start) * 1000
                stats.add(int(time.monotonic() - t0), st, ms)
                start = time.monotonic()
            continue
        else:
            st, _ = c.request("GET", "/api/customers?limit=3", token)
        ms = (time.monotonic() - start) * 1000
        stats.add(int(time.monotonic() - t0), st, ms)
        if st == 401:
            token = None  # sessions lost (Redis restarted empty): log in again
        if st in (0, 503):
            time.sleep(0.01)


def outage_worker(port, stop, stats, t0, target, token):
    c = Client(port)
    while not stop.is_set():
        start = time.monotonic()
        st, _ = c.request("GET", target, token)
        stats.add(int(time.monotonic() - t0), st, (time.monotonic() - start) * 1000)


def fmt_codes(codes):
    return " ".join(f"{k}:{codes[k]}" for k in sorted(codes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["soak", "outage"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--events", default="")
    ap.add_argument("--target", default="/api/auth/me")
    ap.add_argument("--token", default="")
    a = ap.parse_args()

    stats = Stats()
    stop = threading.Event()
    t0 = time.monotonic()
    threads = []
    for w in range(a.workers):
        if a.mode == "soak":
            th = threading.Thread(target=soak_worker, args=(a.port, stop, stats, t0, w), daemon=True)
        else:
            th = threading.Thread(target=outage_worker,
                                  args=(a.port, stop, stats, t0, a.target, a.token), daemon=True)
        th.start()
        threads.append(th)

    rss = []
    printed = 0
    seen_events = 0
    while time.monotonic() - t0 < a.seconds:
        time.sleep(0.2)
        now = int(time.monotonic() - t0)
        while printed < now:
            with stats.lock:
                s = stats.sec.get(printed, {"codes": {}, "lat": []})
                lat = sorted(s["lat"])
                codes = dict(s["codes"])
            r = rss_kb(a.pid) if a.pid else -1
            if r > 0:
                rss.append(r)
            events = ""
            if a.events and os.path.exists(a.events):
                with open(a.events) as f:
                    lines = f.read().splitlines()
                if len(lines) > seen_events:
                    events = "  <<< " + "; ".join(lines[seen_events:])
                    seen_events = len(lines)
            print(f"t={printed:4d}s n={len(lat):5d} {fmt_codes(codes):40s} "
                  f"p50={pct(lat, 50):7.1f}ms p99={pct(lat, 99):7.1f}ms max={lat[-1] if lat else 0:7.1f}ms "
                  f"rss={r / 1024:6.1f}MiB{events}", flush=True)
            printed += 1
    stop.set()
    for th in threads:
        th.join(timeout=20)

    print("\nsummary")
    total = {}
    for s in stats.sec.values():
        for k, v in s["codes"].items():
            total[k] = total.get(k, 0) + v
    n = sum(total.values())
    print(f"  requests {n} in {a.seconds}s ({n / a.seconds:.0f}/s): {fmt_codes(total)}")
    for status in sorted(stats.all_lat):
        lat = sorted(stats.all_lat[status])
        print(f"  status {status}: n={len(lat)} p50={pct(lat, 50):.1f}ms p90={pct(lat, 90):.1f}ms "
              f"p99={pct(lat, 99):.1f}ms max={lat[-1]:.1f}ms")
    if rss:
        print(f"  rss first={rss[0] / 1024:.1f}MiB max={max(rss) / 1024:.1f}MiB last={rss[-1] / 1024:.1f}MiB")
    bad = {k: v for k, v in total.items() if k == 0 or (k >= 500 and k != 503)}
    print(f"  unanswered or 5xx other than 503: {sum(bad.values())} {fmt_codes(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
