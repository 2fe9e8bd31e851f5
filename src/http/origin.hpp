// Origins: which other web origins may talk to the server from a browser.
// Two settings (API.md sections 2 and 6):
//   ALLOWED_ORIGINS       may send cookie-authenticated unsafe requests
//                         (the cross-site request check, CSRF);
//   CORS_ALLOWED_ORIGINS  may read responses through CORS (preflight
//                         answered, credentials allowed). A CORS origin is
//                         also allowed by the cross-site check: a browser
//                         front end on it must be able to POST with its
//                         cookie, or CORS with credentials would be useless.
// docs/server.md, "Cross-site requests and CORS".
#pragma once

#include <jeweler/http/types.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::http {

/// "scheme://host[:port]" in canonical form (lower case, default port
/// dropped), or nullopt when `s` is not an http(s) origin (a path, a query,
/// userinfo, "null", "*", other schemes...).
std::optional<std::string> normalize_origin(std::string_view s);

/// Parses a comma-separated origin list; throws std::invalid_argument naming
/// the offending item.
std::vector<std::string> parse_origin_list(std::string_view list);

struct OriginPolicy {
  std::vector<std::string> allowed;  // ALLOWED_ORIGINS (normalized)
  std::vector<std::string> cors;     // CORS_ALLOWED_ORIGINS (normalized)

  /// `origin` (as sent in the Origin header) is in CORS_ALLOWED_ORIGINS.
  bool cors_allowed(std::string_view origin) const;
  /// `origin` may send cookie-authenticated unsafe requests: in
  /// ALLOWED_ORIGINS or in CORS_ALLOWED_ORIGINS.
  bool csrf_allowed(std::string_view origin) const;
};

/// POST, PUT, PATCH, DELETE (and any method that is not GET, HEAD,
/// OPTIONS or TRACE).
bool unsafe_method(std::string_view method) noexcept;

/// The request's own origin matches `origin`: its host[:port] equals the
/// Host header (case-insensitive, default port of the origin's scheme
/// ignored). The scheme is not compared: TLS may end at a proxy.
bool same_origin_as_host(std::string_view origin, const Request& req);

/// API.md section 2: the request comes from another site. An Origin in the
/// allow lists is never cross-site; otherwise `Sec-Fetch-Site: cross-site`
/// or `same-site`, or an Origin that is not the request's own, is.
/// (Requests without either header — curl, servers — are not.)
bool cross_site(const Request& req, const OriginPolicy& policy);

/// CORS for CORS_ALLOWED_ORIGINS: answers a preflight (OPTIONS with Origin
/// and Access-Control-Request-Method) from a listed origin with 204 and the
/// Access-Control-Allow-* headers; adds Access-Control-Allow-Origin /
/// -Credentials / -Expose-Headers to every response to a listed origin;
/// `Vary: Origin` on every response. Requests from other origins pass
/// through untouched (a preflight gets the router's 404/405, no CORS
/// header: the browser refuses).
Middleware cors(std::shared_ptr<const OriginPolicy> policy);

}  // namespace jeweler::http
