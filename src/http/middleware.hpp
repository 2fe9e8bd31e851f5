// The built-in middleware, one function each. The order they run in is set
// in one place: pipeline.cpp (build_pipeline).
#pragma once

#include <jeweler/http/metrics.hpp>
#include <jeweler/http/types.hpp>

#include <memory>

namespace spdlog {
class logger;
}

namespace jeweler::http {

/// Accepts the client's X-Request-Id when it is 1..128 of [A-Za-z0-9._-],
/// else generates one; stores it in Request::request_id and sets it on the
/// response.
Middleware request_id();
bool valid_request_id(std::string_view id) noexcept;

/// One JSON line per request on `logger` ("access" logger): request id,
/// method, path (never the query string), route, status, duration, sizes,
/// peer, user/tenant when known. Never headers, cookies, tokens or bodies.
Middleware access_log(std::shared_ptr<spdlog::logger> logger);

/// jeweler_http_requests_total{route,method,status} and
/// jeweler_http_request_duration_seconds{route}.
Middleware http_metrics(metrics::Registry& registry);

/// `Cache-Control: no-store` on every /api/** response (errors included).
Middleware api_cache_control();
/// The request is under /api (the platform API, API.md sections 2-4): the
/// path is "/api" or starts with "/api/", matched to a route or not.
bool is_api_request(const Request& req) noexcept;

/// Renders Response::error in API.md's shape with the request id, fills a
/// body for bare 4xx/5xx responses, turns exceptions into 500 `internal`
/// (details logged, never sent), adds Retry-After to 503s.
Middleware error_mapping();

}  // namespace jeweler::http
