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
#include <boost/beast/core/buffers_range.hpp>
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
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

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

/// A string body that grows with the bytes received. Beast's string_body
/// reserves the declared Content-Length at once, so a request head alone
/// would make the server allocate up to the route's limit. Each capacity
/// increase is charged first against the process-wide budget
/// (HTTP_BODY_MEMORY_BYTES, Server::body_bytes_) and given back when the
/// request is over (the parser, which owns the value, is destroyed).
struct GrowingBody {
  struct value_type {
    std::string data;
    std::atomic<std::size_t>* budget_used = nullptr;  // null: not accounted
    std::size_t budget_limit = 0;
    std::size_t cap_limit = 0;  // the route's body limit: capacity stops there
    std::size_t charged = 0;    // bytes of budget this body holds
    std::size_t received = 0;   // body bytes seen (also when discarding)
    bool discard = false;       // draining a refused request's body: keep nothing

    value_type() = default;
    value_type(const value_type&) = delete;
    value_type& operator=(const value_type&) = delete;
    value_type(value_type&& o) noexcept
        : data(std::move(o.data)),
          budget_used(o.budget_used),
          budget_limit(o.budget_limit),
          cap_limit(o.cap_limit),
          charged(std::exchange(o.charged, 0)),
          received(o.received),
          discard(o.discard) {}
    value_type& operator=(value_type&& o) noexcept {
      if (this != &o) {
        release();
        data = std::move(o.data);
        budget_used = o.budget_used;
        budget_limit = o.budget_limit;
        cap_limit = o.cap_limit;
        charged = std::exchange(o.charged, 0);
        received = o.received;
        discard = o.discard;
      }
      return *this;
    }
    ~value_type() { release(); }

    void release() noexcept {
      if (budget_used && charged) budget_used->fetch_sub(charged, std::memory_order_relaxed);
      charged = 0;
    }
    /// Makes the charge equal `capacity` (what the string really holds).
    void settle(std::size_t capacity) noexcept {
      if (budget_used && capacity > charged)
        budget_used->fetch_add(capacity - charged, std::memory_order_relaxed);
      else if (budget_used && capacity < charged)
        budget_used->fetch_sub(charged - capacity, std::memory_order_relaxed);
      charged = capacity;
    }
    /// Takes `n` more bytes of budget; false (nothing taken) when that
    /// would exceed it.
    bool charge(std::size_t n) noexcept {
      if (budget_used) {
        auto before = budget_used->fetch_add(n, std::memory_order_relaxed);
        if (before + n > budget_limit) {
          budget_used->fetch_sub(n, std::memory_order_relaxed);
          return false;
        }
      }
      charged += n;
      return true;
    }
  };

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& b) : body_(b) {}

    void init(const boost::optional<std::uint64_t>&, beast::error_code& ec) {
      ec = {};  // deliberately no reserve(content_length)
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      const std::size_t n = asio::buffer_size(buffers);
      body_.received += n;
      ec = {};
      if (body_.discard) return n;
      auto& d = body_.data;
      const std::size_t need = d.size() + n;
      if (need > d.capacity()) {
        // Geometric growth, capped at the route's limit (the parser refuses
        // more than that anyway): at most about twice the bytes received,
        // never more than the limit.
        std::size_t want = std::max<std::size_t>(d.capacity() * 2, 4096);
        want = std::max(need, std::min(want, std::max(body_.cap_limit, need)));
        if (want > body_.charged && !body_.charge(want - body_.charged)) {
          ec = asio::error::no_buffer_space;  // the body budget is spent: 503
          return 0;
        }
        // A fresh string gets exactly the capacity asked for (reserve() on
        // a grown one may double it): the charge matches the memory.
        std::string grown;
        grown.reserve(want);
        grown.append(d);
        d.swap(grown);
        body_.settle(d.capacity());
      }
      for (auto b : beast::buffers_range_ref(buffers))
        d.append(static_cast<const char*>(b.data()), b.size());
      return n;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

using Parser = bhttp::request_parser<GrowingBody>;

bool peer_went_away(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::bad_descriptor || ec == bhttp::error::partial_message;
}

/// The body of the current request, read on demand (Request::read_body) by
/// the pipeline once the request is allowed to have it.
struct WireBody final : BodyReader {
  enum class State { unread, done, failed };

  WireBody(beast::tcp_stream& s, beast::flat_buffer& b, Parser& p, std::shared_ptr<Watchdog> w,
           const ServerOptions& opts, const bool& draining, bool expect_continue)
      : stream(s),
        buffer(b),
        parser(p),
        watchdog(std::move(w)),
        o(opts),
        draining(draining),
        expect_continue(expect_continue) {}

  asio::awaitable<unsigned> read(Request& req) override {
    state = State::failed;  // until the whole body is in
    if (expect_continue) {
      // Only now: the client waits for it before sending a large body.
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      stream.expires_after(o.write_timeout);
      auto [wec, wn] = co_await bhttp::async_write(stream, cont, use_tuple);
      if (wec) {
        peer_gone = true;
        co_return 400u;
      }
    }
    stream.expires_never();
    Watchdog::arm(watchdog, o.body_timeout);
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
    watchdog->disarm();
    req.bytes_in = parser.get().body().received;
    if (!ec) {
      req.body = std::move(parser.get().body().data);
      state = State::done;
      co_return 0u;
    }
    if (ec == bhttp::error::body_limit) co_return 413u;
    if (ec == asio::error::no_buffer_space) co_return 503u;
    if (watchdog->fired && !draining) co_return 408u;
    if (peer_went_away(ec)) peer_gone = true;
    co_return 400u;
  }

  beast::tcp_stream& stream;
  beast::flat_buffer& buffer;
  Parser& parser;
  std::shared_ptr<Watchdog> watchdog;
  const ServerOptions& o;
  const bool& draining;
  const bool expect_continue;
  State state = State::unread;
  bool peer_gone = false;
};

/// A refused request's body up to this size is read and discarded after the
/// answer, so the connection stays usable; a larger one closes it.
constexpr std::uint64_t kDrainLimit = 64 * 1024;

}  // namespace

