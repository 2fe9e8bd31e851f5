#include <jeweler/http/origin.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace jeweler::http {

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool host_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/// "host[:port]" (lower case) with the scheme's default port dropped;
/// nullopt when malformed.
std::optional<std::string> normalize_authority(std::string_view a, bool https) {
  if (a.empty()) return std::nullopt;
  std::string_view host, port;
  if (a.front() == '[') {  // IPv6 literal
    auto close = a.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    for (char c : a.substr(1, close - 1))
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
        return std::nullopt;
    host = a.substr(0, close + 1);
    auto rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else {
    auto colon = a.find(':');
    host = a.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = a.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) return std::nullopt;
  }
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc{} || p != port.data() + port.size() || v == 0 || v > 65535 ||
        port.size() > 5)
      return std::nullopt;
    if (v == (https ? 443u : 80u)) port = {};
  }
  std::string out(host);
  if (!port.empty()) {
    out += ':';
    out += port;
  }
  return out;
}

bool listed(const std::vector<std::string>& list, std::string_view normalized) {
  return std::find(list.begin(), list.end(), normalized) != list.end();
}

}  // namespace

std::optional<std::string> normalize_origin(std::string_view s) {
  std::string o = lower(trim(s));
  bool https;
  std::string_view rest = o;
  if (rest.starts_with("https://")) {
    https = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    https = false;
    rest.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);  // "https://app.example/" in a setting
  auto authority = normalize_authority(rest, https);
  if (!authority) return std::nullopt;
  return std::string(https ? "https://" : "http://") + *authority;
}

std::vector<std::string> parse_origin_list(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    auto n = normalize_origin(item);
    if (!n)
      throw std::invalid_argument("'" + std::string(item) +
                                  "' is not an origin like https://app.example[:port]");
    if (!listed(out, *n)) out.push_back(std::move(*n));
  }
  return out;
}

bool OriginPolicy::cors_allowed(std::string_view origin) const {
  if (cors.empty()) return false;
  auto n = normalize_origin(origin);
  return n && listed(cors, *n);
}

bool OriginPolicy::csrf_allowed(std::string_view origin) const {
  if (allowed.empty() && cors.empty()) return false;
  auto n = normalize_origin(origin);
  return n && (listed(allowed, *n) || listed(cors, *n));
}

bool unsafe_method(std::string_view m) noexcept {
  return !(m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE");
}

bool same_origin_as_host(std::string_view origin, const Request& req) {
  auto n = normalize_origin(origin);
  auto host = req.header("Host");
  if (!n || !host) return false;
  const bool https = n->starts_with("https://");
  auto own = normalize_authority(lower(trim(*host)), https);
  return own && std::string_view(*n).substr(https ? 8 : 7) == *own;
}

bool cross_site(const Request& req, const OriginPolicy& policy) {
  auto origin = req.header("Origin");
  if (origin && policy.csrf_allowed(*origin)) return false;
  if (auto site = req.header("Sec-Fetch-Site")) {
    auto v = trim(*site);
    if (iequals(v, "cross-site") || iequals(v, "same-site")) return true;
  }
  // "Origin: null" (sandboxed frames, some redirects) is not the own origin.
  return origin && !same_origin_as_host(*origin, req);
}

namespace {

void add_vary(Response& res, std::string_view what) {
  auto v = res.headers.get("Vary");
  if (!v || v->empty()) {
    res.headers.set("Vary", std::string(what));
    return;
  }
  if (v->find(what) != std::string_view::npos) return;
  std::string joined(*v);
  joined += ", ";
  joined += what;
  res.headers.set("Vary", std::move(joined));
}

}  // namespace

Middleware cors(std::shared_ptr<const OriginPolicy> policy) {
  return [policy](Request& req, Next next) -> asio::awaitable<Response> {
    auto origin = req.header("Origin");
    const bool listed_origin = origin && policy->cors_allowed(*origin);
    if (listed_origin && req.method == "OPTIONS" && req.header("Access-Control-Request-Method")) {
      // A preflight: no credentials, answered before authentication and
      // rate limiting (the browser sends neither cookie nor token here).
      Response res;
      res.status = 204;
      res.headers.set("Access-Control-Allow-Origin", std::string(*origin));
      res.headers.set("Access-Control-Allow-Credentials", "true");
      res.headers.set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
      res.headers.set("Access-Control-Allow-Headers",
                      "Authorization, Content-Type, X-Request-Id, X-Filename");
      res.headers.set("Access-Control-Max-Age", "600");
      res.headers.set("Vary",
                      "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
      co_return res;
    }
    // Named local (g++ 12: no temporaries inside co_await expressions).
    std::string allowed_origin = listed_origin ? std::string(*origin) : std::string();
    Response res = co_await next(req);
    if (!allowed_origin.empty()) {
      res.headers.set("Access-Control-Allow-Origin", std::move(allowed_origin));
      res.headers.set("Access-Control-Allow-Credentials", "true");
      res.headers.set("Access-Control-Expose-Headers",
                      "X-Request-Id, X-Cache, X-RateLimit-Limit, X-RateLimit-Remaining, "
                      "X-RateLimit-Reset, X-RateLimit-Window, RateLimit, RateLimit-Policy, "
                      "Retry-After");
    }
    // The answer depends on Origin for every request once CORS is on.
    add_vary(res, "Origin");
    co_return res;
  };
}

}  // namespace jeweler::http
