// The web console's routes (docs/console.md): a redirect from / and the
// embedded files. Each answer is a lookup in a sorted table and a copy of the
// file: no Redis, no store, no session.
#include <jeweler/app/console/assets.hpp>
#include <jeweler/app/console/console.hpp>

#include <algorithm>
#include <string>

namespace jeweler::app::console {

namespace {

constexpr std::string_view kIndex = "index.html";
constexpr std::string_view kHome = "/console/";

/// Revalidated on every use (the ETag makes that a 304): a new binary's
/// files show at once, with no stale mix of old and new scripts.
constexpr std::string_view kCacheControl = "no-cache";

http::Response redirect(std::string_view location) {
  http::Response res;
  res.status = 302;
  res.headers.set("Location", std::string(location));
  res.headers.set("Cache-Control", std::string(kCacheControl));
  add_security_headers(res);
  return res;
}

http::Response serve(const http::Request& req, std::string_view name) {
  const Asset* a = find_asset(name);
  if (!a) {
    auto res = http::Response::make_error(404, "not_found", "No such console file");
    add_security_headers(res);
    return res;
  }
  http::Response res;
  res.headers.set("ETag", std::string(a->etag));
  res.headers.set("Cache-Control", std::string(kCacheControl));
  add_security_headers(res);
  if (auto inm = req.header("If-None-Match"); inm && etag_matches(*inm, a->etag)) {
    res.status = 304;
    return res;
  }
  res.headers.set("Content-Type", std::string(a->content_type));
  res.body.assign(a->body);
  return res;
}

}  // namespace

const Asset* find_asset(std::string_view name) noexcept {
  auto all = assets();
  auto it = std::lower_bound(all.begin(), all.end(), name,
                             [](const Asset& a, std::string_view n) { return a.name < n; });
  return it != all.end() && it->name == name ? &*it : nullptr;
}

void add_security_headers(http::Response& res) {
  res.headers.set("Content-Security-Policy", std::string(kContentSecurityPolicy));
  res.headers.set("X-Content-Type-Options", "nosniff");
  res.headers.set("Referrer-Policy", "same-origin");
  res.headers.set("X-Frame-Options", "DENY");
  res.headers.set("Cross-Origin-Opener-Policy", "same-origin");
  res.headers.set("Cross-Origin-Resource-Policy", "same-origin");
  res.headers.set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()");
}

bool etag_matches(std::string_view list, std::string_view etag) noexcept {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  if (trim(list) == "*") return true;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view tag = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);  // weak comparison (RFC 9110 13.1.2)
    if (tag == etag) return true;
  }
  return false;
}

RouteModule module() {
  RouteModule m;
  m.name = "console";
  m.init_thread = [](ThreadContext& t) {
    // Not /api routes: no authentication, no rate limit (the default
    // RouteOptions); the pages' own API calls are limited as usual.
    t.router.get(
        "/", [](http::Request&) -> asio::awaitable<http::Response> { co_return redirect(kHome); });
    t.router.get("/console", [](http::Request&) -> asio::awaitable<http::Response> {
      co_return redirect(kHome);
    });
    t.router.get("/console/", [](http::Request& req) -> asio::awaitable<http::Response> {
      co_return serve(req, kIndex);
    });
    t.router.get("/console/{asset}", [](http::Request& req) -> asio::awaitable<http::Response> {
      co_return serve(req, req.params.at("asset"));
    });
  };
  return m;
}

}  // namespace jeweler::app::console
