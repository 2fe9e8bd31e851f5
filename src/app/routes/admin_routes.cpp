// Admin routes of API.md section 4: role admin, own tenant only (the tenant
// always comes from the caller's session, never from the request).
#include <jeweler/app/routes/context.hpp>

#include <spdlog/spdlog.h>

namespace jeweler::app::routes {

namespace {

boost::json::object counters_json(const cache::Counters& k) {
  boost::json::object o;
  o["hits"] = k.hits;
  o["misses"] = k.misses;
  o["hitRatio"] = k.hit_ratio();
  o["sets"] = k.sets;
  o["deletes"] = k.deletes;
  o["invalidations"] = k.invalidations;
  o["errors"] = k.errors;
  return o;
}

asio::awaitable<http::Response> cache_stats(Services& s, http::Request& req) {
  if (auto denied = require_admin(req)) co_return std::move(*denied);
  const Caller& c = caller(req);
  // The tenant's counters summed over every server process on this Redis
  // (this process' pending deltas are written first), and its live entries:
  // any process answers the same (API.md section 4).
  auto st = co_await s.cache.tenant_stats(c.tenant());
  if (!st) co_return from_error(st.error());
  boost::json::object o = counters_json(st->total);
  o["keysHeld"] = st->keys_held;
  boost::json::object by;
  for (const auto& [ns, k] : st->by_namespace)
    if (cache::valid_namespace(ns) && ns.front() != '_') by[ns] = counters_json(k);
  o["namespaces"] = std::move(by);
  co_return http::Response::json(o);
}

asio::awaitable<http::Response> invalidate(Services& s, http::Request& req) {
  if (auto denied = require_admin(req)) co_return std::move(*denied);
  const Caller& c = caller(req);
  Result<std::uint64_t> n = make_error_code(errc::internal);
  auto it = req.query.find("pattern");
  if (it != req.query.end()) {
    if (!cache::valid_pattern(it->second))
      co_return bad_request(
          "pattern must be 1..256 printable ASCII characters without spaces or braces", "pattern");
    n = co_await s.cache.invalidate_pattern(c.tenant(), it->second);
  } else {
    n = co_await s.cache.invalidate_tenant(c.tenant());
  }
  if (!n) co_return from_error(n.error());
  spdlog::info(
      "{{\"msg\":\"cache invalidated\",\"requestId\":\"{}\",\"tenantId\":\"{}\",\"keys\":{}}}",
      req.request_id, c.tenant().str(), *n);
  boost::json::object o;
  o["invalidated"] = *n;
  co_return http::Response::json(o);
}

asio::awaitable<http::Response> session_stats(Services& s, http::Request& req) {
  if (auto denied = require_admin(req)) co_return std::move(*denied);
  const Caller& c = caller(req);
  auto st = co_await s.sessions.tenant_stats(c.tenant());
  if (!st) co_return from_error(st.error());
  co_return http::Response::json(session::to_json(*st));
}

asio::awaitable<http::Response> logout_user(Services& s, http::Request& req) {
  if (auto denied = require_admin(req)) co_return std::move(*denied);
  const Caller& c = caller(req);
  auto user = UserId::parse(req.params.at("userId"));
  if (!user) co_return http::Response::make_error(404, "not_found", "User not found");
  Result<store::User> found = make_error_code(errc::internal);
  co_await s.blocking([&] { found = s.repo().get_user(c.tenant(), *user); });
  if (!found) {
    if (found.error() == make_error_code(errc::not_found))
      co_return http::Response::make_error(404, "not_found", "User not found");
    co_return from_error(found.error());
  }
  auto n = co_await s.sessions.destroy_all(c.tenant(), *user);
  if (!n) co_return from_error(n.error());
  spdlog::info(
      "{{\"msg\":\"force logout\",\"requestId\":\"{}\",\"tenantId\":\"{}\",\"userId\":\"{}\","
      "\"by\":\"{}\",\"destroyed\":{}}}",
      req.request_id, c.tenant().str(), user->str(), c.user().str(), *n);
  boost::json::object o;
  o["destroyed"] = *n;
  co_return http::Response::json(o);
}

}  // namespace

void add_admin_routes(ThreadContext& t, Services& s) {
  const auto o = api_route();
  t.router.get("/api/admin/cache/stats", bind(s, cache_stats), o);
  t.router.del("/api/admin/cache", bind(s, invalidate), o);
  t.router.get("/api/admin/sessions/stats", bind(s, session_stats), o);
  t.router.del("/api/admin/users/{userId}/sessions", bind(s, logout_user), o);
}

}  // namespace jeweler::app::routes
