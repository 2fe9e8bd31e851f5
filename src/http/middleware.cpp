#include <jeweler/http/middleware.hpp>
#include <jeweler/http/router.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <unordered_map>

namespace jeweler::http {

bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Middleware request_id() {
  return [](Request& req, Next next) -> asio::awaitable<Response> {
    auto given = req.header("X-Request-Id");
    req.request_id =
        given && valid_request_id(*given) ? std::string(*given) : generate_request_id();
    Response res = co_await next(req);
    res.headers.set("X-Request-Id", req.request_id);
    co_return res;
  };
}

Middleware access_log(std::shared_ptr<spdlog::logger> logger) {
  return [logger](Request& req, Next next) -> asio::awaitable<Response> {
    Response res = co_await next(req);
    bool quiet = req.route && req.route->options.quiet_log;
    auto level = quiet               ? spdlog::level::debug
                 : res.status >= 500 ? spdlog::level::warn
                                     : spdlog::level::info;
    if (!logger->should_log(level)) co_return res;
    const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - req.received)
                             .count();
    // A JSON object; the JSON formatter merges it with time and level.
    std::string line = "{\"msg\":\"request\",\"requestId\":";
    line.reserve(256);
    detail::append_json_string(line, req.request_id);
    line += ",\"method\":";
    detail::append_json_string(line, req.method);
    line += ",\"path\":";
    detail::append_json_string(line, req.path);  // no query string: it may carry secrets
    line += ",\"route\":";
    detail::append_json_string(line, req.route_name());
    auto append_int = [&line](std::uint64_t v) {
      char buf[24];
      line.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    };
    line += ",\"status\":";
    append_int(res.status);
    // Milliseconds with three decimals, printed from integer microseconds.
    auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(0, elapsed));
    line += ",\"durationMs\":";
    append_int(us / 1000);
    char frac[4] = {'.', char('0' + us / 100 % 10), char('0' + us / 10 % 10), char('0' + us % 10)};
    line.append(frac, 4);
    line += ",\"bytesIn\":";
    append_int(std::max(req.body.size(), req.bytes_in));
    line += ",\"bytesOut\":";
    append_int(res.body.size());
    line += ",\"peer\":";
    detail::append_json_string(line, req.peer_address);
    if (!req.context.user_id.empty()) {
      line += ",\"userId\":";
      detail::append_json_string(line, req.context.user_id);
    }
    if (!req.context.tenant_id.empty()) {
      line += ",\"tenantId\":";
      detail::append_json_string(line, req.context.tenant_id);
    }
    if (res.error) {
      line += ",\"error\":";
      detail::append_json_string(line, res.error->code);
    }
    line += '}';
    logger->log(level, spdlog::string_view_t(line));
    co_return res;
  };
}

namespace {
std::string_view method_label(std::string_view m) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
    if (m == known) return known;
  return "OTHER";  // bounded label cardinality
}
}  // namespace

Middleware http_metrics(metrics::Registry& registry) {
  struct State {
    metrics::Family<metrics::Counter>* requests;
    metrics::Family<metrics::Histogram>* duration;
    // This middleware belongs to one thread's chain: the caches need no lock.
    std::unordered_map<std::string, metrics::Counter*> counters;
    std::unordered_map<std::string, metrics::Histogram*> histograms;
  };
  auto st = std::make_shared<State>();
  st->requests = &registry.counter("jeweler_http_requests_total", "HTTP requests answered",
                                   {"route", "method", "status"});
  st->duration = &registry.histogram("jeweler_http_request_duration_seconds",
                                     "HTTP request duration (seconds)", {"route"});
  return [st](Request& req, Next next) -> asio::awaitable<Response> {
    Response res = co_await next(req);
    auto route = req.route_name();
    auto method = method_label(req.method);
    std::string key;
    key.reserve(route.size() + 16);
    key.append(route).append(1, '\0').append(method).append(1, '\0');
    key += std::to_string(res.status);
    auto it = st->counters.find(key);
    if (it == st->counters.end())
      it = st->counters
               .emplace(key, &st->requests->with({std::string(route), std::string(method),
                                                  std::to_string(res.status)}))
               .first;
    it->second->inc();
    auto hit = st->histograms.find(std::string(route));
    if (hit == st->histograms.end())
      hit = st->histograms.emplace(std::string(route), &st->duration->with({std::string(route)}))
                .first;
    hit->second->observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - req.received).count());
    co_return res;
  };
}

bool is_api_request(const Request& req) noexcept {
  return req.path == "/api" || req.path.starts_with("/api/");
}

Middleware api_cache_control() {
  return [](Request& req, Next next) -> asio::awaitable<Response> {
    Response res = co_await next(req);
    if (is_api_request(req)) res.headers.set("Cache-Control", "no-store");
    co_return res;
  };
}

Middleware error_mapping() {
  return [](Request& req, Next next) -> asio::awaitable<Response> {
    Response res;
    try {
      res = co_await next(req);
    } catch (const std::exception& e) {
      spdlog::error("{{\"msg\":\"unhandled exception\",\"requestId\":\"{}\",\"what\":{}}}",
                    req.request_id, boost::json::serialize(boost::json::string(e.what())));
      res = Response::make_error(500, "internal", "Internal server error");
    }
    if (!res.error && res.status >= 400 && res.body.empty())
      res.error = ErrorBody{
          std::string(default_error_code(res.status)), std::string(reason_phrase(res.status)), {}};
    if (res.error) {
      if (res.status >= 500 && res.status != 503) {
        // Never leak internals: the detail goes to the log only.
        if (res.error->message != "Internal server error")
          spdlog::error(
              "{{\"msg\":\"internal error\",\"requestId\":\"{}\",\"status\":{},\"detail\":{}}}",
              req.request_id, res.status,
              boost::json::serialize(boost::json::string(res.error->message)));
        res.error->code = "internal";
        res.error->message = "Internal server error";
        res.error->extra.clear();
      }
      boost::json::object body;
      body["error"] = res.error->code;
      body["message"] = res.error->message;
      for (auto& kv : res.error->extra)
        if (kv.key() != "error" && kv.key() != "message" && kv.key() != "requestId")
          body[kv.key()] = kv.value();
      body["requestId"] = req.request_id;
      res.body = to_json_text(body);
      res.headers.set("Content-Type", "application/json; charset=utf-8");
    }
    if (res.status == 503 && !res.headers.has("Retry-After")) res.headers.set("Retry-After", "1");
    co_return res;
  };
}

}  // namespace jeweler::http
