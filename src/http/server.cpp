// The only file that instantiates Beast I/O.
#include <jeweler/http/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <list>
#include <thread>

namespace jeweler::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// One open connection, as the thread's shutdown sees it.
struct Conn {
  beast::tcp_stream* stream = nullptr;
  bool busy = false;  // a request is being handled: let it finish
};

struct ThreadState {
  // Declared first, destroyed last: session frames destroyed with the
  // io_context unregister themselves from `conns`.
  std::list<Conn*> conns;
  ThreadHandler handler;
  bool draining = false;
  asio::io_context io{1};
};

/// A response for a request that never became a Request (malformed, slow,
/// too large headers): API.md's error shape, connection closed after it.
bhttp::response<bhttp::string_body> protocol_error(unsigned status, std::string_view id,
                                                   std::string_view message) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json; charset=utf-8");
  res.set("X-Request-Id", id);
  // Before routing: the request may have been for /api/** (no-store there).
  res.set(bhttp::field::cache_control, "no-store");
  res.set(bhttp::field::connection, "close");
  std::string body = "{\"error\":\"" + std::string(default_error_code(status)) + "\",\"message\":";
  detail::append_json_string(body, message);
  body += ",\"requestId\":\"" + std::string(id) + "\"}";
  res.body() = std::move(body);
  res.prepare_payload();
  res.keep_alive(false);
  return res;
}

/// Deadline for phases that must end with a 408 (tcp_stream's own timeout
/// closes the socket, so no answer could be sent): on expiry it cancels the
/// pending read and records that it fired.
struct Watchdog {
  explicit Watchdog(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  tcp::socket* sock = nullptr;
  bool fired = false;
  std::uint64_t generation = 0;

  static void arm(const std::shared_ptr<Watchdog>& wd, std::chrono::milliseconds d) {
    auto g = ++wd->generation;
    wd->fired = false;
    wd->timer.expires_after(d);
    wd->timer.async_wait([wd, g](boost::system::error_code ec) {
      if (ec || wd->generation != g || !wd->sock) return;
      wd->fired = true;
      wd->sock->cancel(ec);
    });
  }
  void disarm() {
    ++generation;
    timer.cancel();
  }
  /// For a phase run without a deadline: nothing left from an earlier one.
  void clear() { fired = false; }
};

bool header_buffered(const beast::flat_buffer& b) {
  auto d = b.data();
  std::string_view v(static_cast<const char*>(d.data()), d.size());
  return v.find("\r\n\r\n") != std::string_view::npos;
}

}  // namespace

struct Server::Impl {
  Server& server;
  std::vector<std::unique_ptr<ThreadState>> threads;
  std::vector<std::thread> workers;
  std::unique_ptr<tcp::acceptor> acceptor;  // on threads[0]
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  ThreadHooks hooks;
  std::size_t next = 0;
  std::atomic<bool> started{false};

  explicit Impl(Server& s, std::size_t n) : server(s) {
    for (std::size_t i = 0; i < n; ++i) threads.push_back(std::make_unique<ThreadState>());
  }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(ThreadState& ts, tcp::socket sock);
  asio::awaitable<void> drain(std::size_t index, std::chrono::milliseconds deadline);
  void reject_overload(tcp::socket& sock);
};

Server::Server(ServerOptions opts) : opts_(std::move(opts)) {
  if (opts_.threads == 0) opts_.threads = std::max(1u, std::thread::hardware_concurrency());
  impl_ = std::make_unique<Impl>(*this, opts_.threads);
}

Server::~Server() {
  if (impl_ && !impl_->workers.empty()) {
    begin_shutdown(0ms);
    join();
  }
}

std::size_t Server::threads() const noexcept {
  return impl_->threads.size();
}

boost::system::result<void> Server::listen() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) return ec;
  tcp::endpoint ep(addr, opts_.port);
  auto acc = std::make_unique<tcp::acceptor>(impl_->threads[0]->io);
  acc->open(ep.protocol(), ec);
  if (ec) return ec;
  acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return ec;
  acc->bind(ep, ec);
  if (ec) return ec;
  acc->listen(opts_.backlog, ec);
  if (ec) return ec;
  bound_port_ = acc->local_endpoint().port();
  impl_->acceptor = std::move(acc);
  return {};
}

