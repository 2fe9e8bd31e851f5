// The middleware chain, assembled in one function (build_pipeline) that
// says why each piece sits where it does.
#pragma once

#include <jeweler/http/metrics.hpp>
#include <jeweler/http/router.hpp>
#include <jeweler/http/types.hpp>

#include <memory>

namespace spdlog {
class logger;
}

namespace jeweler::http {

/// Slots the application fills (the routes engineer: src/app/routes/).
/// An empty slot is left out of the chain.
struct PipelineSlots {
  /// CORS (http::cors, when CORS_ALLOWED_ORIGINS is set): outside error
  /// mapping and before authentication, so that preflights need no
  /// credentials and error responses carry the CORS headers too.
  Middleware cors;
  /// Authentication: reads `Authorization: Bearer` or the `sid` cookie,
  /// stores the session in req.context (and user_id/tenant_id/role), and on
  /// routes with RouteOptions::auth_required answers 401 / 403
  /// two_factor_required / 503 (Redis down) itself instead of calling next.
  Middleware authenticate;
  /// Rate limiting: on routes with RouteOptions::rate_limited, asks the
  /// limiters (keyed by req.context.user_id or the client IP), adds the
  /// X-RateLimit-* / RateLimit* headers, answers 429 (or 503 fail-closed).
  Middleware rate_limit;
  /// Anything else the application wants right around the handler.
  std::vector<Middleware> extra;
};

/// Builds a thread's handler: the chain around `router.dispatch`. `router`
/// must outlive the result. A body still on the wire (Request::body_pending)
/// is read after the whole chain let the request through, right before the
/// route's handler: a request refused by authentication, rate limiting or
/// routing never has its body read (API.md section 1).
Handler build_pipeline(const Router& router, PipelineSlots slots, metrics::Registry& registry,
                       std::shared_ptr<spdlog::logger> access_logger);

}  // namespace jeweler::http
