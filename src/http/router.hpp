// Method + path-template router: "/api/customers/{id}". Matching splits the
// raw (percent-encoded) path on '/', then decodes each segment, so "%2F" in a
// parameter stays inside it; bad percent-encoding is a 400. Literal segments
// win over parameters.
// No match for the path -> 404; path matches but not the method -> 405 with
// the Allow list. HEAD is answered by a GET route.
#pragma once

#include <jeweler/http/types.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::http {

struct Route {
  std::string method;
  std::string path_template;
  std::vector<std::string> segments;  // "{id}" kept as is
  RouteOptions options;
  Handler handler;
};

struct RouteMatch {
  enum class Kind { found, not_found, method_not_allowed, bad_request } kind = Kind::not_found;
  const Route* route = nullptr;
  std::map<std::string, std::string, std::less<>> params;
  std::string allow;  // "GET, HEAD, POST" for method_not_allowed
};

class Router {
 public:
  /// Registers a route. Throws std::invalid_argument for a malformed template
  /// (must start with '/', parameters are whole segments "{name}") or a
  /// duplicate method + template.
  Router& add(std::string method, std::string path_template, Handler handler,
              RouteOptions options = {});
  Router& get(std::string path, Handler h, RouteOptions o = {}) {
    return add("GET", std::move(path), std::move(h), std::move(o));
  }
  Router& post(std::string path, Handler h, RouteOptions o = {}) {
    return add("POST", std::move(path), std::move(h), std::move(o));
  }
  Router& put(std::string path, Handler h, RouteOptions o = {}) {
    return add("PUT", std::move(path), std::move(h), std::move(o));
  }
  Router& del(std::string path, Handler h, RouteOptions o = {}) {
    return add("DELETE", std::move(path), std::move(h), std::move(o));
  }

  /// Matches a raw path (percent-encoded, no query string).
  RouteMatch match(std::string_view method, std::string_view path) const;

  /// Matches `req` and records the outcome in it (route, params, rejection
  /// 404/405 + allow). Returns the body limit that applies (the route's
  /// override, else `default_limit`).
  std::size_t resolve(Request& req, std::size_t default_limit) const;

  /// Runs the matched route's handler (or the 404/405 error) — the innermost
  /// handler of the middleware chain.
  asio::awaitable<Response> dispatch(Request& req) const;

  const std::vector<std::unique_ptr<Route>>& routes() const noexcept { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
};

/// Splits "/a/b/" into {"a","b",""}; "/" into {""}.
std::vector<std::string_view> split_path(std::string_view path);

}  // namespace jeweler::http