void Server::start(ThreadHooks hooks) {
  impl_->hooks = std::move(hooks);
  for (auto& t : impl_->threads) impl_->guards.push_back(asio::make_work_guard(t->io));
  for (std::size_t i = 0; i < impl_->threads.size(); ++i) {
    impl_->workers.emplace_back([this, i] {
      auto& ts = *impl_->threads[i];
      try {
        if (impl_->hooks.init) ts.handler = impl_->hooks.init(i, ts.io.get_executor());
        if (i == 0 && impl_->acceptor)
          asio::co_spawn(ts.io, impl_->accept_loop(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
          });
        ts.io.run();
      } catch (const std::exception& e) {
        spdlog::critical("http: thread {} failed: {}", i, e.what());
        std::_Exit(70);
      }
      if (impl_->hooks.teardown) impl_->hooks.teardown(i);
    });
  }
  impl_->started = true;
}

void Server::begin_shutdown(std::chrono::milliseconds deadline) {
  if (shutting_down_.exchange(true)) return;
  if (!impl_->started) return;
  for (std::size_t i = 0; i < impl_->threads.size(); ++i) {
    asio::co_spawn(impl_->threads[i]->io, impl_->drain(i, deadline), asio::detached);
  }
}

void Server::join() {
  for (auto& w : impl_->workers)
    if (w.joinable()) w.join();
  impl_->workers.clear();
}

asio::awaitable<void> Server::Impl::drain(std::size_t index, std::chrono::milliseconds deadline) {
  auto& ts = *threads[index];
  ts.draining = true;
  if (index == 0 && acceptor) {
    boost::system::error_code ec;
    acceptor->close(ec);  // stop accepting first
  }
  // Idle connections (waiting for a request) close now; busy ones finish
  // their request and close after the response.
  for (auto* c : ts.conns)
    if (!c->busy) c->stream->socket().close();
  auto until = std::chrono::steady_clock::now() + deadline;
  asio::steady_timer t(ts.io);
  while (!ts.conns.empty() && std::chrono::steady_clock::now() < until) {
    t.expires_after(5ms);
    co_await t.async_wait(use_tuple);
  }
  if (!ts.conns.empty()) {
    spdlog::warn("http: thread {}: {} connection(s) still busy at the shutdown deadline, closing",
                 index, ts.conns.size());
    for (auto* c : ts.conns) c->stream->socket().close();
  }
  if (hooks.drain) {
    try {
      co_await hooks.drain(index);
    } catch (const std::exception& e) {
      spdlog::error("http: thread {} drain hook failed: {}", index, e.what());
    }
  }
  guards[index].reset();
  ts.io.stop();
}

void Server::Impl::reject_overload(tcp::socket& sock) {
  // Best effort, never blocks the acceptor: a fresh socket's send buffer is empty.
  auto id = generate_request_id();
  std::string msg =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
      "charset=utf-8\r\nConnection: close\r\nRetry-After: 1\r\nX-Request-Id: " +
      id + "\r\nContent-Length: ";
  std::string body =
      "{\"error\":\"service_unavailable\",\"message\":\"Too many connections\","
      "\"requestId\":\"" +
      id + "\"}";
  msg += std::to_string(body.size()) + "\r\n\r\n" + body;
  boost::system::error_code ec;
  sock.non_blocking(true, ec);
  sock.write_some(asio::buffer(msg), ec);
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

asio::awaitable<void> Server::Impl::accept_loop() {
  const auto max_conns = server.opts_.max_connections;
  while (acceptor && acceptor->is_open()) {
    auto& target = *threads[next];
    next = (next + 1) % threads.size();
    auto [ec, sock] =
        co_await acceptor->async_accept(asio::any_io_executor(target.io.get_executor()), use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || server.shutting_down_) break;
      // EMFILE and the like: back off a little instead of spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      asio::steady_timer t(threads[0]->io, 50ms);
      co_await t.async_wait(use_tuple);
      continue;
    }
    if (server.connections_.load(std::memory_order_relaxed) >= max_conns) {
      reject_overload(sock);
      continue;
    }
    server.connections_.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(target.io, session(target, std::move(sock)), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("http: connection failed: {}", ex.what());
        }
      }
    });
  }
}

namespace {

void fill_request(Request& req, const bhttp::request<bhttp::string_body>& msg) {
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.version = msg.version();
  req.keep_alive = msg.keep_alive();
  for (const auto& f : msg) req.headers.add(std::string(f.name_string()), std::string(f.value()));
}

}  // namespace

