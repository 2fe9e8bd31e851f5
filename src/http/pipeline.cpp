#include <jeweler/http/middleware.hpp>
#include <jeweler/http/pipeline.hpp>

namespace jeweler::http {

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
  // 8. The router: the matched route's handler, or 404/405/400/413.
  return chain(std::move(chain_list), [&router](Request& req) -> asio::awaitable<Response> {
    return router.dispatch(req);
  });
}

}  // namespace jeweler::http
