// /health, /health/live, /health/ready, /metrics (API.md section 5): no
// authentication, not rate limited.
#include <jeweler/app/app.hpp>

#include <boost/json/object.hpp>

#include <cmath>

namespace jeweler::app {

namespace {

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

asio::awaitable<double> live_ping_ms(redis::Client& client) {
  auto start = std::chrono::steady_clock::now();
  redis::ExecOptions opts;
  opts.timeout = std::chrono::milliseconds(500);
  opts.idempotent = true;
  auto r = co_await client.exec(redis::Command::make("PING"), opts);
  if (!r || r->is_error()) co_return -1.0;
  co_return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

void add_ops_routes(ThreadContext& t, std::chrono::steady_clock::time_point started) {
  redis::Client* client = &t.redis;
  const Readiness* readiness = &t.readiness;
  const RedisStatus* status = &t.redis_status;  // /health, /health/ready and /metrics read it
  http::metrics::Registry* registry = &t.metrics;
  std::shared_ptr<const HealthChecks> parts = t.shared.get<HealthChecks>();

  http::RouteOptions health_opts;
  health_opts.name = "/health";
  t.router.get(
      "/health",
      [client, status, started, parts](http::Request&) -> asio::awaitable<http::Response> {
        const auto h = status->read();
        double latency = h.last_ping_ms;
        if (h.up() && latency < 0) latency = co_await live_ping_ms(*client);
        boost::json::object redis_obj;
        redis_obj["status"] = h.up() ? "up" : "down";
        if (h.up() && latency >= 0)
          redis_obj["latencyMs"] = round3(latency);
        else
          redis_obj["latencyMs"] = nullptr;
        redis_obj["mode"] = redis::to_string(client->config().mode);
        if (!h.up()) redis_obj["state"] = h.stalled ? "stalled" : redis::to_string(h.state);
        auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
        // Modules' parts (e.g. "rateLimit"): one that fails makes the server
        // degraded even while Redis answers (a limiter that errors on every
        // call fails its requests).
        bool parts_ok = true;
        std::string failing;
        boost::json::object part_objs;
        if (parts)
          for (const auto& p : parts->checks) {
            boost::json::object o;
            if (!p.report(o)) {
              parts_ok = false;
              if (failing.empty()) failing = p.name;
            }
            part_objs[p.name] = std::move(o);
          }
        if (h.up() && parts_ok) {
          boost::json::object body;
          body["status"] = "ok";
          body["redis"] = std::move(redis_obj);
          for (auto& [k, v] : part_objs) body[k] = std::move(v);
          body["uptimeSeconds"] = uptime;
          body["version"] = version();
          co_return http::Response::json(body);
        }
        // 503: API.md's health body, which is also a valid error body.
        boost::json::object extra;
        extra["status"] = "degraded";
        extra["redis"] = std::move(redis_obj);
        for (auto& [k, v] : part_objs) extra[k] = std::move(v);
        extra["uptimeSeconds"] = uptime;
        extra["version"] = version();
        auto r = http::Response::make_error(
            503, "service_unavailable",
            h.up() ? failing + " is failing: Redis answers its commands with errors"
                   : "Redis is unreachable",
            std::move(extra));
        r.headers.set("Retry-After", "1");
        co_return r;
      },
      health_opts);

  http::RouteOptions live_opts;
  live_opts.name = "/health/live";
  live_opts.quiet_log = true;
  t.router.get(
      "/health/live",
      [](http::Request&) -> asio::awaitable<http::Response> {
        co_return http::Response::json_text("{\"status\":\"ok\"}");
      },
      live_opts);

  http::RouteOptions ready_opts;
  ready_opts.name = "/health/ready";
  ready_opts.quiet_log = true;
  t.router.get(
      "/health/ready",
      [status, readiness](http::Request&) -> asio::awaitable<http::Response> {
        std::string reason;
        if (readiness->shutting_down.load()) {
          reason = "shutting_down";
        } else if (!status->read().up()) {
          reason = "redis_down";
        }
        if (reason.empty()) co_return http::Response::json_text("{\"status\":\"ready\"}");
        boost::json::object extra;
        extra["status"] = "not_ready";
        extra["reason"] = reason;
        auto r = http::Response::make_error(
            503, "service_unavailable",
            reason == "shutting_down" ? "The server is shutting down" : "Redis is unreachable",
            std::move(extra));
        r.headers.set("Retry-After", "1");
        co_return r;
      },
      ready_opts);

  http::RouteOptions metrics_opts;
  metrics_opts.name = "/metrics";
  metrics_opts.quiet_log = true;
  t.router.get(
      "/metrics",
      [registry](http::Request&) -> asio::awaitable<http::Response> {
        co_return http::Response::text(registry->render(),
                                       "text/plain; version=0.0.4; charset=utf-8");
      },
      metrics_opts);
}

}  // namespace jeweler::app