bool detail::parse_target(Request& req) {
  std::string_view t = req.target;
  // absolute-form (RFC 9112 3.2.2): keep only path and query.
  if (t.starts_with("http://") || t.starts_with("https://")) {
    auto p = t.find('/', t.find("//") + 2);
    t = p == std::string_view::npos ? std::string_view("/") : t.substr(p);
    req.target = std::string(t);
    t = req.target;
  }
  if (t.empty() || t.front() != '/') return false;
  auto q = t.find('?');
  std::string_view raw_path = t.substr(0, q);
  auto decoded = percent_decode(raw_path);
  req.path = decoded ? std::move(*decoded) : std::string(raw_path);
  if (!decoded) req.rejection = 400;
  if (q != std::string_view::npos) {
    std::string_view qs = t.substr(q + 1);
    auto hash = qs.find('#');
    if (hash != std::string_view::npos) qs = qs.substr(0, hash);
    while (!qs.empty()) {
      auto amp = qs.find('&');
      std::string_view item = qs.substr(0, amp);
      qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
      if (item.empty()) continue;
      auto eq = item.find('=');
      auto k = percent_decode(item.substr(0, eq), true);
      auto v = percent_decode(
          eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1), true);
      if (!k || !v) {
        req.rejection = 400;
        continue;
      }
      req.query.emplace(std::move(*k), std::move(*v));  // first value wins
    }
  }
  return true;
}

