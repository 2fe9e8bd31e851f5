#include <jeweler/http/middleware.hpp>
#include <jeweler/http/pipeline.hpp>

namespace jeweler::http {

namespace {

/// Reads the pending body, then runs the route (a coroutine only for
/// requests that announced a body: GETs take the direct path).
asio::awaitable<Response> read_body_then_dispatch(const Router& router, Request& req) {
  const unsigned refused = co_await req.read_body();
  if (refused != 0) {
    Response res;
    switch (refused) {
      case 408:
        res = Response::make_error(408, "bad_request", "Request body not received in time");
        break;
      case 413:
        res = Response::make_error(413, "payload_too_large", "Request body too large");
        break;
      case 503:
        res = Response::make_error(503, "service_unavailable",
                                   "Too many request bodies in progress, retry shortly");
        res.headers.set("Retry-After", "1");
        break;
      default:
        res = Response::make_error(400, "bad_request", "Malformed or incomplete request body");
        break;
    }
    res.close = true;  // the connection's framing is lost (or it is overloaded)
    co_return res;
  }
  co_return co_await router.dispatch(req);
}

}  // namespace

Handler build_pipeline(const Router& router, PipelineSlots slots, metrics::Registry& registry,
                       std::shared_ptr<spdlog::logger> access_logger) {
  std::vector<Middleware> chain_list;
  // 1. Request id first: every response below, including errors made by any
  //    later layer and 404/405/413 refusals, carries X-Request-Id, and every
  //    log line can name the request.
  chain_list.push_back(request_id());
  // 2. Access log and 3. metrics wrap everything else, so they see the final
  //    status (after error mapping) and the whole duration.
  chain_list.push_back(access_log(std::move(access_logger)));
  chain_list.push_back(http_metrics(registry));
  // 4. Cache-Control on /api/** outside error mapping, so that 500s made
  //    from exceptions, 401s and 429s get it too.
  chain_list.push_back(api_cache_control());
  // 4b. CORS (when configured): preflights answered before anything needs
  //     credentials; its headers land on every answer to a listed origin,
  //     error answers included (so it wraps error mapping).
  if (slots.cors) chain_list.push_back(std::move(slots.cors));
  // 5. Error mapping: renders every error response in API.md's shape and
  //    catches exceptions from authentication, rate limiting and handlers.
  chain_list.push_back(error_mapping());
  // 6. Authentication before rate limiting: the `api` limiter keys on the
  //    authenticated user (else the client IP), so it needs the session.
  //    Auth itself answers 401/403 for routes that require it.
  if (slots.authenticate) chain_list.push_back(std::move(slots.authenticate));
  // 7. Rate limiting last before the handler: it sees who the caller is and
  //    which route (policy) is hit; a refused request never reaches the
  //    handler.
  if (slots.rate_limit) chain_list.push_back(std::move(slots.rate_limit));
  for (auto& m : slots.extra) chain_list.push_back(std::move(m));
  // 8. The body, if one is still on the wire and the request reached a
  //    route: read only now, when every check above let it through.
  // 9. The router: the matched route's handler, or 404/405/400/413.
  return chain(std::move(chain_list), [&router](Request& req) -> asio::awaitable<Response> {
    if (req.body_pending() && req.route && !req.rejection)
      return read_body_then_dispatch(router, req);
    return router.dispatch(req);
  });
}

}  // namespace jeweler::http
