// Helpers shared by the route files: per-thread services, request facts for
// the rate limiter, JSON bodies and API.md error answers.
#include <jeweler/app/routes/context.hpp>
#include <jeweler/store/crypto.hpp>

#include <boost/json/parse.hpp>

#include <cctype>
#include <chrono>
#include <stdexcept>

namespace jeweler::app::routes {

Services::Services(redis::Client& client, std::shared_ptr<Shared> s)
    : shared(std::move(s)),
      redis(client),
      sessions(client, shared->session_options, shared->session_stats),
      cache(client, shared->cache_options, shared->cache_stats),
      limiter(client, shared->ratelimit_stats, shared->ratelimit_fallback),
      ratelimit(limiter, shared->ratelimit_config) {}

const Prefetch* Services::prefetch_for(const http::Request& req) const {
  if (!req.route) return nullptr;
  for (const auto& p : prefetches)
    if (p.path_template == req.route->path_template && p.method == req.route->method) return &p;
  return nullptr;
}

std::string Shared::email_digest(std::string_view email) const {
  return store::crypto::keyed_digest_hex(log_hash_key, email);
}

std::string clear_cookie(const Shared& sh) {
  std::string c = "sid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
  if (sh.cookie_secure) c += "; Secure";
  return c;
}

const Caller& caller(const http::Request& req) {
  const auto* c = req.context.get<Caller>();
  // Only reachable through a route registered without auth_required: a bug.
  if (!c) throw std::logic_error("route needs auth_required");
  return *c;
}

namespace {

/// Every X-Forwarded-For line of the request joined with ",", computed once
/// per request (authentication and rate limiting both need it).
struct ForwardedFor {
  std::string value;
};

const std::string& forwarded_for(http::Request& req) {
  if (const auto* f = req.context.get<ForwardedFor>()) return f->value;
  ForwardedFor joined;
  for (const auto& [name, value] : req.headers.all()) {
    if (!http::iequals(name, "X-Forwarded-For")) continue;
    if (!joined.value.empty()) joined.value += ',';
    joined.value += value;
  }
  req.context.set(std::move(joined));
  return req.context.get<ForwardedFor>()->value;
}

}  // namespace

ratelimit::RequestFacts facts(http::Request& req, std::string_view account) {
  ratelimit::RequestFacts f;
  f.peer = req.peer_address;
  f.x_forwarded_for = forwarded_for(req);
  if (const auto* c = req.context.get<Caller>()) {
    f.user = c->user();
    f.tenant = c->tenant();
  }
  f.account = account;
  return f;
}

std::string client_ip(Services& s, http::Request& req) {
  return s.ratelimit.client_ip(facts(req));
}

http::Response validation_failed(std::string message, std::string field) {
  boost::json::object extra;
  if (!field.empty()) extra["field"] = field;
  return http::Response::make_error(422, "validation_failed", std::move(message), std::move(extra));
}

http::Response bad_request(std::string message, std::string field) {
  boost::json::object extra;
  extra["field"] = std::move(field);
  return http::Response::make_error(400, "bad_request", std::move(message), std::move(extra));
}

http::Response invalid_json() {
  return http::Response::make_error(400, "invalid_json", "The request body is not valid JSON");
}

http::Response from_problem(const store::Problem& p) {
  return validation_failed(p.message.empty() ? "Invalid input" : p.message, p.field);
}

namespace {
/// `status` + `code` with the problem's field, if any, as `field`.
http::Response problem_error(unsigned status, std::string code, std::string message,
                             const store::Problem& p) {
  boost::json::object extra;
  if (!p.field.empty()) extra["field"] = p.field;
  return http::Response::make_error(status, std::move(code), std::move(message), std::move(extra));
}
}  // namespace

http::Response from_error(const boost::system::error_code& ec, const store::Problem* problem) {
  if (ec == make_error_code(errc::invalid_argument))
    return problem && !problem->message.empty() ? from_problem(*problem)
                                                : validation_failed("Invalid input");
  const bool described = problem && !problem->message.empty();
  // An id in the body that is not one of the tenant's (POST /api/invoices).
  if (ec == make_error_code(errc::not_found) && described) {
    std::string message = problem->message;
    message[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(message[0])));
    return problem_error(404, "not_found", std::move(message), *problem);
  }
  if (ec == make_error_code(errc::conflict) && described)
    return problem_error(409, "conflict", problem->message, *problem);
  return http::Response::from_error(ec);
}

std::optional<http::Response> require_admin(const http::Request& req) {
  if (caller(req).is_admin()) return std::nullopt;
  return http::Response::make_error(403, "forbidden", "This route is for administrators");
}

std::optional<boost::json::object> json_object_body(const http::Request& req,
                                                    http::Response& error) {
  // API.md section 1: a JSON route takes application/json only (a
  // cross-site form can send text/plain without a preflight: CSRF).
  auto type = req.header("Content-Type");
  if (type ? !http::is_json_media_type(*type) : !req.body.empty()) {
    error = http::Response::make_error(415, "unsupported_media_type",
                                       "The request body must be application/json");
    return std::nullopt;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(req.body, ec);
  if (ec) {
    error = invalid_json();
    return std::nullopt;
  }
  if (!v.is_object()) {
    error = validation_failed("The request body must be a JSON object");
    return std::nullopt;
  }
  return std::move(v.as_object());
}

void set_x_cache(http::Response& res, bool hit) {
  res.headers.set("X-Cache", hit ? "HIT" : "MISS");
}

http::RouteOptions api_route(std::string_view policy) {
  http::RouteOptions o;
  o.rate_limited = true;
  o.auth_required = true;
  o.rate_limit_policy = std::string(policy);
  return o;
}

http::Handler bind(Services& s, RouteFn fn) {
  return [&s, fn](http::Request& req) { return fn(s, req); };
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace jeweler::app::routes