struct Server::Impl {
  Server& server;
  // Open connections per client address (HTTP_MAX_CONNECTIONS_PER_IP):
  // counted up by the acceptor (thread 0), down by each connection's thread.
  // Declared before `threads`: session frames destroyed with an io_context
  // give their address back.
  std::mutex per_ip_mu;
  std::unordered_map<asio::ip::address, std::size_t> per_ip;
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
  asio::awaitable<void> session(ThreadState& ts, tcp::socket sock, asio::ip::address addr,
                                std::uint16_t port);
  asio::awaitable<void> drain(std::size_t index, std::chrono::milliseconds deadline);
  void reject_overload(tcp::socket& sock, std::string_view peer, std::string_view why);
  bool admit_address(const asio::ip::address& a);
  void release_address(const asio::ip::address& a);
};

bool Server::Impl::admit_address(const asio::ip::address& a) {
  const auto cap = server.opts_.max_connections_per_ip;
  if (cap == 0) return true;
  std::lock_guard lock(per_ip_mu);
  auto [it, fresh] = per_ip.try_emplace(a, 0);
  if (it->second >= cap) return false;
  ++it->second;
  return true;
}

void Server::Impl::release_address(const asio::ip::address& a) {
  if (server.opts_.max_connections_per_ip == 0) return;
  std::lock_guard lock(per_ip_mu);
  auto it = per_ip.find(a);
  if (it == per_ip.end()) return;
  if (--it->second == 0) per_ip.erase(it);
}

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

