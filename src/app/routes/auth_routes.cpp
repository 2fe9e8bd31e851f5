// /api/auth/** (API.md section 2): login, 2FA verification with token
// rotation, logout, refresh, me, the caller's sessions, force logout,
// password reset, permissions.
#include <jeweler/app/routes/context.hpp>
#include <jeweler/ratelimit/headers.hpp>
#include <jeweler/store/crypto.hpp>
#include <jeweler/store/json.hpp>

#include <spdlog/spdlog.h>
#include <boost/json/array.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>

namespace jeweler::app::routes {

namespace {

constexpr std::size_t kMaxPassword = 1024;
// Longer than the TOTP acceptance window (3 steps of 30 s).
constexpr std::chrono::seconds kTotpUsedTtl{120};

// --- cookies ------------------------------------------------------------------

std::string session_cookie(const Shared& sh, const std::string& token, const session::Session& s) {
  std::int64_t max_age = std::max<std::int64_t>(0, (s.absolute_expiry - now_ms()) / 1000);
  std::string c =
      "sid=" + token + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age);
  if (sh.cookie_secure) c += "; Secure";
  return c;
}

http::Response issued(const Shared& sh, const session::IssuedSession& is) {
  boost::json::object o;
  o["token"] = is.token;
  o["session"] = session::to_json(is.session);
  auto res = http::Response::json(o);
  res.headers.add("Set-Cookie", session_cookie(sh, is.token, is.session));
  return res;
}

// --- body fields ----------------------------------------------------------------

/// A required string field of 1..max bytes; 422 otherwise.
std::optional<std::string> required_string(const boost::json::object& body, std::string_view name,
                                           std::size_t max, http::Response& error) {
  const auto* v = body.if_contains(name);
  if (!v || !v->is_string()) {
    error = validation_failed(std::string(name) + " is required (a string)", std::string(name));
    return std::nullopt;
  }
  const auto& s = v->as_string();
  if (s.empty() || s.size() > max || !store::valid_utf8(s)) {
    error = validation_failed(
        std::string(name) + " must be 1.." + std::to_string(max) + " characters of valid UTF-8",
        std::string(name));
    return std::nullopt;
  }
  return std::string(s);
}

/// An optional string field; 422 when present but not a string of <= max bytes.
bool optional_string(const boost::json::object& body, std::string_view name, std::size_t max,
                     std::optional<std::string>& out, http::Response& error) {
  const auto* v = body.if_contains(name);
  if (!v || v->is_null()) return true;
  if (!v->is_string() || v->as_string().size() > max || !store::valid_utf8(v->as_string())) {
    error = validation_failed(
        std::string(name) + " must be a string of at most " + std::to_string(max) + " characters",
        std::string(name));
    return false;
  }
  out = std::string(v->as_string());
  return true;
}

// --- rate limits applied by handlers ----------------------------------------------

/// Checks `names` (with `account` for the per-account limits); stores the
/// headers for the rate-limit middleware. A refusal is returned as the answer.
asio::awaitable<std::optional<http::Response>> check_limits(Services& s, http::Request& req,
                                                            std::vector<std::string> names,
                                                            std::string_view account,
                                                            ratelimit::Outcome& out) {
  auto f = facts(req, account);
  out = co_await s.ratelimit.apply(f, std::move(names));
  HandlerRateLimit h;
  h.headers = out.headers;
  req.context.set(std::move(h));
  if (!out.allowed()) co_return outcome_response(out);
  co_return std::nullopt;
}

/// A request refused for its body before the handler's own limits could be
/// checked still counts against the `api` limiter and carries its headers
/// (API.md section 3: every /api route is rate limited).
asio::awaitable<http::Response> refuse(Services& s, http::Request& req, http::Response error) {
  ratelimit::Outcome limits;
  std::vector<std::string> names = {"api"};
  if (auto refused = co_await check_limits(s, req, std::move(names), {}, limits))
    co_return std::move(*refused);
  co_return error;
}

/// The admitted attempt succeeded, or ended before its credential was
/// evaluated: gives back the `auth` units it reserved at admission and
/// updates the headers. A failed attempt keeps them (API.md section 3: an
/// attempt holds its unit from admission and gives it back when it succeeds).
asio::awaitable<void> give_back(Services& s, http::Request& req, ratelimit::Outcome& limits) {
  co_await s.ratelimit.release(limits);
  HandlerRateLimit h;
  h.headers = limits.headers;
  req.context.set(std::move(h));
}

// --- handlers ----------------------------------------------------------------------

struct LoginInput {
  std::string email, password;
  std::optional<TenantId> tenant;
  std::optional<std::string> device_id;
};

/// The login body; std::nullopt + `error` (400/422) when it is not usable.
std::optional<LoginInput> parse_login(const http::Request& req, http::Response& error) {
  auto body = json_object_body(req, error);
  if (!body) return std::nullopt;
  auto email = required_string(*body, "email", 254, error);
  if (!email) return std::nullopt;
  auto password = required_string(*body, "password", kMaxPassword, error);
  if (!password) return std::nullopt;
  LoginInput in{std::move(*email), std::move(*password), std::nullopt, std::nullopt};
  std::optional<std::string> tenant_text;
  if (!optional_string(*body, "tenantId", 64, tenant_text, error)) return std::nullopt;
  if (!optional_string(*body, "deviceId", session::limits::device_id, in.device_id, error))
    return std::nullopt;
  if (tenant_text) {
    in.tenant = TenantId::parse(*tenant_text);
    if (!in.tenant) {
      error = validation_failed("tenantId is not a valid tenant id", "tenantId");
      return std::nullopt;
    }
  }
  return in;
}

asio::awaitable<http::Response> login(Services& s, http::Request& req) {
  http::Response error;
  auto input = parse_login(req, error);
  if (!input) co_return co_await refuse(s, req, std::move(error));
  const std::string& password = input->password;
  const std::optional<TenantId>& tenant = input->tenant;
  const std::optional<std::string>& device_id = input->device_id;
  const std::string account = store::normalize_email(input->email);

  // Admission takes one `auth` unit per IP and per account atomically
  // (across threads and processes), before the password is verified.
  ratelimit::Outcome limits;
  std::vector<std::string> names = {"api", "auth"};
  if (auto refused = co_await check_limits(s, req, std::move(names), account, limits))
    co_return std::move(*refused);

  // Same work whether the account exists or not: an unknown email (or one
  // that is ambiguous across tenants) is verified against a dummy hash.
  Result<store::User> user = make_error_code(errc::not_found);
  bool ok = false;
  bool evaluated = false;
  co_await s.blocking([&] {
    user = s.repo().find_login_user(tenant, account);
    if (!user && is_unavailable(user.error())) return;
    evaluated = true;
    if (user)
      ok = store::crypto::verify_password(password, user->password_hash);
    else
      store::crypto::verify_password_dummy(password);
  });
  if (evaluated) s.shared->auth_evaluations->password.fetch_add(1, std::memory_order_relaxed);
  if (!evaluated) {
    co_await give_back(s, req, limits);
    co_return http::Response::from_error(user.error());
  }
  if (!ok) {  // the attempt keeps its unit
    spdlog::info("{{\"msg\":\"login failed\",\"requestId\":\"{}\",\"account\":\"{}\"}}",
                 req.request_id, s.shared->email_digest(account));
    co_return http::Response::make_error(401, "unauthorized", "Invalid email or password");
  }
  co_await give_back(s, req, limits);  // successful logins do not consume

  session::NewSession in{.tenant_id = user->tenant_id,
                         .user_id = user->id,
                         .email = user->email,
                         .role = std::string(store::to_string(user->role))};
  in.device.user_agent = std::string(req.header("User-Agent").value_or(""));
  // The same normalisation as every later request's (SessionService does it
  // again, idempotently): never a cut inside a character.
  session::normalize_user_agent(in.device.user_agent);
  in.device.ip = client_ip(s, req);
  in.device.device_id = device_id.value_or("");
  in.two_factor_verified = !user->two_factor_enabled();
  auto created = co_await s.sessions.create(std::move(in));
  if (!created) co_return from_error(created.error());
  spdlog::info(
      "{{\"msg\":\"login\",\"requestId\":\"{}\",\"userId\":\"{}\",\"tenantId\":\"{}\","
      "\"sessionId\":\"{}\",\"twoFactorPending\":{}}}",
      req.request_id, user->id.str(), user->tenant_id.str(), created->session.id,
      user->two_factor_enabled() ? "true" : "false");
  co_return issued(*s.shared, *created);
}

/// The 2FA body's code (6 digits); std::nullopt + `error` otherwise.
std::optional<std::string> parse_code(const http::Request& req, http::Response& error) {
  auto body = json_object_body(req, error);
  if (!body) return std::nullopt;
  auto code = required_string(*body, "code", 16, error);
  if (!code) return std::nullopt;
  if (code->size() != 6 ||
      !std::all_of(code->begin(), code->end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    error = validation_failed("code must be 6 digits", "code");
    return std::nullopt;
  }
  return code;
}

asio::awaitable<http::Response> verify_2fa(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  http::Response error;
  auto code = parse_code(req, error);
  if (!code) co_return co_await refuse(s, req, std::move(error));

  ratelimit::Outcome limits;
  std::vector<std::string> names = {"api", "auth"};
  if (auto refused = co_await check_limits(s, req, std::move(names), c.session.email, limits))
    co_return std::move(*refused);

  // Not evaluated (no code compared): the reserved units are given back.
  Result<store::User> user = make_error_code(errc::not_found);
  co_await s.blocking([&] { user = s.repo().get_user(c.tenant(), c.user()); });
  if (!user) {
    co_await give_back(s, req, limits);
    co_return from_error(user.error());
  }
  if (!user->two_factor_enabled()) {
    co_await give_back(s, req, limits);
    co_return http::Response::make_error(409, "conflict",
                                         "Two-factor authentication is not enabled for this user");
  }
  if (c.session.two_factor_verified) {
    co_await give_back(s, req, limits);
    co_return http::Response::make_error(409, "conflict",
                                         "This session has already passed two-factor verification");
  }
  s.shared->auth_evaluations->totp.fetch_add(1, std::memory_order_relaxed);
  auto step = store::crypto::verify_totp(*user->totp_secret, *code, now_ms() / 1000);
  if (!step)  // the attempt keeps its unit
    co_return http::Response::make_error(401, "unauthorized", "Invalid two-factor code");
  // A code is accepted once (RFC 6238 section 5.2): the first use of (user,
  // time step) is recorded atomically (SET NX) in the session key space,
  // which no cache invalidation reaches, for longer than the acceptance
  // window; a replay of an observed code is a failure. No marker stored
  // (OOM, outage): 503, never accepted.
  auto first_use = co_await s.sessions.claim_totp_step(c.tenant(), c.user(), *step,
                                                       std::chrono::milliseconds(kTotpUsedTtl));
  if (!first_use) co_return from_error(first_use.error());
  if (!*first_use)  // a replay is a failed attempt: it keeps its unit
    co_return http::Response::make_error(401, "unauthorized",
                                         "This two-factor code was already used");
  co_await give_back(s, req, limits);
  session::SessionPatch patch;
  patch.two_factor_verified = true;
  auto rotated = co_await s.sessions.rotate(c.token, std::move(patch));
  if (!rotated) co_return from_error(rotated.error());
  if (!*rotated) co_return http::Response::make_error(401, "unauthorized", "Session ended");
  co_return issued(*s.shared, **rotated);
}

asio::awaitable<http::Response> logout(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  auto r = co_await s.sessions.destroy(c.token);
  if (!r) co_return from_error(r.error());
  auto res = http::Response::no_content();
  res.headers.add("Set-Cookie", clear_cookie(*s.shared));
  co_return res;
}

asio::awaitable<http::Response> refresh(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  auto r = co_await s.sessions.extend(c.token);
  if (!r) co_return from_error(r.error());
  if (!*r) co_return http::Response::make_error(401, "unauthorized", "Session ended");
  boost::json::object o;
  o["session"] = session::to_json(**r);
  co_return http::Response::json(o);
}

// Public profiles (store::to_json of a user: id, tenantId, email, role,
// twoFactorEnabled) as JSON text, kept per thread for one second: a client
// polling GET /api/auth/me then costs no store read (a hop to the blocking
// pool and back for each request). No route changes a user; a change made
// to the database by other means shows within the second. The password hash
// and TOTP secret are not kept. At most 4096 users, then it starts over.
struct RecentProfile {
  std::string json;
  std::chrono::steady_clock::time_point at;
};
constexpr std::chrono::seconds kProfileFreshFor{1};

// Not inlined: the thread's map is looked up anew on each side of a co_await.
[[gnu::noinline]] std::unordered_map<std::string, RecentProfile>& recent_profiles() {
  thread_local std::unordered_map<std::string, RecentProfile> profiles;
  return profiles;
}

std::optional<std::string> fresh_profile(const std::string& key) {
  auto& profiles = recent_profiles();
  auto it = profiles.find(key);
  if (it == profiles.end() || std::chrono::steady_clock::now() - it->second.at >= kProfileFreshFor)
    return std::nullopt;
  return it->second.json;
}

void remember_profile(const std::string& key, const std::string& json) {
  auto& profiles = recent_profiles();
  if (profiles.size() >= 4096 && !profiles.contains(key)) profiles.clear();
  profiles[key] = RecentProfile{json, std::chrono::steady_clock::now()};
}

asio::awaitable<http::Response> me(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  std::string key = c.tenant().str() + '\n' + c.user().str();
  std::string profile;
  if (auto fresh = fresh_profile(key)) {
    profile = std::move(*fresh);
  } else {
    Result<store::User> user = make_error_code(errc::not_found);
    co_await s.blocking([&] { user = s.repo().get_user(c.tenant(), c.user()); });
    if (!user) {
      if (user.error() == make_error_code(errc::not_found))  // deleted since login
        co_return http::Response::make_error(401, "unauthorized", "Account not found");
      co_return from_error(user.error());
    }
    profile = http::to_json_text(store::to_json(*user));
    remember_profile(key, profile);
  }
  std::string body = "{\"session\":";
  body.reserve(512);
  body += http::to_json_text(session::to_json(c.session));
  body += ",\"user\":";
  body += profile;
  body += '}';
  co_return http::Response::json_text(std::move(body));
}

asio::awaitable<http::Response> list_sessions(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  auto r = co_await s.sessions.list(c.tenant(), c.user());
  if (!r) co_return from_error(r.error());
  co_return http::Response::json(session::to_sessions_json(*r, c.session.id));
}

asio::awaitable<http::Response> delete_session(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  const std::string& id = req.params.at("id");
  if (id.empty() || id.size() > 64)
    co_return http::Response::make_error(404, "not_found", "No such session");
  auto r = co_await s.sessions.destroy_by_id(c.tenant(), c.user(), id);
  if (!r) {
    if (r.error() == make_error_code(errc::invalid_argument))
      co_return http::Response::make_error(404, "not_found", "No such session");
    co_return from_error(r.error());
  }
  if (!*r) co_return http::Response::make_error(404, "not_found", "No such session");
  co_return http::Response::no_content();
}

asio::awaitable<http::Response> delete_all_sessions(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  bool keep = false;
  if (auto it = req.query.find("keepCurrent"); it != req.query.end()) {
    if (it->second == "true" || it->second == "1")
      keep = true;
    else if (it->second == "false" || it->second == "0")
      keep = false;
    else
      co_return bad_request("keepCurrent must be true or false", "keepCurrent");
  }
  std::optional<std::string> keep_id;
  if (keep) keep_id = c.session.id;
  auto r = co_await s.sessions.destroy_all(c.tenant(), c.user(), keep_id);
  if (!r) co_return from_error(r.error());
  boost::json::object o;
  o["destroyed"] = *r;
  auto res = http::Response::json(o);
  if (!keep) res.headers.add("Set-Cookie", clear_cookie(*s.shared));
  co_return res;
}

/// The password-reset body's email; std::nullopt + `error` otherwise.
std::optional<std::string> parse_reset_email(const http::Request& req, http::Response& error) {
  auto body = json_object_body(req, error);
  if (!body) return std::nullopt;
  auto email = required_string(*body, "email", 254, error);
  if (!email) return std::nullopt;
  if (!store::valid_email(*email)) {
    error = validation_failed("email is not an email address", "email");
    return std::nullopt;
  }
  return email;
}

asio::awaitable<http::Response> password_reset(Services& s, http::Request& req) {
  http::Response error;
  auto email = parse_reset_email(req, error);
  if (!email) co_return co_await refuse(s, req, std::move(error));
  const std::string account = store::normalize_email(*email);
  ratelimit::Outcome limits;
  std::vector<std::string> names = {"api", "passwordReset"};
  if (auto refused = co_await check_limits(s, req, std::move(names), account, limits))
    co_return std::move(*refused);
  // Every admitted request counts (atomically, at admission) and is evaluated.
  s.shared->auth_evaluations->password_reset.fetch_add(1, std::memory_order_relaxed);
  // The reset itself (mail with a one-time link) is out of scope: logged
  // with a digest of the address, never the address.
  spdlog::info("{{\"msg\":\"password reset requested\",\"requestId\":\"{}\",\"account\":\"{}\"}}",
               req.request_id, s.shared->email_digest(account));
  boost::json::object o;
  o["status"] = "accepted";
  o["message"] = "If an account exists for this address, a reset link has been sent";
  co_return http::Response::json(o, 202);
}

asio::awaitable<http::Response> permissions(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  cache::PermissionsLoader loader = [&s, &c]() -> asio::awaitable<Result<cache::Permissions>> {
    Result<std::vector<std::string>> p = make_error_code(errc::internal);
    co_await s.blocking([&] { p = s.repo().user_permissions(c.tenant(), c.user()); });
    if (!p) co_return p.error();
    co_return std::move(*p);
  };
  auto r = co_await s.cache.get_or_set_permissions(c.tenant(), c.user(), loader);
  if (!r) co_return from_error(r.error());
  boost::json::object o;
  o["role"] = c.session.role;
  o["permissions"] = cache::to_json(r->value);
  auto res = http::Response::json(o);
  set_x_cache(res, r->hit());
  co_return res;
}

}  // namespace

void add_auth_routes(ThreadContext& t, Services& s) {
  auto open = api_route(kLimitsInHandler);  // no session needed
  open.auth_required = false;
  t.router.post("/api/auth/login", bind(s, login), open);
  t.router.post("/api/auth/password-reset", bind(s, password_reset), open);

  auto before_2fa = api_route();  // reachable before the second factor
  before_2fa.allow_unverified_2fa = true;
  t.router.post("/api/auth/logout", bind(s, logout), before_2fa);
  t.router.get("/api/auth/me", bind(s, me), before_2fa);
  auto verify = api_route(kLimitsInHandler);
  verify.allow_unverified_2fa = true;
  t.router.post("/api/auth/2fa/verify", bind(s, verify_2fa), verify);

  const auto authed = api_route();
  t.router.post("/api/auth/refresh", bind(s, refresh), authed);
  t.router.get("/api/auth/sessions", bind(s, list_sessions), authed);
  t.router.del("/api/auth/sessions", bind(s, delete_all_sessions), authed);
  t.router.del("/api/auth/sessions/{id}", bind(s, delete_session), authed);
  t.router.get("/api/auth/permissions", bind(s, permissions), authed);
}

}  // namespace jeweler::app::routes
