// What every route handler of the platform API (API.md sections 2-4) works
// with: the process-wide objects (options, statistics, the store), the
// per-thread services (sessions, cache, rate limiter on the thread's Redis
// client), the authenticated caller of a request, and small helpers to read
// JSON bodies and answer in API.md's error shape. Internal to src/app/routes.
#pragma once

#include <jeweler/app/app.hpp>
#include <jeweler/cache/cache.hpp>
#include <jeweler/core/ids.hpp>
#include <jeweler/http/types.hpp>
#include <jeweler/ratelimit/fallback.hpp>
#include <jeweler/ratelimit/limiter.hpp>
#include <jeweler/ratelimit/middleware.hpp>
#include <jeweler/ratelimit/stats.hpp>
#include <jeweler/session/session.hpp>
#include <jeweler/store/blocking.hpp>
#include <jeweler/store/model.hpp>
#include <jeweler/store/repository.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace jeweler::app::routes {

namespace asio = boost::asio;

/// Credentials evaluated (a password verified, a TOTP code compared, a
/// password reset accepted): /metrics jeweler_auth_evaluations_total{kind}.
/// Tests count them black-box to prove the brute-force limits hold.
struct AuthEvaluations {
  std::atomic<std::uint64_t> password{0}, totp{0}, password_reset{0};
};

/// Process-wide, built once by init_process (thread-safe or read-only).
struct Shared {
  std::shared_ptr<AuthEvaluations> auth_evaluations = std::make_shared<AuthEvaluations>();
  std::shared_ptr<const session::Options> session_options;
  std::shared_ptr<session::Stats> session_stats;
  std::shared_ptr<const cache::Options> cache_options;
  std::shared_ptr<cache::Stats> cache_stats;
  std::shared_ptr<const ratelimit::MiddlewareConfig> ratelimit_config;
  std::shared_ptr<ratelimit::Stats> ratelimit_stats;
  std::shared_ptr<ratelimit::Fallback> ratelimit_fallback;
  std::shared_ptr<store::Repository> repo;    // thread-safe, blocking: call through pool
  std::shared_ptr<store::BlockingPool> pool;  // SQLite, Argon2id, file writes
  bool cookie_secure = true;
  std::int64_t upload_limit = 10 << 20;
  /// Key of the digests that name email addresses in logs (LOG_HASH_KEY, or
  /// the data directory's log-hash.key): never logged.
  std::string log_hash_key;
  /// The log's name for an email address: keyed digest (32 hex characters).
  std::string email_digest(std::string_view email) const;
};

struct Services;

/// A read a route's handler will need, sent in the same Redis round trip as
/// the request's session and rate-limit check (docs/routes.md, "Round
/// trips"): the command for the caller's tenant. The handler finds its reply
/// as Prefetched in the request context.
struct Prefetch {
  std::string method;
  std::string path_template;
  redis::Command (*command)(Services&, const TenantId&);
};
struct Prefetched {
  TenantId tenant;  // whose data the reply is: the handler checks it is its caller's
  redis::Reply reply;
};

/// Per thread: services on that thread's redis::Client.
struct Services {
  std::shared_ptr<Shared> shared;
  redis::Client& redis;
  session::SessionService sessions;
  cache::CacheService cache;
  ratelimit::Limiter limiter;
  ratelimit::Middleware ratelimit;

  std::vector<Prefetch> prefetches;  // registered by the route groups

  Services(redis::Client& client, std::shared_ptr<Shared> s);
  /// The prefetch of the request's route, if one is registered.
  const Prefetch* prefetch_for(const http::Request& req) const;

  /// Runs `fn` (a blocking store call) on the blocking pool; the coroutine
  /// resumes on its own thread.
  /// (g++ 12: the std::function is a named local, never a temporary inside
  /// the co_await expression, which that compiler may destroy twice.)
  /// Pass a lambda that captures by reference only (trivially destructible).
  template <class Fn>
  asio::awaitable<void> blocking(Fn fn) {
    std::function<void()> work = std::move(fn);
    co_await shared->pool->run_blocking(std::move(work));
  }
  store::Repository& repo() { return *shared->repo; }
};

