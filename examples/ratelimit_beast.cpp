// The rate limiter in front of your own Boost.Beast handler: 3 requests per
// minute per client address; the 4th gets 429 with Retry-After. The program
// serves on 127.0.0.1 (a free port) and sends itself 5 requests.
// Run: REDIS_URL=... ./ratelimit_beast   (docs/ratelimit.md)
#include <jeweler/ratelimit/limiter.hpp>
#include <jeweler/redis/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace redis = jeweler::redis;
namespace ratelimit = jeweler::ratelimit;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// The application's own handler: knows nothing of rate limiting.
http::response<http::string_body> hello(const http::request<http::string_body>& req) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.body() = "hello\n";
  return res;
}

// One connection: each request is checked against the limit first.
asio::awaitable<void> serve(tcp::socket socket, ratelimit::Limiter& limiter,
                            const ratelimit::Policy& policy) {
  beast::flat_buffer buffer;
  const std::string peer = socket.remote_endpoint().address().to_string();
  for (;;) {
    http::request<http::string_body> req;
    auto [ec, n] =
        co_await http::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    http::response<http::string_body> res;
    auto key = ratelimit::Key::ip(peer);  // std::nullopt only for a non-address
    auto d = co_await limiter.check(policy, *key);
    if (!d) {
      // Redis unreachable and the policy fails closed (fail_open = false).
      res.result(http::status::service_unavailable);
      res.version(req.version());
      res.set(http::field::retry_after, "1");
    } else if (!d->allowed) {
      res.result(http::status::too_many_requests);
      res.version(req.version());
      auto secs = std::chrono::ceil<std::chrono::seconds>(d->retry_after()).count();
      res.set(http::field::retry_after, std::to_string(std::max<long long>(1, secs)));
      res.body() = "rate limited\n";
    } else {
      res = hello(req);
      res.set("X-RateLimit-Remaining", std::to_string(d->most_restrictive()->remaining));
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) co_return;
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, ratelimit::Limiter& limiter,
                                  const ratelimit::Policy& policy) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // the acceptor was closed
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), limiter, policy),
                   asio::detached);
  }
}

// A client: 5 requests on one keep-alive connection.
asio::awaitable<int> client_run(tcp::endpoint where, tcp::acceptor& acceptor,
                                redis::Client& redis_client) {
  tcp::socket s(co_await asio::this_coro::executor);
  co_await s.async_connect(where, asio::use_awaitable);
  beast::flat_buffer buffer;
  int ok = 0, limited = 0;
  for (int i = 0; i < 5; ++i) {
    http::request<http::string_body> req{http::verb::get, "/", 11};
    req.set(http::field::host, "127.0.0.1");
    co_await http::async_write(s, req, asio::use_awaitable);
    http::response<http::string_body> res;
    co_await http::async_read(s, buffer, res, asio::use_awaitable);
    std::printf("request %d: %u%s%s\n", i + 1, res.result_int(),
                res.count(http::field::retry_after) ? ", Retry-After " : "",
                res.count(http::field::retry_after)
                    ? std::string(res[http::field::retry_after]).c_str()
                    : "");
    (res.result() == http::status::ok ? ok : limited) += 1;
  }
  acceptor.close();
  co_await redis_client.shutdown(2s);
  co_return ok == 3 && limited == 2 ? 0 : 1;
}

int main() {
  asio::io_context io;
  auto client = redis::make_client(io.get_executor(), redis::Config::from_env());
  // Process-wide: statistics and the in-process fallback (used when Redis is
  // unreachable and the policy fails open). Per thread: the Limiter.
  auto stats = std::make_shared<ratelimit::Stats>();
  auto fallback = std::make_shared<ratelimit::Fallback>();
  ratelimit::Limiter limiter(*client, stats, fallback);
  ratelimit::Policy policy;
  policy.name = "example-" + std::to_string(::getpid());  // a fresh budget for each run
  policy.limit = 3;
  policy.window = 60s;
  policy.fail_open = true;
  policy.validate();  // throws for a bad name, limit or window

  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(io, accept_loop(acceptor, limiter, policy), asio::detached);
  int rc = 1;
  asio::co_spawn(io, client_run(acceptor.local_endpoint(), acceptor, *client),
                 [&rc](std::exception_ptr e, int r) {
                   if (!e) rc = r;
                 });
  io.run();
  std::printf("ratelimit_beast example: %s\n", rc == 0 ? "ok" : "failed");
  return rc;
}
