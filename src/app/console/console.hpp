// The web console of jeweler-server (API.md section 9): static pages under
// /console/ (GET / redirects there), embedded in the binary, served with a
// strict Content-Security-Policy. Not /api routes: neither authenticated nor
// rate limited; the pages call the API like any other client, with the `sid`
// cookie. docs/console.md describes the design.
#pragma once

#include <jeweler/app/app.hpp>
#include <jeweler/http/types.hpp>

#include <string_view>

namespace jeweler::app::console {

/// The Content-Security-Policy of every console response.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'; require-trusted-types-for 'script'";

/// Adds the security headers of the console (CSP, nosniff, no referrer,
/// no framing, same-origin isolation) to `res`.
void add_security_headers(http::Response& res);

/// True when the If-None-Match header value `if_none_match` names `etag`
/// (a list of entity tags, weak or strong, or "*"): the answer is 304.
bool etag_matches(std::string_view if_none_match, std::string_view etag) noexcept;

/// The module: GET /, /console, /console/, /console/{asset}.
RouteModule module();

}  // namespace jeweler::app::console