/// The authenticated caller, stored in the request context by the
/// authentication middleware (http::Request::context.get<Caller>()).
struct Caller {
  session::Session session;
  std::string token;  // the raw token of this request (never logged)
  const TenantId& tenant() const noexcept { return session.tenant_id; }
  const UserId& user() const noexcept { return session.user_id; }
  bool is_admin() const noexcept { return session.role == "admin"; }
};

/// The caller of a route registered with auth_required (the authorization
/// middleware guarantees it is there before the handler runs).
const Caller& caller(const http::Request& req);

/// RouteOptions::rate_limit_policy of routes whose limits need the request
/// body (login, 2FA verify, password reset): the handler applies them.
inline constexpr std::string_view kLimitsInHandler = "handler";

/// The options of an /api route: rate limited (`api` plus `policy`, if any)
/// and requiring a verified session.
http::RouteOptions api_route(std::string_view policy = {});

/// Rate-limit headers a handler produced itself (login, 2FA, password reset:
/// limits that need the body); the rate-limit middleware copies them onto
/// the response.
struct HandlerRateLimit {
  std::vector<ratelimit::Header> headers;
};

/// The request facts for the rate limiter (peer, X-Forwarded-For, the caller
/// when authenticated, `account` for auth limits). The result refers to
/// `req` and `account`.
ratelimit::RequestFacts facts(http::Request& req, std::string_view account = {});
/// The client address: the socket peer, or X-Forwarded-For from a proxy in
/// TRUST_PROXY.
std::string client_ip(Services& s, http::Request& req);

// --- answers ---------------------------------------------------------------

/// 422 validation_failed with {"field": ...} when a field is named: a
/// well-formed JSON body with missing or wrong fields (API.md section 1).
http::Response validation_failed(std::string message, std::string field = {});
/// 400 bad_request with {"field": ...}: a bad query parameter or header (not
/// JSON, so not validation_failed).
http::Response bad_request(std::string message, std::string field);
/// 400 invalid_json.
http::Response invalid_json();
/// store::Problem -> 422 validation_failed naming the field.
http::Response from_problem(const store::Problem& p);
/// A service/store error -> API error (via http::Response::from_error),
/// with `problem` for invalid_argument when given.
http::Response from_error(const boost::system::error_code& ec,
                          const store::Problem* problem = nullptr);
/// A rate-limit refusal (429 with policy/retryAfter, or 503 when a
/// fail-closed limit cannot reach Redis) with its headers.
http::Response outcome_response(const ratelimit::Outcome& o);
/// 403 forbidden unless the caller is an admin; std::nullopt when allowed.
std::optional<http::Response> require_admin(const http::Request& req);

/// Parses the body as a JSON object: std::nullopt + `error` filled when the
/// body is not JSON (400 invalid_json) or not an object (422).
std::optional<boost::json::object> json_object_body(const http::Request& req,
                                                    http::Response& error);

/// Sets X-Cache: HIT or MISS.
void set_x_cache(http::Response& res, bool hit);

/// Current Unix time in ms (wall clock).
std::int64_t now_ms();
/// The Set-Cookie value that removes the `sid` cookie (same flags as when set).
std::string clear_cookie(const Shared& sh);

/// A route handler of the form `awaitable<Response> fn(Services&, Request&)`
/// bound to this thread's services.
using RouteFn = asio::awaitable<http::Response> (*)(Services&, http::Request&);
http::Handler bind(Services& s, RouteFn fn);

// --- route groups (one file each) -------------------------------------------

/// Authentication middleware (identify), authorization (401/403/2FA) and the
/// rate-limit middleware: fill t.slots.
void install_middleware(ThreadContext& t, Services& s);
/// /api/auth/** (auth_routes.cpp).
void add_auth_routes(ThreadContext& t, Services& s);
/// /api/dashboard/kpi, /api/gold-price, customers, products, invoices,
/// uploads (business_routes.cpp).
void add_business_routes(ThreadContext& t, Services& s);
/// /api/admin/** (admin_routes.cpp).
void add_admin_routes(ThreadContext& t, Services& s);

}  // namespace jeweler::app::routes
