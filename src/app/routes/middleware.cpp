// The three middleware of the platform API, in the order build_pipeline runs
// them (docs/routes.md):
//
//   authenticate (slot)  identify the caller from `Authorization: Bearer` or
//                        the `sid` cookie; Redis down or user-agent change
//                        (session destroyed) -> authorize answers 503 / 401,
//                        after the rate limiter (its headers on every /api
//                        response). Never answers 401
//                        for a missing/unknown token itself, so that the rate
//                        limiter still counts (by IP) anonymous requests.
//   rate_limit (slot)    the `api` limiter (+ api-tenant) and the route's own
//                        limiter (`invoice`, `upload`); limits that need the
//                        body (auth, passwordReset) are applied by the handler
//                        (RouteOptions::rate_limit_policy == "handler").
//   authorize (extra)    503 when the session could not be read, 401
//                        without a session, 403 two_factor_required before
//                        2FA verification.
#include <jeweler/app/routes/context.hpp>
#include <jeweler/http/middleware.hpp>
#include <jeweler/http/origin.hpp>

#include <spdlog/spdlog.h>

namespace jeweler::app::routes {

namespace {

constexpr std::size_t kTokenLength = 43;

bool token_shaped(std::string_view t) noexcept {
  if (t.size() != kTokenLength) return false;
  for (char c : t) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// The request authenticates with `Authorization: Bearer` (then the cookie,
/// if any, is not used).
bool bearer_request(const http::Request& req) {
  auto auth = req.header("Authorization");
  if (!auth) return false;
  std::string_view a = trim(*auth);
  return a.size() > 7 && http::iequals(a.substr(0, 7), "Bearer ");
}

/// The token of the request: `Authorization: Bearer <t>` first, else the
/// `sid` cookie. Empty when none is present.
std::string request_token(const http::Request& req) {
  if (auto auth = req.header("Authorization")) {
    std::string_view a = trim(*auth);
    if (a.size() > 7 && http::iequals(a.substr(0, 7), "Bearer "))
      return std::string(trim(a.substr(7)));
  }
  for (const auto& [name, value] : req.headers.all()) {
    if (!http::iequals(name, "Cookie")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == "sid")
        return std::string(trim(pair.substr(eq + 1)));
    }
  }
  return {};
}

const http::RouteOptions* route_options(const http::Request& req) {
  return req.route ? &req.route->options : nullptr;
}

/// Set by authenticate when it ended a session whose user agent changed; the
/// request then still passes the rate limiter (every /api response is limited
/// and carries the headers) before authorize answers 401.
struct SessionEndedByClientChange {};

/// Set by authenticate for an unsafe request from another site that does
/// not authenticate with a Bearer token (API.md section 2): authorize
/// answers 403, after the rate limiter.
struct CrossSiteRefused {};

/// Set by authenticate when the session could not be read (Redis down):
/// authorize answers 503 with it.
struct SessionUnavailable {
  boost::system::error_code error;
};

/// The limits the rate-limit slot checks on route `o`.
std::vector<std::string> limiter_names(const http::RouteOptions& o) {
  std::vector<std::string> names;
  names.emplace_back("api");
  if (!o.rate_limit_policy.empty()) names.push_back(o.rate_limit_policy);
  return names;
}

/// The rate-limit outcome authenticate obtained for the session's owner in
/// the session's round trip; rate_limit uses it when the session confirms
/// that owner.
struct EarlyLimits {
  ratelimit::Outcome outcome;
  TenantId tenant;
  UserId user;
};

/// The session of `token`. When this thread validated the token before
/// (SessionService::begin_get), its owner is known: the owner's rate-limit
/// check and the route's prefetch go in the same pipeline, so that a
/// request costs one Redis round trip (docs/routes.md, "Round trips").
asio::awaitable<Result<std::optional<session::Lookup>>> identify(Services& s, http::Request& req,
                                                                 const http::RouteOptions& o,
                                                                 const std::string& token,
                                                                 const session::DeviceSeen& seen) {
  const bool limited = o.rate_limited && o.rate_limit_policy != kLimitsInHandler;
  const Prefetch* prefetch = s.prefetch_for(req);
  redis::Pipeline p;
  auto pending = (limited || prefetch) ? s.sessions.begin_get(token, seen, p)
                                       : std::optional<session::SessionService::PendingGet>{};
  if (!pending) co_return co_await s.sessions.get(token, seen);

  const TenantId tenant = pending->session.tenant_id;
  const UserId user = pending->session.user_id;
  std::optional<ratelimit::Middleware::Pending> limits;
  if (limited) {
    auto f = facts(req);
    f.user = user;
    f.tenant = tenant;
    limits = s.ratelimit.begin(f, limiter_names(o), p);
  }
  std::optional<std::size_t> prefetch_at;
  if (prefetch) {
    prefetch_at = p.size();
    p.add(prefetch->command(s, tenant));
  }
  auto opts = limits ? s.ratelimit.exec_options() : redis::ExecOptions{.idempotent = true};
  auto replies = co_await s.redis.exec(std::move(p), opts);

  if (limits) {
    auto outcome = co_await s.ratelimit.end(*limits, replies);
    req.context.set(EarlyLimits{std::move(outcome), tenant, user});
  }
  if (prefetch_at && replies && replies->size() > *prefetch_at)
    req.context.set(Prefetched{tenant, std::move((*replies)[*prefetch_at])});
  if (auto quick = s.sessions.end_get(*pending, replies)) co_return std::move(*quick);
  co_return co_await s.sessions.get(token, seen);  // changed meanwhile, or the batch failed
}

http::Response unauthorized(std::string message = "Authentication required") {
  return http::Response::make_error(401, "unauthorized", std::move(message));
}

void add_headers(http::Response& res, const std::vector<ratelimit::Header>& headers) {
  for (const auto& h : headers) res.headers.set(h.name, h.value);
}

http::Middleware authenticate(Services& s, std::shared_ptr<const http::OriginPolicy> origins) {
  return [&s, origins](http::Request& req, http::Next next) -> asio::awaitable<http::Response> {
    const auto* o = route_options(req);
    // Cross-site request check (CSRF, API.md section 2; docs/server.md):
    // an unsafe method whose credential is ambient (the sid cookie) or not
    // there yet (login: a login CSRF) is refused when another site sent it.
    // A Bearer token is never sent by a browser on its own: exempt.
    if (o && http::unsafe_method(req.method) && !bearer_request(req) &&
        http::cross_site(req, *origins)) {
      req.context.set(CrossSiteRefused{});
      co_return co_await next(req);  // rate-limited by IP, then 403 from authorize
    }
    if (!o || !o->auth_required) co_return co_await next(req);
    std::string token = request_token(req);
    if (!token_shaped(token)) co_return co_await next(req);  // authorize answers 401

    session::DeviceSeen seen;
    seen.user_agent = std::string(req.header("User-Agent").value_or(""));
    seen.ip = client_ip(s, req);
    auto found = co_await identify(s, req, *o, token, seen);
    if (!found) {
      if (!is_unavailable(found.error()))
        spdlog::error("{{\"msg\":\"session lookup failed\",\"requestId\":\"{}\",\"error\":\"{}\"}}",
                      req.request_id, found.error().message());
      // Never "logged out" because Redis had a blip: authorize answers 503
      // (retry), after the rate limiter (by IP) has added its headers.
      req.context.set(SessionUnavailable{found.error()});
      co_return co_await next(req);
    }
    if (!*found) co_return co_await next(req);
    auto& lookup = **found;
    if (lookup.user_agent_changed) {
      // Possible hijack (API.md section 2): end the session, answer 401.
      auto destroyed = co_await s.sessions.destroy(token);
      (void)destroyed;
      spdlog::warn(
          "{{\"msg\":\"session destroyed: user agent "
          "changed\",\"requestId\":\"{}\",\"userId\":\"{}\","
          "\"tenantId\":\"{}\",\"sessionId\":\"{}\"}}",
          req.request_id, lookup.session.user_id.str(), lookup.session.tenant_id.str(),
          lookup.session.id);
      req.context.set(SessionEndedByClientChange{});
      co_return co_await next(req);  // rate-limited by IP, then 401 from authorize
    }
    if (lookup.ip_changed)
      spdlog::info(
          "{{\"msg\":\"session used from a new IP\",\"requestId\":\"{}\",\"userId\":\"{}\","
          "\"tenantId\":\"{}\",\"sessionId\":\"{}\"}}",
          req.request_id, lookup.session.user_id.str(), lookup.session.tenant_id.str(),
          lookup.session.id);
    req.context.user_id = lookup.session.user_id.str();
    req.context.tenant_id = lookup.session.tenant_id.str();
    req.context.role = lookup.session.role;
    req.context.set(Caller{std::move(lookup.session), std::move(token)});
    co_return co_await next(req);
  };
}

/// The `api` limiter alone, for the caller (the user when authenticated,
/// else the client IP).
asio::awaitable<ratelimit::Outcome> api_limits(Services& s, http::Request& req) {
  auto f = facts(req);
  std::vector<std::string> names{"api"};  // a local: see the g++ 12 note in docs/ratelimit.md
  co_return co_await s.ratelimit.apply(f, std::move(names));
}

http::Middleware rate_limit(Services& s) {
  return [&s](http::Request& req, http::Next next) -> asio::awaitable<http::Response> {
    const auto* o = route_options(req);
    // No route (404, 405, a malformed path): still an /api/** request,
    // limited by `api` on the client IP without a session lookup, so a scan
    // of unknown paths spends a budget like any other request.
    const bool unrouted_api = !o && http::is_api_request(req);
    if (!unrouted_api && (!o || !o->rate_limited)) co_return co_await next(req);
    if (o && o->rate_limit_policy == kLimitsInHandler) {
      auto res = co_await next(req);
      if (const auto* h = req.context.get<HandlerRateLimit>()) {
        add_headers(res, h->headers);
        co_return res;
      }
      // Answered before the handler checked its limits (401 from authorize
      // on 2fa/verify without a session, 413 for the body): still an /api
      // request, counted by `api` and carrying its headers.
      auto outcome = co_await api_limits(s, req);
      if (!outcome.allowed()) co_return outcome_response(outcome);
      add_headers(res, outcome.headers);
      co_return res;
    }
    ratelimit::Outcome outcome;
    auto* early = req.context.get<EarlyLimits>();
    const auto* c = req.context.get<Caller>();
    if (unrouted_api) {
      outcome = co_await api_limits(s, req);
    } else if (early && c && c->tenant() == early->tenant && c->user() == early->user) {
      outcome = std::move(early->outcome);
    } else {
      // No session, or not the one expected (then the early check counted
      // once for the expected owner too: the rare price of the batch).
      auto f = facts(req);
      auto names = limiter_names(*o);  // a local: see the g++ 12 note in docs/ratelimit.md
      outcome = co_await s.ratelimit.apply(f, std::move(names));
    }
    if (!outcome.allowed()) {
      auto res = outcome_response(outcome);
      co_return res;
    }
    auto res = co_await next(req);
    add_headers(res, outcome.headers);
    co_return res;
  };
}

http::Middleware authorize(std::shared_ptr<const Shared> shared) {
  return [shared](http::Request& req, http::Next next) -> asio::awaitable<http::Response> {
    const auto* o = route_options(req);
    if (http::unsafe_method(req.method) && req.context.get<CrossSiteRefused>())
      co_return http::Response::make_error(403, "forbidden",
                                           "Cross-site request refused (origin not allowed)");
    if (!o || !o->auth_required) co_return co_await next(req);
    const auto* c = req.context.get<Caller>();
    if (!c) {
      if (const auto* u = req.context.get<SessionUnavailable>())
        co_return http::Response::from_error(u->error);
      if (req.context.get<SessionEndedByClientChange>()) {
        // The session is gone: a cookie naming it is cleared too.
        auto res = unauthorized("Session ended: the client changed");
        res.headers.add("Set-Cookie", clear_cookie(*shared));
        co_return res;
      }
      co_return unauthorized();
    }
    if (!c->session.two_factor_verified && !o->allow_unverified_2fa)
      co_return http::Response::make_error(
          403, "two_factor_required",
          "Two-factor verification required: POST /api/auth/2fa/verify");
    co_return co_await next(req);
  };
}

}  // namespace

http::Response outcome_response(const ratelimit::Outcome& o) {
  boost::json::object extra;
  http::Response res;
  if (o.status == 429) {
    extra["policy"] = o.policy;
    extra["retryAfter"] = o.retry_after;
    res = http::Response::make_error(429, "rate_limited", o.message, std::move(extra));
  } else {
    res = http::Response::make_error(503, "service_unavailable", o.message);
  }
  add_headers(res, o.headers);
  return res;
}

void install_middleware(ThreadContext& t, Services& s) {
  t.slots.authenticate =
      authenticate(s, std::make_shared<const http::OriginPolicy>(t.config.origins));
  t.slots.rate_limit = rate_limit(s);
  t.slots.extra.push_back(authorize(s.shared));
}

}  // namespace jeweler::app::routes