namespace {

bool header_safe(std::string_view s) noexcept {
  return s.find_first_of("\r\n") == std::string_view::npos;
}

/// The response as HTTP/1.x bytes in one buffer: one allocation, where
/// Beast's fields allocate per header and its serializer walks them again
/// (docs/PERFORMANCE.md). Names and values come from our own code; one with
/// a CR or LF (never expected) is dropped rather than allowed to split the
/// response.
std::string serialize(const Response& r, const Request& req, bool close) {
  const bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
  std::size_t size = 96 + r.body.size();
  for (const auto& [k, v] : r.headers.all()) size += k.size() + v.size() + 4;
  std::string out;
  out.reserve(size);
  out += req.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  std::string_view reason = reason_phrase(r.status);
  if (reason == "Unknown") reason = bhttp::obsolete_reason(bhttp::int_to_status(r.status));
  out += reason;
  out += "\r\n";
  for (const auto& [k, v] : r.headers.all()) {
    if (k.empty() || !header_safe(k) || k.find(':') != std::string::npos || !header_safe(v)) {
      spdlog::error("http: response header dropped: unsafe characters in {}",
                    header_safe(k) ? k : "?");
      continue;
    }
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  if (!no_body) {
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n";
  }
  if (req.version == 10) {
    if (!close) out += "Connection: keep-alive\r\n";
  } else if (close) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  if (!no_body && req.method != "HEAD") out += r.body;
  return out;
}

}  // namespace

asio::awaitable<void> Server::Impl::session(ThreadState& ts, tcp::socket sock) {
  const auto& o = server.opts_;
  beast::tcp_stream stream(std::move(sock));
  Conn conn{&stream};
  auto it = ts.conns.insert(ts.conns.end(), &conn);
  struct Unregister {
    ThreadState& ts;
    std::list<Conn*>::iterator it;
    std::atomic<std::size_t>& count;
    ~Unregister() {
      ts.conns.erase(it);
      count.fetch_sub(1, std::memory_order_relaxed);
    }
  } unregister{ts, it, server.connections_};

  std::string peer;
  std::uint16_t peer_port = 0;
  {
    boost::system::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (ec) co_return;
    auto a = ep.address();
    if (a.is_v6() && a.to_v6().is_v4_mapped())
      a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    peer = a.to_string();
    peer_port = ep.port();
  }
  if (ts.draining) co_return;

  beast::flat_buffer buffer;
  auto watchdog = std::make_shared<Watchdog>(stream.get_executor());
  watchdog->sock = &stream.socket();
  struct DisarmOnExit {
    std::shared_ptr<Watchdog> wd;
    ~DisarmOnExit() {
      wd->sock = nullptr;
      wd->disarm();
    }
  } disarm_on_exit{watchdog};
  bool linger = false;  // closing on an error: the peer may still be sending
  auto send_error = [&](unsigned status, std::string_view why) -> asio::awaitable<void> {
    auto id = generate_request_id();
    if (ts.handler.on_protocol_error) ts.handler.on_protocol_error(status, id, peer, why);
    linger = true;
    auto res = protocol_error(status, id, why);
    stream.expires_after(std::min(o.write_timeout, std::chrono::milliseconds(5000)));
    co_await bhttp::async_write(stream, res, use_tuple);
  };

  bool first = true;
  while (!ts.draining) {
    conn.busy = false;
    // Keep-alive: wait for the next request's first byte for the idle time;
    // the header timeout starts with it (slowloris). Nothing arrives: close.
    if (!first && buffer.size() == 0) {
      stream.expires_after(o.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
      if (ec) break;
      buffer.commit(n);
    }
    first = false;

    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(o.header_limit));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    stream.expires_never();
    // A whole header block already read (the usual keep-alive request came
    // in one segment) is parsed without waiting for the peer: no deadline.
    const bool waits = !header_buffered(buffer);
    if (waits)
      Watchdog::arm(watchdog, o.header_timeout);
    else
      watchdog->clear();
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
    if (waits) watchdog->disarm();
    if (hec) {
      if (watchdog->fired && !ts.draining) {
        co_await send_error(408, "Request headers not received in time");
      } else if (hec == bhttp::error::header_limit) {
        co_await send_error(431, "Request header block too large");
      } else if (hec == bhttp::error::end_of_stream || hec == asio::error::eof ||
                 hec == asio::error::connection_reset || hec == asio::error::operation_aborted ||
                 hec == asio::error::bad_descriptor || hec == bhttp::error::partial_message) {
        // The peer went away (or we are shutting down): nothing to answer.
      } else {
        co_await send_error(400, "Malformed request");
      }
      break;
    }
    conn.busy = true;

    Request req;
    req.received = std::chrono::steady_clock::now();
    fill_request(req, parser.get());
    req.peer_address = peer;
    req.peer_port = peer_port;
    if (!detail::parse_target(req)) {
      co_await send_error(400, "Malformed request target");
      break;
    }
    if (req.version == 11 && !parser.get().count(bhttp::field::host)) {
      co_await send_error(400, "HTTP/1.1 request without a Host header");  // RFC 9112 3.2
      break;
    }
    bool close_after = !req.keep_alive;
    std::size_t limit = o.body_limit;
    if (!req.rejection) {
      limit = ts.handler.resolve ? ts.handler.resolve(req) : o.body_limit;
    }
    const auto content_length = parser.content_length();
    if (content_length && *content_length > limit) {
      // Refused before reading the body; the connection cannot be reused.
      req.rejection = 413;
      close_after = true;
      linger = true;
    } else if (!parser.is_done()) {
      if (auto e = parser.get()[bhttp::field::expect]; iequals(e, "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
        stream.expires_after(o.write_timeout);
        auto [wec, wn] = co_await bhttp::async_write(stream, cont, use_tuple);
        if (wec) break;
      }
      parser.body_limit(limit);
      stream.expires_never();
      Watchdog::arm(watchdog, o.body_timeout);
      auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      watchdog->disarm();
      if (bec == bhttp::error::body_limit) {
        req.rejection = 413;
        close_after = true;
        linger = true;
      } else if (bec && watchdog->fired && !ts.draining) {
        co_await send_error(408, "Request body not received in time");
        break;
      } else if (bec) {
        if (bec != bhttp::error::end_of_stream && bec != asio::error::eof &&
            bec != asio::error::connection_reset && bec != asio::error::operation_aborted &&
            bec != bhttp::error::partial_message)
          co_await send_error(400, "Malformed request body");
        break;
      } else {
        req.body = std::move(parser.get().body());
      }
    }

    Response res;
    try {
      res = co_await ts.handler.handler(req);
    } catch (const std::exception& e) {
      spdlog::error("http: unhandled exception in the handler chain: {}", e.what());
      res = Response::json_text(
          "{\"error\":\"internal\",\"message\":\"Internal server error\",\"requestId\":\"" +
              req.request_id + "\"}",
          500);
      res.headers.set("X-Request-Id", req.request_id);
    }
    close_after = close_after || res.close || ts.draining;
    const std::string out = serialize(res, req, close_after);
    stream.expires_after(o.write_timeout);
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(out), use_tuple);
    if (wec || close_after) break;
  }
  conn.busy = false;
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (linger && !ec && stream.socket().is_open()) {
    // Lingering close: discard what the peer still sends for a moment, so
    // that closing with unread data (a refused body) does not turn into a
    // reset that destroys our error response before the peer reads it.
    stream.expires_after(1s);
    std::size_t discarded = 0;
    std::array<char, 8192> sink;
    while (discarded < (4u << 20)) {
      auto [rec, rn] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
      if (rec) break;
      discarded += rn;
    }
  }
  stream.socket().close(ec);
}

}  // namespace jeweler::http
