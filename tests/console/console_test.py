#!/usr/bin/python3
"""Browser tests of the jeweler web console (issue 20, API.md section 9).

Starts a private redis-server on a free port and the real jeweler-server
(--demo-data, COOKIE_SECURE=false, a temporary DATABASE_PATH, PORT=0: the port
is read from the start-up line), then drives headless Chromium through
WebDriver (chromium-driver + python3-selenium, Debian packages) like a user:

  * the console's HTTP answers: redirect from /, types, ETag/304, the
    security headers, no inline script or style, 404 for unknown files,
    not rate limited;
  * sign in by keyboard, 2FA with a TOTP code computed here (RFC 6238), a
    wrong code refused;
  * the dashboard: KPIs MISS then HIT, the gold table, the rate-limit budget
    going down as requests are made;
  * two browsers (two drivers, two profiles) signed in as one user: both
    sessions listed, the current one marked, times in the viewer's time
    zone; ending the other one sends that browser to the sign-in page on
    its next request; "all other sessions" and "everywhere" likewise;
  * admin: cache statistics after KPI reads, invalidation by pattern and of
    the whole tenant (with a confirmation, and cancel), each seen as a MISS
    on the dashboard; force logout of another user of the tenant;
  * a phone-sized screen without horizontal scrolling;
  * 429 after too many wrong passwords (RATE_LIMIT_AUTH_MAX=3) with the time
    until the next try, 503 once Redis is gone;
  * no console error and no Content-Security-Policy violation in any
    browser's log during the whole run (the only errors allowed are the
    network lines of the API answers a step expects, such as the 401 of a
    wrong password), and a deliberate violation at the end shows the check
    can fail.

Screenshots of every page go to --artifacts (build/tests/console/artifacts/
by default under ctest), with the server's and the browsers' logs.
Exit status 0 when every check passed.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

try:
    from zoneinfo import ZoneInfo
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:  # pragma: no cover
    print(f"console_test: {e}: install python3-selenium (scripts/deps.sh)", file=sys.stderr)
    sys.exit(1)

WAIT_S = 30  # explicit waits: how long a condition may take to become true (never a pass/fail bound on speed)
TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # secure@aurum.example (API.md section 8)
VIEWER_TZ = "Asia/Kolkata"  # UTC+05:30: local times must differ from UTC
AUTH_MAX = 3


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# --- RFC 6238 ---------------------------------------------------------------------


def totp(secret_b32, at=None, step=30, digits=6, key=None):
    if key is None:
        key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10**digits
    return f"{code:0{digits}d}"


# RFC 6238 appendix B (SHA-1): the implementation above is the standard one.
assert totp(None, at=59, digits=8, key=b"12345678901234567890") == "94287082"
assert totp(None, at=1111111109, digits=8, key=b"12345678901234567890") == "07081804"


# --- processes --------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=WAIT_S, interval=0.05):
    until = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > until:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(interval)


class RedisServer:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.log = open(os.path.join(workdir, "redis.log"), "wb")
        for _ in range(5):  # a free port can be taken before redis binds it
            self.port = free_port()
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir],
                stdout=self.log, stderr=subprocess.STDOUT)
            try:
                wait_for("redis-server", lambda: self.proc.poll() is not None or self.ping(), 15)
            except Failure:
                pass
            if self.proc.poll() is None and self.ping():
                return
            self.stop()
        raise Failure("cannot start redis-server")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class JewelerServer:
    def __init__(self, binary, redis_port, workdir):
        self.log_path = os.path.join(workdir, "jeweler-server.log")
        self.log = open(self.log_path, "wb")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}",
            "REDIS_KEY_PREFIX": "console:",
            "DATABASE_PATH": os.path.join(workdir, "data", "jeweler.db"),
            "HOST": "127.0.0.1",
            "PORT": "0",
            "HTTP_THREADS": "2",
            "COOKIE_SECURE": "false",
            "LOG_LEVEL": "info",
            "RATE_LIMIT_AUTH_MAX": str(AUTH_MAX),
            "RATE_LIMIT_MAX_REQUESTS": "300",
        }
        self.proc = subprocess.Popen([binary, "--demo-data"], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, cwd=workdir)
        self.port = wait_for("the start-up line of jeweler-server", self._listening)

    def _listening(self):
        check(self.proc.poll() is None, f"jeweler-server exited:\n{self.output()}")
        for line in self.output().splitlines():
            if "listening on" in line:
                m = re.search(r'"port":(\d+)', line)
                if m:
                    return int(m.group(1))
        return None

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def request(port, method, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


# --- the browser ------------------------------------------------------------------


class Browser:
    """One Chromium with its own profile: a separate browser context (cookie jar)."""

    def __init__(self, name, base, workdir, artifacts):
        self.name = name
        self.base = base
        self.artifacts = artifacts
        self.log_lines = []
        profile = tempfile.mkdtemp(prefix=f"profile-{name}-", dir=workdir)
        opts = Options()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-default-browser-check",
                  "--disable-extensions", "--password-store=basic", "--lang=en-US",
                  "--window-size=1280,900", f"--user-data-dir={profile}"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver",
                          log_path=os.path.join(artifacts, f"chromedriver-{name}.log"))
        self.d = webdriver.Chrome(service=service, options=opts)
        self.d.set_page_load_timeout(WAIT_S)
        # The viewer's time zone: the console shows times in it.
        self.d.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": VIEWER_TZ})

    # logs: every entry is kept for the artifacts; errors fail the step
    def check_log(self, step, allowed=()):
        """`allowed`: (path prefix, status) of the API answers the step expects."""
        problems = []
        for e in self.d.get_log("browser"):
            msg = e.get("message", "")
            level = e.get("level", "")
            self.log_lines.append(f"[{step}] {level} {msg}")
            if re.search(r"Content.Security.Policy|Trusted Type|Refused to", msg, re.I):
                problems.append(f"CSP violation: {msg}")
                continue
            if level != "SEVERE":
                continue
            m = re.match(r"(\S+) - Failed to load resource: the server responded with a status of (\d+)", msg)
            if m:
                path = urllib.parse.urlsplit(m.group(1)).path
                if any(path.startswith(p) and int(m.group(2)) == s for p, s in allowed):
                    continue  # the API answer this step expects (401 of a wrong password, 429, ...)
            problems.append(f"console error: {msg}")
        return problems

    def save_logs(self):
        with open(os.path.join(self.artifacts, f"browser-{self.name}.log"), "w") as f:
            f.write("\n".join(self.log_lines) + "\n")

    # waits
    def wait(self, what, cond, timeout=WAIT_S):
        try:
            # A view re-renders its parts: an element read mid-render is retried.
            return WebDriverWait(self.d, timeout, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: cond())
        except TimeoutException:
            raise Failure(f"{self.name}: timed out waiting for {what}") from None

    def by_id(self, id_):
        return self.d.find_element(By.ID, id_)

    def visible(self, id_):
        els = self.d.find_elements(By.ID, id_)
        return bool(els) and els[0].is_displayed()

    def wait_visible(self, id_):
        return self.wait(f"#{id_} to show", lambda: self.visible(id_) and self.by_id(id_))

    def wait_view(self, view):
        self.wait(f"the {view} view", lambda: self.visible(f"view-{view}") and
                  self.d.current_url.endswith(f"/console/#/{view}"))

    def text(self, id_):
        return self.by_id(id_).text

    def click(self, id_):
        self.wait(f"#{id_} to be clickable", lambda: self.visible(id_) and self.by_id(id_).is_enabled())
        self.by_id(id_).click()

    def nav(self, view):
        self.d.find_element(By.CSS_SELECTOR, f'#nav a[data-view="{view}"]').click()
        self.wait_view(view)

    def screenshot(self, name):
        """A full-page PNG (beyond the viewport)."""
        m = self.d.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = m.get("cssContentSize") or m["contentSize"]
        shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        with open(os.path.join(self.artifacts, f"{name}.png"), "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def quit(self):
        try:
            self.save_logs()
        finally:
            self.d.quit()


# --- the test ---------------------------------------------------------------------


class ConsoleTest:
    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix="jeweler-console-")
        self.artifacts = os.path.abspath(args.artifacts)
        shutil.rmtree(self.artifacts, ignore_errors=True)
        os.makedirs(self.artifacts)
        self.redis = None
        self.server = None
        self.browsers = []
        self.passed = []
        self.log_problems = []

    # -- helpers

    def browser(self, name):
        b = Browser(name, self.base, self.workdir, self.artifacts)
        self.browsers.append(b)
        return b

    def logs_ok(self, b, step, allowed=()):
        problems = b.check_log(step, allowed)
        for p in problems:
            self.log_problems.append(f"{b.name} [{step}]: {p}")
        check(not problems, f"{b.name}: browser log during '{step}':\n  " + "\n  ".join(problems))

    def sign_in(self, b, email, password, expect_view="dashboard"):
        b.wait_view("signin")
        b.wait_visible("signin-form")
        for id_, value in (("signin-email", email), ("signin-password", password)):
            field = b.by_id(id_)
            field.clear()
            field.send_keys(value)
        b.click("signin-submit")
        if expect_view:
            b.wait_view(expect_view)

    def sign_in_error_after_submit(self, b, email, password):
        """Submits the sign-in form and returns the error shown."""
        b.d.execute_script("const e = document.getElementById('signin-error'); e.textContent = ''; e.hidden = true;")
        b.by_id("signin-email").clear()
        b.by_id("signin-email").send_keys(email)
        b.by_id("signin-password").clear()
        b.by_id("signin-password").send_keys(password)
        b.click("signin-submit")
        return b.wait("a sign-in error", lambda: b.visible("signin-error") and b.text("signin-error"))

    def kpi_cache(self, b):
        return b.by_id("kpi-cache").get_attribute("data-cache") or ""

    def budget(self, b, policy="api"):
        """(remaining, limit, the bar's value) of a policy, read in one go (the bars are re-rendered)."""
        v = b.d.execute_script(
            "const e = document.querySelector(`#budget [data-policy='${arguments[0]}']`);"
            "return e && [e.dataset.remaining, e.dataset.limit, e.querySelector('meter').value];", policy)
        return (int(v[0]), int(v[1]), float(v[2])) if v else None

    def session_cards(self, b):
        return b.d.find_elements(By.CSS_SELECTOR, "#session-list > li")

    def wait_cards(self, b, n):
        b.wait(f"{n} session(s) listed", lambda: len(self.session_cards(b)) == n)
        return self.session_cards(b)

    def confirm(self, b, accept, shot=None):
        b.wait("the confirmation dialog", lambda: b.d.execute_script("return document.getElementById('confirm').open"))
        check(b.d.switch_to.active_element.get_attribute("id") == "confirm-cancel",
              "the confirmation dialog should focus Cancel")
        if shot:
            b.screenshot(shot)
        b.click("confirm-ok" if accept else "confirm-cancel")
        b.wait("the dialog to close", lambda: not b.d.execute_script("return document.getElementById('confirm').open"))

    def stat(self, b, key):
        return b.d.execute_script(
            "const e = document.querySelector(`#cache-summary [data-stat='${arguments[0]}'] dd`);"
            "return e && e.textContent || null;", key)

    # -- steps

    def step_http(self):
        port = self.server.port
        csp_directives = ["default-src 'self'", "script-src 'self'", "style-src 'self'",
                          "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'",
                          "base-uri 'none'", "form-action 'self'"]

        def secure(headers, what):
            csp = headers.get("content-security-policy", "")
            for d in csp_directives:
                check(d in csp, f"{what}: CSP lacks {d!r}: {csp!r}")
            check("unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{what}: CSP too loose: {csp}")
            check(headers.get("x-content-type-options") == "nosniff", f"{what}: no nosniff")
            check(headers.get("referrer-policy") == "same-origin", f"{what}: Referrer-Policy")
            check(headers.get("x-frame-options") == "DENY", f"{what}: X-Frame-Options")
            for h in ("x-ratelimit-limit", "ratelimit", "ratelimit-policy"):
                check(h not in headers, f"{what}: console files are not rate limited, yet {h} is set")

        for path in ("/", "/console"):
            status, h, _ = request(port, "GET", path)
            check(status in (302, 303), f"GET {path}: {status}, expected a redirect")
            check(h.get("location") == "/console/", f"GET {path}: Location {h.get('location')}")
            secure(h, f"GET {path}")

        status, h, body = request(port, "GET", "/console/")
        check(status == 200, f"GET /console/: {status}")
        check(h.get("content-type") == "text/html; charset=utf-8", f"index type {h.get('content-type')}")
        secure(h, "GET /console/")
        etag = h.get("etag", "")
        check(re.fullmatch(r'"[0-9a-f]{32}"', etag), f"index ETag {etag!r}")
        check(h.get("cache-control") == "no-cache", f"index Cache-Control {h.get('cache-control')}")
        html = body.decode()
        check('<script src="app.js" defer></script>' in html, "index loads app.js")
        check(not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline <script> in index.html")
        check(not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", html, re.I),
              "no inline style or event handler in index.html")

        for path, ctype in (("/console/app.js", "text/javascript; charset=utf-8"),
                            ("/console/app.css", "text/css; charset=utf-8"),
                            ("/console/favicon.svg", "image/svg+xml")):
            status, h, body = request(port, "GET", path)
            check(status == 200 and h.get("content-type") == ctype, f"GET {path}: {status} {h.get('content-type')}")
            check(int(h.get("content-length", "-1")) == len(body) > 0, f"GET {path}: length")
            secure(h, f"GET {path}")
            status, h304, body = request(port, "GET", path, {"If-None-Match": h["etag"]})
            check(status == 304 and body == b"" and h304.get("etag") == h["etag"], f"GET {path} revalidation: {status}")
            status, _, _ = request(port, "GET", path, {"If-None-Match": f'"other", W/{h["etag"]}'})
            check(status == 304, f"GET {path} with a weak ETag in a list: {status}")
            status, _, body = request(port, "GET", path, {"If-None-Match": '"stale"'})
            check(status == 200 and body, f"GET {path} with a stale ETag: {status}")

        status, h, body = request(port, "HEAD", "/console/")
        check(status == 200 and body == b"" and int(h.get("content-length", 0)) > 0, f"HEAD /console/: {status}")
        for path in ("/console/missing.js", "/console/..%2Fapp.js", "/console/app.js/x", "/console/%2e%2e"):
            status, h, body = request(port, "GET", path)
            check(status == 404, f"GET {path}: {status}, expected 404")
        status, _, _ = request(port, "POST", "/console/")
        check(status == 405, f"POST /console/: {status}")

    def step_sign_in_2fa(self, a):
        a.d.get(self.base + "/")
        a.wait_view("signin")
        check(a.d.current_url == self.base + "/console/#/signin", f"GET / landed on {a.d.current_url}")
        check(not a.visible("nav"), "no navigation before sign-in")
        self.logs_ok(a, "first visit", allowed=[("/api/auth/me", 401)])  # GET /api/auth/me without a session
        a.screenshot("01-sign-in")

        # By keyboard: the heading has the focus, Tab reaches the email field.
        a.wait("the heading to have the focus",
               lambda: a.d.switch_to.active_element.get_attribute("id") == "signin-title")
        ActionChains(a.d).send_keys(Keys.TAB).perform()
        check(a.d.switch_to.active_element.get_attribute("id") == "signin-email", "Tab goes to the email field")
        ActionChains(a.d).send_keys("secure@aurum.example", Keys.TAB, "aurum-secure-pw", Keys.ENTER).perform()
        a.wait_visible("totp-form")
        check(not a.visible("signin-form"), "the password form makes way for the code")
        a.wait("the code field to have the focus",
               lambda: a.d.switch_to.active_element.get_attribute("id") == "totp-code")
        a.screenshot("02-two-factor")

        now = time.time()
        valid = {totp(TOTP_SECRET, now + d) for d in (-60, -30, 0, 30, 60)}
        wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
        a.by_id("totp-code").send_keys(wrong, Keys.ENTER)
        err = a.wait("the wrong-code message", lambda: a.visible("signin-error") and a.text("signin-error"))
        check("not valid" in err, f"wrong code message: {err!r}")
        self.logs_ok(a, "wrong code", allowed=[("/api/auth/2fa/verify", 401)])

        a.by_id("totp-code").clear()
        a.by_id("totp-code").send_keys(totp(TOTP_SECRET), Keys.ENTER)
        a.wait_view("dashboard")
        check(a.text("who-email") == "secure@aurum.example", "the header names the user")
        check(not a.visible("nav-admin"), "no admin link for staff")
        a.wait("the KPIs", lambda: self.kpi_cache(a))
        check(self.kpi_cache(a) == "MISS", f"first KPI read on an empty cache: {self.kpi_cache(a)}")
        self.logs_ok(a, "2fa verified")

        a.click("sign-out")
        a.wait_view("signin")
        check("signed out" in a.text("notice"), f"sign-out notice: {a.text('notice')!r}")
        self.logs_ok(a, "sign out")

    def step_dashboard(self, a):
        self.sign_in(a, "owner@aurum.example", "aurum-owner-pw")
        check(a.visible("nav-admin"), "admin link for the admin")
        # The tenant's KPIs were computed for the first user: from the cache now.
        a.wait("the KPIs", lambda: self.kpi_cache(a))
        check(self.kpi_cache(a) == "HIT", f"KPIs of the tenant read again: {self.kpi_cache(a)}")
        rows = a.d.find_elements(By.CSS_SELECTOR, "#gold-table tbody tr")
        check([r.get_attribute("data-karat") for r in rows] == ["24k", "22k", "21k", "18k", "14k", "10k"],
              "gold table rows")
        tiles = a.d.find_elements(By.CSS_SELECTOR, "#kpi-list [data-kpi]")
        check(len(tiles) == 7, f"{len(tiles)} KPI tiles")
        first = a.wait("the api budget", lambda: self.budget(a))
        check(first[1] == 300, f"api limit shown: {first}")
        check(first[2] == first[0], f"the bar shows the remaining budget: {first}")
        a.screenshot("03-dashboard")

        a.click("dashboard-refresh")  # two more API calls: gold price and KPIs
        a.wait("the KPIs from the cache", lambda: self.kpi_cache(a) == "HIT")
        after = a.wait("the budget to go down by the two requests",
                       lambda: (lambda v: v if v[0] <= first[0] - 2 else None)(self.budget(a)))
        check(after[2] == after[0], f"the bar follows the budget: {first} -> {after}")
        check(a.by_id("gold-cache").get_attribute("data-cache") == "HIT", "gold price from the cache")
        self.logs_ok(a, "dashboard")

    def step_two_sessions(self, a, b):
        b.d.get(self.base + "/console/")
        self.sign_in(b, "owner@aurum.example", "aurum-owner-pw")
        self.logs_ok(b, "second browser signs in", allowed=[("/api/auth/me", 401)])

        a.nav("sessions")
        cards = self.wait_cards(a, 2)
        current = [c for c in cards if "current" in (c.get_attribute("class") or "")]
        check(len(current) == 1, "exactly one session marked current")
        text = current[0].text
        check("this device" in text and "Chrome" in text and "Linux" in text and "127.0.0.1" in text,
              f"current session card: {text!r}")
        # Times in the viewer's zone (UTC+05:30), not in UTC.
        t = current[0].find_element(By.CSS_SELECTOR, "time")
        utc = datetime.datetime.fromisoformat(t.get_attribute("datetime").replace("Z", "+00:00"))
        local = utc.astimezone(ZoneInfo(VIEWER_TZ))
        shown = [f"{h}:{local.minute:02d}:{local.second:02d}" for h in
                 (local.hour % 12 or 12, local.hour, f"{local.hour:02d}")]  # 12 or 24 hours
        check(any(x in t.text for x in shown), f"sign-in time {t.text!r} is not the viewer's local {shown}")
        a.screenshot("04-sessions")

        other = next(c for c in cards if c not in current)
        other.find_element(By.CSS_SELECTOR, "button.end-session").click()
        self.wait_cards(a, 1)
        check("signed out" in a.text("notice"), f"notice: {a.text('notice')!r}")
        self.logs_ok(a, "end the other session")

        # The other browser's next request lands on the sign-in page.
        b.click("dashboard-refresh")
        b.wait_view("signin")
        check("session has ended" in b.text("notice"), f"ended-session notice: {b.text('notice')!r}")
        check(not b.visible("nav"), "no navigation once signed out")
        b.screenshot("05-session-ended")
        self.logs_ok(b, "ended session", allowed=[("/api/gold-price", 401)])

    def step_admin(self, a):
        a.nav("admin")
        hits = a.wait("cache statistics", lambda: self.stat(a, "hits"))
        check(int(hits.replace(",", "")) >= 2, f"hits after the KPI reads: {hits}")
        check(int(self.stat(a, "misses").replace(",", "")) >= 2, "misses after the first reads")
        bars = a.d.find_elements(By.CSS_SELECTOR, "#hit-chart g[data-namespace] rect.bar")
        check(len(bars) >= 1, "a hit-ratio bar per row")
        names = a.d.execute_script(
            "return [...document.querySelectorAll('#cache-table tbody tr')].map(r => r.dataset.namespace)")
        check(len(names) >= 1, "cache table rows")
        if names != ["all"]:  # the server reports namespaces: the ones the dashboard read are there
            check("kpi" in names and "gold-price" in names, f"namespaces listed: {names}")
            charted = a.d.execute_script(
                "return [...document.querySelectorAll('#hit-chart g[data-namespace]')].map(g => g.dataset.namespace)")
            check(charted == names + ["total"], f"a bar per namespace and the total: {charted}")
        a.screenshot("06-admin")

        # Cancel first: nothing happens.
        a.by_id("invalidate-pattern").send_keys("kpi:*")
        a.click("invalidate-submit")
        self.confirm(a, accept=False)
        a.wait("the cancelled invalidation", lambda: a.text("invalidate-result") == "Nothing was invalidated.")
        a.click("invalidate-submit")
        self.confirm(a, accept=True, shot="07-confirm-invalidation")
        n = a.wait("the invalidation result", lambda: a.by_id("invalidate-result").get_attribute("data-invalidated"))
        check(int(n) >= 1, f"invalidated {n} by pattern")
        a.nav("dashboard")
        a.wait("the KPIs recomputed after the pattern invalidation", lambda: self.kpi_cache(a) == "MISS")
        a.click("dashboard-refresh")
        a.wait("the KPIs cached again", lambda: self.kpi_cache(a) == "HIT")

        a.nav("admin")
        a.click("scope-tenant")
        a.d.execute_script("document.getElementById('invalidate-result').removeAttribute('data-invalidated')")
        a.click("invalidate-submit")
        self.confirm(a, accept=True)
        n = a.wait("the tenant invalidation result",
                   lambda: a.by_id("invalidate-result").get_attribute("data-invalidated"))
        check(int(n) >= 1, f"invalidated {n} for the tenant (the KPIs at least)")
        a.nav("dashboard")
        a.wait("the KPIs recomputed after the tenant invalidation", lambda: self.kpi_cache(a) == "MISS")
        check(a.by_id("gold-cache").get_attribute("data-cache") == "MISS", "gold price recomputed too")
        self.logs_ok(a, "admin")

    def step_force_logout(self, a, b):
        self.sign_in(b, "clerk@aurum.example", "aurum-clerk-pw")
        check(not b.visible("nav-admin"), "no admin link for staff")
        a.nav("admin")
        a.by_id("force-user").send_keys("usr_nobody")
        a.click("force-submit")
        self.confirm(a, accept=True)
        a.wait("the unknown-user answer", lambda: "no user" in a.text("force-result"))
        a.by_id("force-user").clear()
        a.by_id("force-user").send_keys("usr_aurum_clerk")
        a.click("force-submit")
        self.confirm(a, accept=True)
        a.wait("the force-logout result", lambda: a.by_id("force-result").get_attribute("data-destroyed") == "1")
        a.screenshot("08-force-logout")
        self.logs_ok(a, "force logout", allowed=[("/api/admin/users/usr_nobody/sessions", 404)])

        b.d.find_element(By.CSS_SELECTOR, '#nav a[data-view="sessions"]').click()  # its next request: 401
        b.wait_view("signin")
        check("session has ended" in b.text("notice"), "forced-out browser shows the sign-in page")
        self.logs_ok(b, "forced out", allowed=[("/api/auth/sessions", 401)])

    def step_phone(self, a):
        a.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        try:
            for view in ("dashboard", "sessions", "admin"):
                a.d.execute_script(f"location.hash = '#/{view}'")
                a.wait_view(view)
                if view == "dashboard":
                    a.wait("the KPIs", lambda: self.kpi_cache(a))
                if view == "admin":
                    a.wait("cache statistics", lambda: self.stat(a, "hits"))
                overflow = a.d.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                check(overflow <= 0, f"{view} scrolls sideways on a phone ({overflow}px too wide)")
                a.screenshot(f"09-phone-{view}")
        finally:
            a.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.logs_ok(a, "phone")

    def step_end_others_and_all(self, a, b):
        self.sign_in(b, "owner@aurum.example", "aurum-owner-pw")
        a.nav("sessions")
        a.click("sessions-refresh")
        self.wait_cards(a, 2)
        a.click("end-others")
        a.wait("the end-others notice", lambda: "1 other session" in a.text("notice"))
        self.wait_cards(a, 1)
        b.click("dashboard-refresh")
        b.wait_view("signin")
        self.logs_ok(b, "others ended", allowed=[("/api/gold-price", 401)])

        a.click("end-all")
        self.confirm(a, accept=True)
        a.wait_view("signin")
        check("signed out everywhere" in a.text("notice"), f"notice: {a.text('notice')!r}")
        self.logs_ok(a, "end everywhere")
        a.d.refresh()  # the cookie is gone for good
        a.wait_view("signin")
        self.logs_ok(a, "reload after end everywhere", allowed=[("/api/auth/me", 401)])

    def step_rate_limited(self, b):
        message = ""
        for _ in range(AUTH_MAX + 2):
            message = self.sign_in_error_after_submit(b, "clerk@aurum.example", "wrong-password")
            if "Too many" in message:
                break
            check(message == "Wrong email or password.", f"wrong password message: {message!r}")
        check(re.match(r"Too many sign-in attempts\. Try again in \d+ (minute|second)s?\b", message),
              f"429 message: {message!r}")
        b.screenshot("10-rate-limited")
        self.logs_ok(b, "rate limited", allowed=[("/api/auth/login", 401), ("/api/auth/login", 429)])

    def step_unavailable(self, b):
        self.redis.stop()
        message = self.sign_in_error_after_submit(b, "owner@argent.example", "argent-owner-pw")
        check(message.startswith("The service is unavailable right now."), f"503 message: {message!r}")
        b.screenshot("11-unavailable")
        self.logs_ok(b, "redis down", allowed=[("/api/auth/login", 503)])

    def step_csp_enforced(self, a):
        """A deliberate inline style must be refused and seen: the log check can fail."""
        a.d.execute_script("document.body.setAttribute('style', 'background: red')")
        problems = a.wait("the CSP violation in the log", lambda: a.check_log("deliberate violation"), 10)
        check(any("CSP" in p for p in problems), f"the deliberate violation was not reported: {problems}")

    # -- run

    def run(self):
        steps = []
        try:
            self.redis = RedisServer(self.args.redis_server, self.workdir)
            self.server = JewelerServer(self.args.server, self.redis.port, self.workdir)
            self.base = f"http://127.0.0.1:{self.server.port}"
            steps = [
                ("console files: redirect, types, ETag, security headers", self.step_http),
            ]
            for name, fn in steps:
                fn()
                self.passed.append(name)
            a = self.browser("a")
            b = self.browser("b")
            for name, fn in (
                ("sign in by keyboard, 2FA with a computed TOTP code", lambda: self.step_sign_in_2fa(a)),
                ("dashboard: KPIs MISS/HIT, gold prices, rate-limit budget", lambda: self.step_dashboard(a)),
                ("two browsers: both sessions listed, end the other one", lambda: self.step_two_sessions(a, b)),
                ("admin: cache statistics, invalidation by pattern and tenant", lambda: self.step_admin(a)),
                ("admin: force logout of a tenant user", lambda: self.step_force_logout(a, b)),
                ("phone-sized screen", lambda: self.step_phone(a)),
                ("sign out all other sessions, then everywhere", lambda: self.step_end_others_and_all(a, b)),
                ("429 after too many wrong passwords", lambda: self.step_rate_limited(b)),
                ("503 when the service is unavailable", lambda: self.step_unavailable(b)),
                ("CSP enforced and violations detected", lambda: self.step_csp_enforced(a)),
            ):
                current = name
                try:
                    fn()
                except Exception:
                    for br in self.browsers:
                        try:
                            br.screenshot(f"FAILED-{br.name}")
                        except Exception:
                            pass
                    raise
                self.passed.append(current)
            return 0
        except Exception as e:
            print(f"FAILED: {e}", file=sys.stderr)
            if not isinstance(e, Failure):
                traceback.print_exc()
            if self.server:
                print("--- jeweler-server output (last 40 lines) ---", file=sys.stderr)
                print("\n".join(self.server.output().splitlines()[-40:]), file=sys.stderr)
            return 1
        finally:
            for name in self.passed:
                print(f"ok  {name}")
            for br in self.browsers:
                try:
                    br.quit()
                except Exception:
                    pass
            if self.server:
                self.server.stop()
                shutil.copy(self.server.log_path, self.artifacts)
            if self.redis:
                self.redis.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)
            print(f"screenshots and logs: {self.artifacts}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="the jeweler-server binary")
    p.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    p.add_argument("--artifacts", default="console-artifacts", help="folder for screenshots and logs")
    args = p.parse_args()
    args.server = os.path.abspath(args.server)  # the server runs in a temporary folder
    for tool in ("chromium", "chromedriver"):
        if not shutil.which(tool):
            print(f"console_test: {tool} not found: install chromium and chromium-driver (scripts/deps.sh)",
                  file=sys.stderr)
            return 1
    return ConsoleTest(args).run()


if __name__ == "__main__":
    sys.exit(main())
