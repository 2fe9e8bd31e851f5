// Jeweler console (API.md section 9, docs/console.md).
//
// A small single-page app on top of the public API and nothing else. It is
// authenticated by the `sid` cookie alone (HttpOnly: this script never sees
// the token, and ignores the one in the login answer). Every call is a
// same-origin fetch with credentials 'same-origin', so the browser sends
// `Sec-Fetch-Site: same-origin` and the page's own `Origin`, as the
// cross-site rules of API.md section 2 require; JSON bodies always go with
// `Content-Type: application/json`. The page builds its DOM with
// createElement/textContent only (no innerHTML: the Content-Security-Policy
// requires Trusted Types), and styles only through app.css.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  const state = {
    me: null,            // {session} of the signed-in caller, null when signed out
    view: null,          // the view on screen
    budget: new Map(),   // rate-limit policy -> {remaining, limit, windowS, resetS, at}
    tenantCurrency: null,
  };

  /** Thrown when an answer shows the session is gone: the sign-in page is already on screen. */
  class SignedOut extends Error {}

  // --- DOM helpers ------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
    }
    return e;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setText(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  function notice(text) {
    setText($('notice'), text);
  }

  async function busy(button, fn) {
    button.disabled = true;
    try {
      return await fn();
    } finally {
      button.disabled = false;
    }
  }

  // --- formatting ---------------------------------------------------------------

  const plain = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  function money(v) {
    if (typeof v !== 'number') return '—';
    if (state.tenantCurrency) {
      try {
        return new Intl.NumberFormat(undefined, { style: 'currency', currency: state.tenantCurrency }).format(v);
      } catch (e) {
        // an unknown currency code: plain number below
      }
    }
    return plain.format(v);
  }

  /** A date in the viewer's local time zone and format. */
  function localTime(ms) {
    return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function timeEl(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) return el('span', {}, '—');
    return el('time', { datetime: new Date(ms).toISOString() }, localTime(ms));
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  /** "45 seconds", "14 minutes 59 seconds", "2 hours 5 minutes". */
  function duration(seconds) {
    let s = Math.max(1, Math.ceil(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s %= 60;
    if (h) return plural(h, 'hour', 'hours') + (m ? ' ' + plural(m, 'minute', 'minutes') : '');
    if (m) return plural(m, 'minute', 'minutes') + (s ? ' ' + plural(s, 'second', 'seconds') : '');
    return plural(s, 'second', 'seconds');
  }

  function percent(ratio) {
    return `${(ratio * 100).toFixed(1)}\u00a0%`;  // no break before the sign
  }

  // --- user agents --------------------------------------------------------------

  /** Browser and operating system named by a User-Agent string. */
  function describeAgent(ua) {
    ua = ua || '';
    const version = (re) => {
      const m = ua.match(re);
      return m ? m[1].split('.')[0] : null;
    };
    let browser;
    let v;
    if ((v = version(/Edg(?:e|A|iOS)?\/([\d.]+)/))) browser = `Edge ${v}`;
    else if ((v = version(/OPR\/([\d.]+)/))) browser = `Opera ${v}`;
    else if ((v = version(/SamsungBrowser\/([\d.]+)/))) browser = `Samsung Internet ${v}`;
    else if ((v = version(/(?:Firefox|FxiOS)\/([\d.]+)/))) browser = `Firefox ${v}`;
    else if ((v = version(/HeadlessChrome\/([\d.]+)/))) browser = `Chrome ${v} (headless)`;
    else if ((v = version(/Chromium\/([\d.]+)/))) browser = `Chromium ${v}`;
    else if ((v = version(/(?:Chrome|CriOS)\/([\d.]+)/))) browser = `Chrome ${v}`;
    else if (/Safari\//.test(ua) && (v = version(/Version\/([\d.]+)/))) browser = `Safari ${v}`;
    else if (/^Mozilla\//.test(ua)) browser = 'Web browser';
    else if (ua) browser = ua.split(/[\s;(]/)[0].slice(0, 40) || 'Unknown client';
    else browser = 'Unknown client';

    let os = 'an unknown system';
    if (/Windows NT|Win64|Windows/.test(ua)) os = 'Windows';
    else if (/Android/.test(ua)) os = 'Android';
    else if (/iPad/.test(ua)) os = 'iPadOS';
    else if (/iPhone|iPod/.test(ua)) os = 'iOS';
    else if (/CrOS/.test(ua)) os = 'ChromeOS';
    else if (/Mac OS X|Macintosh/.test(ua)) os = 'macOS';
    else if (/FreeBSD|OpenBSD|NetBSD/.test(ua)) os = 'BSD';
    else if (/Linux|X11/.test(ua)) os = 'Linux';
    return { browser, os };
  }

  // --- the API ------------------------------------------------------------------

  /**
   * One API call: {status, ok, data, headers, network}. Never throws for an
   * HTTP status; `network` is true when the server could not be reached.
   */
  async function api(method, path, body) {
    const init = {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
      headers: { Accept: 'application/json' },
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { status: 0, ok: false, data: null, headers: new Headers(), network: true };
    }
    noteBudget(res.headers);
    let data = null;
    if ((res.headers.get('Content-Type') || '').includes('application/json')) {
      try {
        data = await res.json();
      } catch (e) {
        data = null;
      }
    }
    return { status: res.status, ok: res.ok, data, headers: res.headers, network: false };
  }

  /**
   * An API call that needs a signed-in session: a 401 (the session ended:
   * signed out elsewhere, expired, forced out by an admin) brings up the
   * sign-in page; so does a 403 two_factor_required.
   */
  async function call(method, path, body) {
    const r = await api(method, path, body);
    if (r.status === 401) {
      signedOut('Your session has ended. Please sign in again.');
      throw new SignedOut();
    }
    if (r.status === 403 && r.data && r.data.error === 'two_factor_required') {
      showView('signin');
      showTotp();
      throw new SignedOut();
    }
    return r;
  }

  function retryAfterSeconds(r) {
    const header = parseInt(r.headers.get('Retry-After') || '', 10);
    if (Number.isFinite(header) && header >= 0) return header;
    if (r.data && typeof r.data.retryAfter === 'number') return r.data.retryAfter;
    return null;
  }

  function tryAgain(r) {
    const s = retryAfterSeconds(r);
    if (s === null) return 'Try again later.';
    return `Try again in ${duration(s)} (at ${clock(Date.now() + Math.max(1, s) * 1000)}).`;
  }

  /** A plain sentence for a failed call. */
  function problem(r, context) {
    if (r.network) return 'Cannot reach the server. Check the connection and try again.';
    switch (r.status) {
      case 429:
        return context === 'signin'
          ? `Too many sign-in attempts. ${tryAgain(r)}`
          : `Too many requests. ${tryAgain(r)}`;
      case 503:
        return `The service is unavailable right now. ${tryAgain(r)}`;
      case 403:
        return 'You are not allowed to do this.';
      default: {
        const message = r.data && typeof r.data.message === 'string' ? r.data.message : '';
        return message ? `${message} (HTTP ${r.status}).` : `The request failed (HTTP ${r.status}).`;
      }
    }
  }

  // --- rate-limit budget ------------------------------------------------------------

  /** Items of a structured-field list: `"api";r=95;t=300, "api-tenant";r=990;t=300`. */
  function parseList(value) {
    const out = [];
    for (const item of (value || '').split(',')) {
      const parts = item.trim().split(';');
      const name = parts.shift().trim().replace(/^"|"$/g, '');
      if (!name) continue;
      const params = {};
      for (const p of parts) {
        const eq = p.indexOf('=');
        if (eq < 0) continue;
        params[p.slice(0, eq).trim()] = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
      }
      out.push({ name, params });
    }
    return out;
  }

  function noteBudget(headers) {
    const now = Date.now();
    const current = headers.get('RateLimit');
    if (current) {
      const quotas = new Map(parseList(headers.get('RateLimit-Policy')).map((p) => [p.name, p.params]));
      for (const { name, params } of parseList(current)) {
        const q = quotas.get(name) || {};
        const entry = {
          remaining: Number(params.r),
          limit: Number(q.q),
          windowS: Number(q.w),
          resetS: Number(params.t),
          at: now,
        };
        if (Number.isFinite(entry.remaining)) state.budget.set(name, entry);
      }
    } else if (headers.get('X-RateLimit-Limit')) {
      const reset = Date.parse(headers.get('X-RateLimit-Reset') || '');
      state.budget.set('limit', {
        remaining: Number(headers.get('X-RateLimit-Remaining')),
        limit: Number(headers.get('X-RateLimit-Limit')),
        windowS: Number(headers.get('X-RateLimit-Window')) / 1000,
        resetS: Number.isFinite(reset) ? Math.max(0, (reset - now) / 1000) : NaN,
        at: now,
      });
    } else {
      return;
    }
    if (state.view === 'dashboard') renderBudget();
  }

  // The caller's budgets: what a signed-in user spends. The sign-in limits
  // (auth-*, password-reset-*) are about an address or an account, not the
  // caller, and are left out.
  const POLICY_NAMES = {
    api: 'Your requests',
    'api-tenant': "Your tenant's requests",
    invoice: 'Invoices created',
    upload: 'Uploads',
    limit: 'Requests',
  };
  const POLICY_ORDER = ['api', 'api-tenant'];

  function renderBudget() {
    const box = $('budget');
    const names = [...state.budget.keys()].filter((n) => Object.hasOwn(POLICY_NAMES, n)).sort((a, b) => {
      const ia = POLICY_ORDER.indexOf(a);
      const ib = POLICY_ORDER.indexOf(b);
      if (ia !== ib) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
      return a < b ? -1 : 1;
    });
    const items = names.map((name) => {
      const b = state.budget.get(name);
      const id = `budget-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
      const limit = Number.isFinite(b.limit) && b.limit > 0 ? b.limit : Math.max(b.remaining, 1);
      const meter = el('meter', {
        id,
        min: 0,
        max: limit,
        value: Math.max(0, Math.min(b.remaining, limit)),
        low: Math.ceil(limit * 0.2),
        high: Math.ceil(limit * 0.5),
        optimum: limit,
      });
      const parts = [];
      if (Number.isFinite(b.windowS) && b.windowS > 0) parts.push(`window ${duration(b.windowS)}`);
      if (Number.isFinite(b.resetS)) {
        parts.push(b.remaining >= limit ? 'nothing used'
          : `next request back in ${duration(b.resetS)} (at ${clock(b.at + b.resetS * 1000)})`);
      }
      return el('div', { class: 'budget-item', 'data-policy': name, 'data-remaining': b.remaining, 'data-limit': limit },
        el('label', { for: id, class: 'label' },
          `${POLICY_NAMES[name] || name} (${name}): ${b.remaining} of ${limit} left`),
        meter,
        el('span', { class: 'muted' }, parts.join(' · ')));
    });
    if (!items.length) items.push(el('p', { class: 'muted' }, 'No rate-limit headers seen yet.'));
    box.replaceChildren(...items);
  }

  // --- views ------------------------------------------------------------------------

  const VIEWS = {
    signin: { title: 'Sign in', load: loadSignIn },
    dashboard: { title: 'Dashboard', load: loadDashboard },
    sessions: { title: 'My sessions', load: loadSessions },
    admin: { title: 'Admin', load: loadAdmin },
  };

  const isAdmin = () => !!(state.me && state.me.session.role === 'admin');
  const verified = () => !!(state.me && state.me.session.twoFactorVerified);

  function requestedView() {
    const h = location.hash;
    if (h.startsWith('#/') && Object.hasOwn(VIEWS, h.slice(2))) return h.slice(2);
    return null;
  }

  function showView(name) {
    const changed = state.view !== name;
    state.view = name;
    for (const v of Object.keys(VIEWS)) $(`view-${v}`).hidden = v !== name;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = `${VIEWS[name].title} · Jeweler console`;
    if (location.hash !== `#/${name}`) history.replaceState(null, '', `#/${name}`);
    if (changed) {
      const h1 = document.querySelector(`#view-${name} h1`);
      if (h1) h1.focus({ preventScroll: true });
    }
  }

  /** Shows the view the address asks for, when the caller may see it. */
  async function route() {
    let name = requestedView();
    if (!verified()) name = 'signin';
    else if (!name || name === 'signin') name = 'dashboard';
    else if (name === 'admin' && !isAdmin()) {
      notice('The admin pages need the admin role.');
      name = 'dashboard';
    }
    showView(name);
    await VIEWS[name].load();
  }

  function go(name) {
    if (location.hash === `#/${name}`) return route();
    location.hash = `#/${name}`;  // hashchange -> route()
    return undefined;
  }

  function setMe(session) {
    state.me = session ? { session } : null;
    const on = !!state.me && verified();
    $('nav').hidden = !on;
    $('who').hidden = !on;
    $('nav-admin').hidden = !(on && isAdmin());
    if (on) {
      $('who-email').textContent = session.email;
      $('who-tenant').textContent = `${session.tenantId} · ${session.role}`;
      $('force-hint').textContent = `Your own user id is ${session.userId}.`;
    } else {
      state.budget.clear();
    }
  }

  function signedOut(message) {
    setMe(null);
    resetSignIn();
    notice(message);
    showView('signin');
  }

  // --- sign in ----------------------------------------------------------------------

  function resetSignIn() {
    $('signin-form').hidden = false;
    $('totp-form').hidden = true;
    $('signin-password').value = '';
    $('totp-code').value = '';
    setText($('signin-error'), '');
  }

  function showTotp() {
    $('signin-form').hidden = true;
    $('totp-form').hidden = false;
    setText($('signin-error'), '');
    $('totp-code').value = '';
    $('totp-code').focus();
  }

  async function loadSignIn() {
    if (state.me && !verified()) showTotp();
  }

  async function onSignIn(ev) {
    ev.preventDefault();
    const email = $('signin-email').value.trim();
    const password = $('signin-password').value;
    setText($('signin-error'), '');
    notice('');
    if (!email || !password) {
      setText($('signin-error'), 'Enter your email and password.');
      return;
    }
    const r = await busy($('signin-submit'), () => api('POST', '/api/auth/login', { email, password }));
    if (!r.ok) {
      let message;
      if (r.status === 401) message = 'Wrong email or password.';
      else if (r.status === 422 || r.status === 400) message = 'Enter a valid email address and password.';
      else message = problem(r, 'signin');
      setText($('signin-error'), message);
      $('signin-password').select();
      return;
    }
    // The answer also carries the token: ignored on purpose. The HttpOnly
    // `sid` cookie the server set authenticates every later call.
    $('signin-password').value = '';
    setMe(r.data.session);
    if (!r.data.session.twoFactorVerified) {
      showTotp();
      return;
    }
    await go('dashboard');
  }

  async function onVerify(ev) {
    ev.preventDefault();
    const code = $('totp-code').value.replace(/\s+/g, '');
    setText($('signin-error'), '');
    if (!/^\d{6}$/.test(code)) {
      setText($('signin-error'), 'Enter the 6 digits of the code.');
      return;
    }
    const r = await busy($('totp-submit'), () => api('POST', '/api/auth/2fa/verify', { code }));
    if (r.ok || r.status === 409) {
      // 409: this session was verified already (another tab).
      const me = r.ok ? { data: r.data } : await api('GET', '/api/auth/me');
      if (me.data && me.data.session) {
        setMe(me.data.session);
        await go('dashboard');
        return;
      }
    }
    if (r.status === 401) {
      const message = r.data && typeof r.data.message === 'string' ? r.data.message : '';
      if (/code/i.test(message)) {
        setText($('signin-error'), 'That code is not valid (or was used already). Wait for the next code and try again.');
        $('totp-code').select();
      } else {
        signedOut('');
        setText($('signin-error'), 'Your sign-in has expired. Please sign in again.');
      }
      return;
    }
    setText($('signin-error'), problem(r, 'signin'));
  }

  async function onCancelTotp() {
    await api('POST', '/api/auth/logout');
    signedOut('');
    $('signin-email').focus();
  }

  async function onSignOut() {
    const r = await busy($('sign-out'), () => api('POST', '/api/auth/logout'));
    if (r.ok || r.status === 401) {
      signedOut('You are signed out.');
      return;
    }
    notice(problem(r));
  }

  // --- dashboard --------------------------------------------------------------------

  const KPI_FIELDS = [
    ['todaySales', "Today's sales", (v) => money(v)],
    ['todayProfit', "Today's profit", (v) => money(v)],
    ['newCustomers', 'New customers', (v) => plain.format(v)],
    ['goldSoldMTD', 'Gold sold this month', (v) => `${plain.format(v)} g`],
    ['overdueInvoices', 'Overdue invoices', (v) => plain.format(v)],
    ['dueCheques', 'Cheques due', (v) => plain.format(v)],
    ['lowInventoryItems', 'Low-stock items', (v) => plain.format(v)],
  ];

  function cacheBadge(node, value) {
    const hit = (value || '').toUpperCase() === 'HIT';
    node.hidden = !value;
    node.dataset.cache = (value || '').toUpperCase();
    node.className = `badge ${hit ? 'hit' : 'miss'}`;
    node.textContent = hit ? 'HIT · from the cache' : 'MISS · computed now';
    node.title = `X-Cache: ${value}`;
  }

  function renderKpi(k, xcache) {
    const tiles = KPI_FIELDS.map(([key, label, fmt]) => el('div', { 'data-kpi': key },
      el('dt', {}, label),
      el('dd', {}, typeof k[key] === 'number' ? fmt(k[key]) : '—')));
    $('kpi-list').replaceChildren(...tiles);
    cacheBadge($('kpi-cache'), xcache);
    const updated = $('kpi-updated');
    updated.replaceChildren();
    if (typeof k.lastUpdated === 'number') updated.append('Computed at ', timeEl(k.lastUpdated), '.');
  }

  function renderGold(g, xcache) {
    const prices = (g && g.pricePerGram) || {};
    const karats = Object.keys(prices).sort((a, b) => parseFloat(b) - parseFloat(a));
    const rows = karats.map((karat) => el('tr', { 'data-karat': karat },
      el('th', { scope: 'row' }, karat),
      el('td', { class: 'num' }, money(prices[karat]))));
    $('gold-table').tBodies[0].replaceChildren(...rows);
    const caption = $('gold-caption');
    caption.replaceChildren(`Price per gram${g.currency ? ` in ${g.currency}` : ''}`);
    if (typeof g.updatedAt === 'number') caption.append(', updated ', timeEl(g.updatedAt));
    cacheBadge($('gold-cache'), xcache);
  }

  async function loadDashboard() {
    const errors = [];
    const gold = await call('GET', '/api/gold-price');
    if (gold.ok && gold.data) state.tenantCurrency = gold.data.currency || null;
    const kpi = await call('GET', '/api/dashboard/kpi');
    if (kpi.ok && kpi.data) renderKpi(kpi.data, kpi.headers.get('X-Cache'));
    else errors.push(`Key figures: ${problem(kpi)}`);
    if (gold.ok && gold.data) renderGold(gold.data, gold.headers.get('X-Cache'));
    else errors.push(`Gold price: ${problem(gold)}`);
    setText($('dashboard-error'), errors.join(' '));
    renderBudget();
  }

  // --- my sessions ------------------------------------------------------------------

  function sessionCard(s) {
    const { browser, os } = describeAgent(s.deviceInfo && s.deviceInfo.userAgent);
    const device = `${browser} on ${os}`;
    const details = el('dl', {},
      el('dt', {}, 'IP address'), el('dd', {}, (s.deviceInfo && s.deviceInfo.ip) || '—'),
      el('dt', {}, 'Signed in'), el('dd', {}, timeEl(s.loginTime)),
      el('dt', {}, 'Last active'), el('dd', {}, timeEl(s.lastActivity)),
      el('dt', {}, 'Expires'), el('dd', {}, timeEl(s.expiresAt)));
    if (s.deviceInfo && s.deviceInfo.deviceId) {
      details.append(el('dt', {}, 'Device id'), el('dd', {}, s.deviceInfo.deviceId));
    }
    const li = el('li', { class: s.current ? 'current' : '', 'data-session-id': s.id },
      el('h3', {}, device, s.current ? el('span', { class: 'current-mark' }, '· this device') : null),
      details);
    if (s.current) {
      li.append(el('p', { class: 'muted' }, 'This is the session you are using now. "Sign out" at the top ends it.'));
    } else {
      const b = el('button', {
        type: 'button',
        class: 'secondary end-session',
        'aria-label': `Sign out the session of ${device}, signed in ${localTime(s.loginTime)}`,
      }, 'Sign out this session');
      b.addEventListener('click', guard(() => endSession(s.id, b)));
      li.append(b);
    }
    return li;
  }

  async function loadSessions() {
    const r = await call('GET', '/api/auth/sessions');
    if (!r.ok || !r.data) {
      setText($('sessions-error'), problem(r));
      return;
    }
    setText($('sessions-error'), '');
    const sessions = Array.isArray(r.data.sessions) ? r.data.sessions : [];
    $('session-list').replaceChildren(...sessions.map(sessionCard));
    $('end-others').disabled = sessions.filter((s) => !s.current).length === 0;
  }

  async function endSession(id, button) {
    const r = await busy(button, () => call('DELETE', `/api/auth/sessions/${encodeURIComponent(id)}`));
    if (r.status === 204 || r.ok) notice('The session was signed out.');
    else if (r.status === 404) notice('That session had already ended.');
    else notice(problem(r));
    await loadSessions();
  }

  async function onEndOthers() {
    const r = await busy($('end-others'), () => call('DELETE', '/api/auth/sessions?keepCurrent=true'));
    if (r.ok && r.data) notice(`Signed out ${plural(r.data.destroyed, 'other session', 'other sessions')}.`);
    else notice(problem(r));
    await loadSessions();
  }

  async function onEndAll() {
    const ok = await confirmDialog(
      'Sign out on every device, this one included? You will have to sign in again everywhere.',
      'Sign out everywhere');
    if (!ok) return;
    const r = await busy($('end-all'), () => call('DELETE', '/api/auth/sessions?keepCurrent=false'));
    if (r.ok && r.data) {
      signedOut(`You were signed out everywhere (${plural(r.data.destroyed, 'session', 'sessions')}).`);
      return;
    }
    notice(problem(r));
  }

  // --- admin ------------------------------------------------------------------------

  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

  function ratioOf(x) {
    if (num(x.hitRatio) !== null) return Math.max(0, Math.min(1, x.hitRatio));
    const hits = num(x.hits) || 0;
    const misses = num(x.misses) || 0;
    return hits + misses ? hits / (hits + misses) : 0;
  }

  /**
   * Per-namespace rows of the stats answer, whichever shape the server
   * sends: `namespaces` (or `byNamespace`) as an object keyed by namespace
   * or as an array of objects naming theirs. None: [].
   */
  function namespaceRows(stats) {
    const ns = stats.namespaces || stats.byNamespace || stats.perNamespace;
    let rows = [];
    if (Array.isArray(ns)) {
      rows = ns.filter((x) => x && typeof x === 'object')
        .map((x) => ({ ...x, name: String(x.namespace || x.name || '?') }));
    } else if (ns && typeof ns === 'object') {
      rows = Object.entries(ns).filter(([, x]) => x && typeof x === 'object')
        .map(([name, x]) => ({ ...x, name }));
    }
    return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  function renderCacheStats(answer) {
    // Totals: the answer's own, else the sum of its namespaces.
    const stats = { ...answer };
    const byNamespace = namespaceRows(answer);
    for (const key of ['hits', 'misses', 'sets', 'invalidations']) {
      if (num(stats[key]) === null && byNamespace.length) {
        stats[key] = byNamespace.reduce((sum, x) => sum + (num(x[key]) || 0), 0);
      }
    }
    const summary = [
      ['hits', 'Hits'], ['misses', 'Misses'], ['hitRatio', 'Hit ratio'], ['sets', 'Sets'],
      ['invalidations', 'Invalidations'], ['keysHeld', 'Keys held'],
    ].filter(([key]) => key === 'hitRatio' || num(stats[key]) !== null)
      .map(([key, label]) => el('div', { 'data-stat': key },
        el('dt', {}, label),
        el('dd', {}, key === 'hitRatio' ? percent(ratioOf(stats)) : plain.format(stats[key]))));
    $('cache-summary').replaceChildren(...summary);

    let rows = byNamespace;
    const perNamespace = rows.length > 0;
    if (!perNamespace) rows = [{ ...stats, name: 'all' }];
    const cell = (v) => el('td', { class: 'num' }, num(v) === null ? '—' : plain.format(v));
    $('cache-table').tBodies[0].replaceChildren(...rows.map((x) => el('tr', { 'data-namespace': x.name },
      el('th', { scope: 'row' }, x.name),
      cell(x.hits), cell(x.misses),
      el('td', { class: 'num' }, percent(ratioOf(x))),
      cell(x.sets), cell(x.invalidations))));
    $('cache-table').caption.textContent = perNamespace ? 'Per namespace' : 'All namespaces';
    setText($('cache-note'), perNamespace ? ''
      : 'This server reports the figures of all namespaces together, not one by one.');
    drawChart(perNamespace ? [...rows, { ...stats, name: 'total' }] : rows);
  }

  /** Horizontal bars of hit ratios, in plain SVG (no library, no inline style). */
  function drawChart(rows) {
    const chart = $('hit-chart');
    // Drawn at the width it gets (text stays 13 px on a phone).
    const width = Math.max(280, Math.min(560, chart.parentElement.clientWidth || 560));
    const labelW = Math.round(Math.min(150, width * 0.3));
    const barW = width - labelW - 70;
    const rowH = 30;
    const height = rows.length * rowH + 24;
    chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
    chart.setAttribute('width', width);
    chart.setAttribute('height', height);
    const nodes = [];
    rows.forEach((x, i) => {
      const ratio = ratioOf(x);
      const y = i * rowH + 4;
      const g = svgEl('g', { 'data-namespace': x.name, 'data-ratio': ratio.toFixed(4) });
      g.append(svgEl('title', {}, `${x.name}: ${percent(ratio)} (${num(x.hits) || 0} hits, ${num(x.misses) || 0} misses)`));
      const maxChars = Math.floor(labelW / 8);
      g.append(svgEl('text', { x: 0, y: y + 16 }, x.name.length > maxChars ? `${x.name.slice(0, maxChars - 1)}…` : x.name));
      g.append(svgEl('rect', { class: 'bar-bg', x: labelW, y, width: barW, height: 20, rx: 3 }));
      const cls = ratio < 0.5 ? 'bar low' : ratio < 0.8 ? 'bar mid' : 'bar';
      g.append(svgEl('rect', { class: cls, x: labelW, y, width: (barW * ratio).toFixed(1), height: 20, rx: 3 }));
      g.append(svgEl('text', { x: labelW + barW + 8, y: y + 16 }, percent(ratio)));
      nodes.push(g);
    });
    const axisY = rows.length * rowH + 8;
    nodes.push(svgEl('line', { class: 'axis', x1: labelW, y1: axisY, x2: labelW + barW, y2: axisY }));
    for (const t of [0, 0.5, 1]) {
      nodes.push(svgEl('text', { x: labelW + barW * t - (t === 0 ? 0 : t === 1 ? 30 : 14), y: axisY + 14 }, `${t * 100} %`));
    }
    chart.replaceChildren(...nodes);
  }

  async function loadAdmin() {
    setText($('admin-error'), '');
    const r = await call('GET', '/api/admin/cache/stats');
    if (r.status === 403) {
      setText($('admin-error'), 'The admin pages need the admin role.');
      return;
    }
    if (!r.ok || !r.data) {
      setText($('admin-error'), `Cache statistics: ${problem(r)}`);
    } else {
      renderCacheStats(r.data);
    }
    const s = await call('GET', '/api/admin/sessions/stats');
    if (s.ok && s.data && num(s.data.liveSessions) !== null) {
      $('session-stats').textContent = `Sessions in your tenant: ${plural(s.data.liveSessions, 'live session', 'live sessions')} of ${plural(num(s.data.usersWithSessions) || 0, 'user', 'users')}.`;
    }
  }

  async function onInvalidate(ev) {
    ev.preventDefault();
    const result = $('invalidate-result');
    result.textContent = '';
    const tenant = state.me.session.tenantId;
    const byPattern = $('scope-pattern').checked;
    const pattern = $('invalidate-pattern').value.trim();
    let question;
    let path;
    if (byPattern) {
      if (!pattern) {
        result.textContent = 'Enter a pattern, for example customer:* or kpi:*.';
        $('invalidate-pattern').focus();
        return;
      }
      question = `Remove the cached entries of tenant ${tenant} matching "${pattern}"? They are read from the database again on their next use.`;
      path = `/api/admin/cache?pattern=${encodeURIComponent(pattern)}`;
    } else {
      question = `Remove every cached entry of tenant ${tenant}? Each is read from the database again on its next use.`;
      path = '/api/admin/cache';
    }
    if (!(await confirmDialog(question, 'Invalidate'))) {
      result.textContent = 'Nothing was invalidated.';
      return;
    }
    const r = await busy($('invalidate-submit'), () => call('DELETE', path));
    if (r.ok && r.data) {
      result.textContent = `Invalidated ${plural(r.data.invalidated, 'cache entry', 'cache entries')}.`;
      result.dataset.invalidated = String(r.data.invalidated);
      await loadAdmin();
    } else {
      result.textContent = problem(r);
    }
  }

  async function onForceLogout(ev) {
    ev.preventDefault();
    const result = $('force-result');
    result.textContent = '';
    const user = $('force-user').value.trim();
    if (!user) {
      result.textContent = 'Enter the id of a user of your tenant.';
      $('force-user').focus();
      return;
    }
    const self = user === state.me.session.userId;
    const question = `Sign out every session of user "${user}" in tenant ${state.me.session.tenantId}?` +
      (self ? ' That is you: you will be signed out too.' : '');
    if (!(await confirmDialog(question, 'Sign out'))) {
      result.textContent = 'No one was signed out.';
      return;
    }
    const r = await busy($('force-submit'), () => call('DELETE', `/api/admin/users/${encodeURIComponent(user)}/sessions`));
    if (r.ok && r.data) {
      result.textContent = `Signed out ${plural(r.data.destroyed, 'session', 'sessions')} of ${user}.`;
      result.dataset.destroyed = String(r.data.destroyed);
      if (self) signedOut('You signed yourself out everywhere.');
    } else if (r.status === 404) {
      result.textContent = `There is no user "${user}" in your tenant.`;
    } else {
      result.textContent = problem(r);
    }
  }

  // --- confirmation -----------------------------------------------------------------

  /** A modal yes/no question (native <dialog>: focus kept inside, Escape cancels). */
  function confirmDialog(text, okLabel) {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    d.returnValue = '';
    return new Promise((resolve) => {
      d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
      d.showModal();
      $('confirm-cancel').focus();
    });
  }

  // --- wiring -----------------------------------------------------------------------

  /** An event handler whose failures are shown instead of lost. */
  function guard(fn) {
    return (ev) => {
      let p;
      try {
        p = fn(ev);
      } catch (e) {
        failed(e);
        return;
      }
      Promise.resolve(p).catch(failed);
    };
  }

  function failed(e) {
    if (e instanceof SignedOut) return;
    notice(`Something went wrong: ${e && e.message ? e.message : e}`);
    console.error(e);
  }

  function refreshButton(id, load) {
    const b = $(id);
    b.addEventListener('click', guard(() => busy(b, load)));
  }

  async function start() {
    $('signin-form').addEventListener('submit', guard(onSignIn));
    $('totp-form').addEventListener('submit', guard(onVerify));
    $('totp-cancel').addEventListener('click', guard(onCancelTotp));
    $('sign-out').addEventListener('click', guard(onSignOut));
    refreshButton('dashboard-refresh', loadDashboard);
    refreshButton('sessions-refresh', loadSessions);
    refreshButton('admin-refresh', loadAdmin);
    $('end-others').addEventListener('click', guard(onEndOthers));
    $('end-all').addEventListener('click', guard(onEndAll));
    $('invalidate-form').addEventListener('submit', guard(onInvalidate));
    $('force-form').addEventListener('submit', guard(onForceLogout));
    $('confirm-ok').addEventListener('click', () => $('confirm').close('ok'));
    $('confirm-cancel').addEventListener('click', () => $('confirm').close('cancel'));
    document.querySelector('.skip-link').addEventListener('click', (ev) => {
      ev.preventDefault();  // keep the #/view address
      $('main').focus();
    });
    window.addEventListener('hashchange', guard(() => {
      if (!location.hash.startsWith('#/')) return undefined;
      notice('');  // a message belongs to the page it was shown on
      return route();
    }));

    // Who is signed in: the cookie is HttpOnly, so ask the server.
    const me = await api('GET', '/api/auth/me');
    $('loading').hidden = true;
    if (me.ok && me.data && me.data.session) setMe(me.data.session);
    else if (me.status !== 401) notice(problem(me));
    await route();
  }

  guard(start)();
})();
