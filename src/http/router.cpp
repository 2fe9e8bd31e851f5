#include <jeweler/http/router.hpp>

#include <algorithm>
#include <stdexcept>

namespace jeweler::http {

namespace {
bool is_param(std::string_view seg) {
  return seg.size() >= 3 && seg.front() == '{' && seg.back() == '}';
}
}  // namespace

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::size_t start = 0;
  while (true) {
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      break;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

Router& Router::add(std::string method, std::string path_template, Handler handler,
                    RouteOptions options) {
  if (path_template.empty() || path_template.front() != '/')
    throw std::invalid_argument("route template must start with '/': " + path_template);
  auto route = std::make_unique<Route>();
  for (auto seg : split_path(path_template)) {
    if (seg.find_first_of("{}") != std::string_view::npos && !is_param(seg))
      throw std::invalid_argument("route parameters must be whole segments: " + path_template);
    route->segments.emplace_back(seg);
  }
  for (const auto& r : routes_)
    if (r->method == method && r->segments == route->segments)
      throw std::invalid_argument("duplicate route " + method + " " + path_template);
  if (options.name.empty()) options.name = path_template;
  route->method = std::move(method);
  route->path_template = std::move(path_template);
  route->options = std::move(options);
  route->handler = std::move(handler);
  routes_.push_back(std::move(route));
  return *this;
}

RouteMatch Router::match(std::string_view method, std::string_view raw_path) const {
  RouteMatch out;
  std::vector<std::string> segs;
  for (auto raw : split_path(raw_path)) {
    auto d = percent_decode(raw);
    if (!d) {
      out.kind = RouteMatch::Kind::bad_request;
      return out;
    }
    segs.push_back(std::move(*d));
  }
  const Route* best = nullptr;
  int best_literals = -1;
  std::vector<std::string> allowed;
  for (const auto& r : routes_) {
    if (r->segments.size() != segs.size()) continue;
    int literals = 0;
    bool ok = true;
    for (std::size_t i = 0; i < segs.size() && ok; ++i) {
      if (is_param(r->segments[i])) {
        ok = !segs[i].empty();
      } else {
        ok = r->segments[i] == segs[i];
        ++literals;
      }
    }
    if (!ok) continue;
    bool method_ok = r->method == method || (method == "HEAD" && r->method == "GET");
    if (!method_ok) {
      allowed.push_back(r->method);
      if (r->method == "GET") allowed.push_back("HEAD");
      continue;
    }
    if (literals > best_literals) {
      best = r.get();
      best_literals = literals;
    }
  }
  if (best) {
    out.kind = RouteMatch::Kind::found;
    out.route = best;
    for (std::size_t i = 0; i < segs.size(); ++i)
      if (is_param(best->segments[i])) {
        const auto& s = best->segments[i];
        out.params.emplace(s.substr(1, s.size() - 2), std::move(segs[i]));
      }
    return out;
  }
  if (!allowed.empty()) {
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    out.kind = RouteMatch::Kind::method_not_allowed;
    for (const auto& m : allowed) out.allow += (out.allow.empty() ? "" : ", ") + m;
  }
  return out;
}

std::size_t Router::resolve(Request& req, std::size_t default_limit) const {
  std::string_view raw = req.target;
  raw = raw.substr(0, raw.find('?'));
  auto m = match(req.method, raw);
  switch (m.kind) {
    case RouteMatch::Kind::found:
      req.route = m.route;
      req.params = std::move(m.params);
      return m.route->options.body_limit.value_or(default_limit);
    case RouteMatch::Kind::method_not_allowed:
      req.rejection = 405;
      req.allow = std::move(m.allow);
      break;
    case RouteMatch::Kind::not_found:
      req.rejection = 404;
      break;
    case RouteMatch::Kind::bad_request:
      req.rejection = 400;
      break;
  }
  return default_limit;
}

asio::awaitable<Response> Router::dispatch(Request& req) const {
  if (req.rejection) {
    unsigned status = *req.rejection;
    if (status == 405) {
      auto r = Response::make_error(405, "method_not_allowed",
                                    "Method " + req.method + " is not allowed on this resource");
      r.headers.set("Allow", req.allow);
      co_return r;
    }
    if (status == 404) co_return Response::make_error(404, "not_found", "No such resource");
    if (status == 400)
      co_return Response::make_error(400, "bad_request", "Malformed request path or query");
    if (status == 413)
      co_return Response::make_error(413, "payload_too_large", "Request body too large");
    co_return Response::make_error(status, std::string(default_error_code(status)),
                                   std::string(reason_phrase(status)));
  }
  if (!req.route) co_return Response::make_error(404, "not_found", "No such resource");
  co_return co_await req.route->handler(req);
}

}  // namespace jeweler::http
