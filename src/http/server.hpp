// The HTTP/1.1 server: one io_context per thread, one acceptor (on thread 0)
// handing each accepted connection to the threads round-robin. Keep-alive,
// pipelined requests answered in order (one at a time per connection),
// limits and timeouts of API.md section 1. Beast stays inside server.cpp.
//
//   http::Server server(opts);
//   if (auto r = server.listen(); !r) ... r.error().message() (e.g. address in use)
//   server.start({.init = [&](std::size_t i, asio::any_io_executor ex) { ...; return handler; },
//                 .drain = ..., .teardown = ...});
//   ... server.begin_shutdown(10s);   // from any thread (signal handler coroutine)
//   server.join();
#pragma once

#include <jeweler/http/types.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace jeweler::http {

using namespace std::chrono_literals;

namespace detail {
/// What the server does with every request's target: an absolute-form
/// target is reduced to its path and query; the path is percent-decoded into
/// req.path and the query into req.query (a bad escape sets req.rejection =
/// 400). False when the target is unusable (not starting with '/'): the
/// server answers 400. Exposed for the HTTP fuzz target (fuzz/http_fuzz.cpp).
bool parse_target(Request& req);
}  // namespace detail

struct ServerOptions {
  std::string host = "127.0.0.1";                  // HOST
  std::uint16_t port = 8080;                       // PORT (0: any free port, see port())
  std::size_t threads = 0;                         // HTTP_THREADS; 0 = hardware concurrency
  std::size_t body_limit = 1 << 20;                // BODY_LIMIT_BYTES (routes may override)
  std::size_t header_limit = 16 << 10;             // header block limit -> 431
  std::chrono::milliseconds header_timeout = 10s;  // HTTP_HEADER_TIMEOUT_MS -> 408 + close
  std::chrono::milliseconds idle_timeout = 30s;    // HTTP_IDLE_TIMEOUT_MS: keep-alive idle close
  std::chrono::milliseconds body_timeout = 30s;    // whole body must arrive within this -> 408
  std::chrono::milliseconds write_timeout = 30s;   // a response must be taken within this
  std::size_t max_connections = 10000;             // HTTP_MAX_CONNECTIONS: beyond -> 503 + close
  std::size_t max_connections_per_ip = 256;        // HTTP_MAX_CONNECTIONS_PER_IP (0: no cap)
  std::size_t body_memory = 256u << 20;            // HTTP_BODY_MEMORY_BYTES: bodies being read
  int backlog = 1024;
};

/// What one thread serves with, built on that thread by ThreadHooks::init.
struct ThreadHandler {
  /// Called when a request head is complete: matches the route (records it
  /// in the request) and returns the body limit that applies.
  std::function<std::size_t(Request&)> resolve;
  /// The full middleware chain + router dispatch.
  Handler handler;
  /// A request refused before it could become a Request (400 malformed,
  /// 408 slow, 431 headers too large, 503 too many connections): for logs
  /// and metrics. May be empty.
  std::function<void(unsigned status, std::string_view request_id, std::string_view peer,
                     std::string_view why)>
      on_protocol_error;
};

struct ThreadHooks {
  /// Runs on thread `index` before it serves: create per-thread services.
  std::function<ThreadHandler(std::size_t index, asio::any_io_executor ex)> init;
  /// Runs on thread `index` during shutdown after its connections finished
  /// (or the deadline passed): close Redis clients and the like.
  std::function<asio::awaitable<void>(std::size_t index)> drain;
  /// Runs on thread `index` after its io_context stopped: destroy services.
  std::function<void(std::size_t index)> teardown;
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and listens on host:port. The error says why (address in use,
  /// cannot assign address, permission denied).
  boost::system::result<void> listen();
  /// The bound port (useful with port 0).
  std::uint16_t port() const noexcept { return bound_port_; }
  std::size_t threads() const noexcept;
  const ServerOptions& options() const noexcept { return opts_; }

  /// Starts the threads; returns at once. Call after listen().
  void start(ThreadHooks hooks);
  /// Graceful shutdown, callable from any thread, idempotent: stop accepting,
  /// close idle connections, let requests in flight finish for up to
  /// `deadline` (their connections close after the response), force-close
  /// the rest, run ThreadHooks::drain, stop the threads.
  void begin_shutdown(std::chrono::milliseconds deadline);
  bool shutting_down() const noexcept { return shutting_down_.load(); }
  /// Waits until every thread returned (after begin_shutdown).
  void join();

  /// Open connections, all threads.
  std::size_t connections() const noexcept { return connections_.load(); }
  /// Memory held by request bodies being read or handled (charged against
  /// ServerOptions::body_memory), all threads.
  std::size_t body_bytes() const noexcept { return body_bytes_.load(); }

  struct Impl;

 private:
  ServerOptions opts_;
  // Before impl_: connection frames destroyed with Impl's io_contexts still
  // count themselves out of these.
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> body_bytes_{0};
  std::unique_ptr<Impl> impl_;
  std::uint16_t bound_port_ = 0;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace jeweler::http
