// The baseline for bench/http/run.sh: a bare Boost.Beast C++20-coroutine
// HTTP/1.1 server that answers every request with {"status":"ok"} — no
// router, no middleware, no logging, no metrics. Same threading model as
// jeweler-server (one io_context per thread, one acceptor handing out
// connections round-robin), so the ratio measures our plumbing.
//
//   hello_server PORT [THREADS]
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> session(tcp::socket sock) {
  beast::tcp_stream stream(std::move(sock));
  beast::flat_buffer buffer;
  while (true) {
    http::request<http::string_body> req;
    stream.expires_after(std::chrono::seconds(30));
    auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
    if (ec) break;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.body() = "{\"status\":\"ok\"}";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
    if (wec || !res.keep_alive()) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acc,
                                  std::vector<std::unique_ptr<asio::io_context>>& ios) {
  std::size_t next = 0;
  while (true) {
    auto& io = *ios[next];
    next = (next + 1) % ios.size();
    auto [ec, sock] =
        co_await acc.async_accept(asio::any_io_executor(io.get_executor()), use_tuple);
    if (ec) break;
    asio::co_spawn(io, session(std::move(sock)), asio::detached);
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hello_server PORT [THREADS]\n");
    return 2;
  }
  auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  std::size_t threads = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
  if (threads == 0) threads = 1;
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (std::size_t i = 0; i < threads; ++i) ios.push_back(std::make_unique<asio::io_context>(1));
  tcp::acceptor acc(*ios[0], {asio::ip::make_address("127.0.0.1"), port});
  asio::signal_set signals(*ios[0], SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) {
    for (auto& io : ios) io->stop();
  });
  asio::co_spawn(*ios[0], accept_loop(acc, ios), asio::detached);
  std::printf("hello_server listening on 127.0.0.1:%u (%zu threads)\n", port, threads);
  std::fflush(stdout);
  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < threads; ++i) {
    auto* io = ios[i].get();
    workers.emplace_back([io] {
      auto guard = asio::make_work_guard(*io);
      io->run();
    });
  }
  ios[0]->run();
  for (auto& io : ios) io->stop();
  for (auto& w : workers) w.join();
  return 0;
}
