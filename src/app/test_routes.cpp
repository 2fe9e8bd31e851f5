// Test-only routes, registered only with JEWELER_TEST_ROUTES=1 (the HTTP
// integration tests use them; production never sets it). See docs/server.md.
#include <jeweler/app/app.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <charconv>
#include <stdexcept>
#include <string>

namespace jeweler::app {

RouteModule test_routes_module() {
  RouteModule m;
  m.name = "test";
  m.init_thread = [](ThreadContext& t) {
    const Readiness* readiness = &t.readiness;
    redis::Client* client = &t.redis;
    // GET /__test/slow?ms=N: answers after N ms (max 60000); tells whether
    // the server was shutting down when it finished.
    t.router.get(
        "/__test/slow", [readiness](http::Request& req) -> asio::awaitable<http::Response> {
          long ms = 1000;
          if (auto it = req.query.find("ms"); it != req.query.end()) {
            auto [p, ec] =
                std::from_chars(it->second.data(), it->second.data() + it->second.size(), ms);
            if (ec != std::errc() || ms < 0 || ms > 60000)
              co_return http::Response::make_error(422, "validation_failed", "ms must be 0..60000");
          }
          asio::steady_timer timer(co_await asio::this_coro::executor);
          timer.expires_after(std::chrono::milliseconds(ms));
          co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
          boost::json::object o;
          o["sleptMs"] = ms;
          o["shuttingDownAtEnd"] = readiness->shutting_down.load();
          co_return http::Response::json(o);
        });
    // GET /__test/throw: an exception carrying internals that must not leak.
    t.router.get("/__test/throw", [](http::Request&) -> asio::awaitable<http::Response> {
      throw std::runtime_error("SECRET-DETAIL: ERR wrong number of arguments for 'hset'");
      co_return http::Response{};
    });
    // POST /__test/echo: default body limit; answers the body size.
    t.router.post("/__test/echo", [](http::Request& req) -> asio::awaitable<http::Response> {
      boost::json::object o;
      o["bytes"] = req.body.size();
      co_return http::Response::json(o);
    });
    // POST /__test/upload: the upload body limit (UPLOAD_LIMIT_BYTES).
    http::RouteOptions upload;
    upload.name = "/__test/upload";
    upload.body_limit = t.config.upload_limit;
    t.router.post(
        "/__test/upload",
        [](http::Request& req) -> asio::awaitable<http::Response> {
          boost::json::object o;
          o["bytes"] = req.body.size();
          co_return http::Response::json(o, 201);
        },
        upload);
    // GET /__test/big?bytes=N: N bytes (max 64 MiB) of a known pattern, for
    // responses larger than the socket's send buffer.
    t.router.get("/__test/big", [](http::Request& req) -> asio::awaitable<http::Response> {
      std::size_t n = 0;
      if (auto it = req.query.find("bytes"); it != req.query.end()) {
        auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
        if (ec != std::errc() || n > (64u << 20))
          co_return http::Response::make_error(422, "validation_failed", "bytes must be 0..64 MiB");
      }
      std::string body(n, '\0');
      for (std::size_t i = 0; i < n; ++i) body[i] = static_cast<char>('a' + i % 26);
      co_return http::Response::text(std::move(body), "application/octet-stream");
    });
    // GET /__test/items/{id}: echoes the decoded path parameter and query.
    t.router.get("/__test/items/{id}", [](http::Request& req) -> asio::awaitable<http::Response> {
      boost::json::object o;
      o["id"] = req.params.at("id");
      boost::json::object q;
      for (auto& [k, v] : req.query) q[k] = v;
      o["query"] = std::move(q);
      co_return http::Response::json(o);
    });
    t.router.del("/__test/items/{id}", [](http::Request&) -> asio::awaitable<http::Response> {
      co_return http::Response::no_content();
    });
    // GET /__test/redis: a route that needs Redis (503 + Retry-After while down).
    t.router.get("/__test/redis", [client](http::Request&) -> asio::awaitable<http::Response> {
      auto key = client->key_prefix() + "test:probe";
      auto r = co_await client->exec(redis::Command::make("INCR", key));
      if (!r) co_return http::Response::from_error(r.error());
      boost::json::object o;
      o["ok"] = true;
      co_return http::Response::json(o);
    });
    // GET /api/__test/ping: an /api/** route (Cache-Control: no-store).
    // GET /__test/routes: every route of this thread's router as
    // {"routes":[{"method","path"}]} (the OpenAPI coverage test compares it
    // with docs/openapi.yaml).
    const http::Router* router = &t.router;
    t.router.get("/__test/routes", [router](http::Request&) -> asio::awaitable<http::Response> {
      boost::json::array routes;
      for (const auto& r : router->routes())
        routes.push_back(boost::json::object{{"method", r->method}, {"path", r->path_template}});
      boost::json::object o;
      o["routes"] = std::move(routes);
      co_return http::Response::json(o);
    });
    t.router.get("/api/__test/ping", [](http::Request&) -> asio::awaitable<http::Response> {
      co_return http::Response::json_text("{\"pong\":true}");
    });
  };
  return m;
}

}  // namespace jeweler::app