void Server::Impl::reject_overload(tcp::socket& sock, std::string_view peer, std::string_view why) {
  // Best effort, never blocks the acceptor: a fresh socket's send buffer is empty.
  auto id = generate_request_id();
  // The acceptor runs on thread 0, whose handler hooks belong to it.
  if (threads[0]->handler.on_protocol_error)
    threads[0]->handler.on_protocol_error(503, id, peer, why);
  std::string msg =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
      "charset=utf-8\r\nConnection: close\r\nRetry-After: 1\r\nX-Request-Id: " +
      id + "\r\nContent-Length: ";
  std::string body = "{\"error\":\"service_unavailable\",\"message\":";
  detail::append_json_string(body, why);
  body += ",\"requestId\":\"" + id + "\"}";
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
    boost::system::error_code rec;
    auto ep = sock.remote_endpoint(rec);
    if (rec) continue;  // already gone
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    if (server.connections_.load(std::memory_order_relaxed) >= max_conns) {
      reject_overload(sock, addr.to_string(), "Too many connections");
      continue;
    }
    if (!admit_address(addr)) {
      reject_overload(sock, addr.to_string(), "Too many connections from this address");
      continue;
    }
    server.connections_.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(target.io, session(target, std::move(sock), addr, ep.port()),
                   [](std::exception_ptr e) {
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

/// A framing fault found in the head: answered with `status` and closed.
struct FramingFault {
  unsigned status = 0;  // 0: none
  const char* why = "";
};

/// RFC 9112 section 6.1/6.3 on the Transfer-Encoding codings (joined over
/// every Transfer-Encoding line): the last must be chunked, chunked only
/// once, and no other coding is implemented.
FramingFault check_codings(std::string_view list) {
  std::size_t count = 0;
  bool chunked_before_last = false, other = false, last_chunked = false;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    item = item.substr(0, item.find(';'));  // transfer-parameters
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.empty()) continue;  // empty list elements are allowed (RFC 9110 5.6.1)
    if (count > 0) {
      if (last_chunked)
        chunked_before_last = true;
      else
        other = true;
    }
    last_chunked = iequals(item, "chunked");
    ++count;
  }
  if (count == 0) return {400, "Empty Transfer-Encoding"};
  if (!last_chunked) return {400, "The last transfer coding is not chunked"};
  if (chunked_before_last) return {400, "chunked applied more than once"};
  if (other) return {501, "Transfer coding not implemented (only chunked is)"};
  return {};
}

/// Copies the head into `req` and checks what Beast leaves to us of RFC
/// 9112's framing rules (API.md section 1).
FramingFault fill_request(Request& req, const bhttp::request<GrowingBody>& msg) {
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.version = msg.version();
  req.keep_alive = msg.keep_alive();
  std::size_t hosts = 0;
  bool has_te = false, has_cl = false;
  std::string codings;
  for (const auto& f : msg) {
    req.headers.add(std::string(f.name_string()), std::string(f.value()));
    switch (f.name()) {
      case bhttp::field::host:
        ++hosts;
        break;
      case bhttp::field::content_length:
        has_cl = true;
        break;
      case bhttp::field::transfer_encoding:
        if (has_te) codings += ',';
        has_te = true;
        codings.append(f.value().data(), f.value().size());
        break;
      default:
        break;
    }
  }
  if (hosts > 1) return {400, "More than one Host header"};
  if (req.version == 11 && hosts == 0)
    return {400, "HTTP/1.1 request without a Host header"};  // RFC 9112 3.2
  if (!has_te) return {};
  // Whether Beast took it as a body or not: the framing is ambiguous.
  if (req.version < 11) return {400, "Transfer-Encoding in an HTTP/1.0 request"};
  if (has_cl) return {400, "Both Transfer-Encoding and Content-Length"};
  return check_codings(codings);
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

asio::awaitable<void> Server::Impl::session(ThreadState& ts, tcp::socket sock,
                                            asio::ip::address addr, std::uint16_t peer_port) {
  const auto& o = server.opts_;
  beast::tcp_stream stream(std::move(sock));
  Conn conn{&stream};
  auto it = ts.conns.insert(ts.conns.end(), &conn);
  struct Unregister {
    Impl& impl;
    ThreadState& ts;
    std::list<Conn*>::iterator it;
    asio::ip::address addr;
    ~Unregister() {
      ts.conns.erase(it);
      impl.release_address(addr);
      impl.server.connections_.fetch_sub(1, std::memory_order_relaxed);
    }
  } unregister{*this, ts, it, addr};

  const std::string peer = addr.to_string();
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

    Parser parser;
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
      } else if (peer_went_away(hec)) {
        // The peer went away (or we are shutting down): nothing to answer.
      } else {
        co_await send_error(400, "Malformed request");
      }
      break;
    }
    conn.busy = true;

    Request req;
    req.received = std::chrono::steady_clock::now();
    if (auto fault = fill_request(req, parser.get()); fault.status != 0) {
      co_await send_error(fault.status, fault.why);
      break;
    }
    req.peer_address = peer;
    req.peer_port = peer_port;
    if (!detail::parse_target(req)) {
      co_await send_error(400, "Malformed request target");
      break;
    }
    bool close_after = !req.keep_alive;
    std::size_t limit = o.body_limit;
    if (!req.rejection) {
      limit = ts.handler.resolve ? ts.handler.resolve(req) : o.body_limit;
    }
    // The body stays on the wire: the pipeline reads it (WireBody) once
    // authentication, rate limiting and routing let the request through.
    std::optional<WireBody> wire;
    const auto content_length = parser.content_length();
    if (content_length && *content_length > limit) {
      // Refused before reading the body; the connection cannot be reused.
      req.rejection = 413;
      close_after = true;
      linger = true;
    } else if (!parser.is_done()) {
      parser.body_limit(limit);
      auto& body = parser.get().body();
      body.budget_used = &server.body_bytes_;
      body.budget_limit = o.body_memory;
      body.cap_limit = limit;
      const bool expect = iequals(parser.get()[bhttp::field::expect], "100-continue");
      wire.emplace(stream, buffer, parser, watchdog, o, ts.draining, expect);
      req.body_reader = &*wire;
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
    bool drain_body = false;
    if (wire && wire->state == WireBody::State::unread) {
      // Answered without the body (401, 403, 404, 429, ...): a small one is
      // read and dropped after the answer, to keep the connection; a large
      // or chunked one closes it, and so does one the client holds back
      // for a 100 Continue it will not get (it may send the next request
      // instead of the body).
      const auto remaining = parser.content_length_remaining();
      if (!close_after && !wire->expect_continue && remaining && *remaining <= kDrainLimit) {
        drain_body = true;
      } else {
        close_after = true;
        linger = true;
      }
    } else if (wire && wire->state == WireBody::State::failed) {
      close_after = true;
      linger = !wire->peer_gone;
    }
    const std::string out = serialize(res, req, close_after);
    stream.expires_after(o.write_timeout);
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(out), use_tuple);
    if (wec || close_after) break;
    if (drain_body) {
      parser.get().body().discard = true;
      stream.expires_never();
      Watchdog::arm(watchdog, o.body_timeout);
      auto [dec, dn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      watchdog->disarm();
      if (dec) break;
    }
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
