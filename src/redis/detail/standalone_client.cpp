#include <jeweler/redis/detail/standalone_client.hpp>
#include <jeweler/redis/log.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace jeweler::redis::detail {

using boost::system::error_code;
using std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    jeweler::logger().error("redis: internal coroutine failed: {}", ex.what());
  }
}

// Writes one command and reads exactly one reply (handshake only: nothing
// else is in flight on the connection yet).
asio::awaitable<Result<Reply>> roundtrip(Transport& t, RespParser& parser, const Command& cmd) {
  error_code ec;
  std::string wire = cmd.wire();
  co_await t.write_all(asio::buffer(wire), ec);
  if (ec) co_return make_error_code(errc::connection_lost);
  for (;;) {
    auto r = parser.next();
    if (!r) co_return r.error();
    if (*r) {
      if ((*r)->type == ReplyType::push) continue;
      co_return std::move(**r);
    }
    char* p = parser.prepare(4096);
    std::size_t n = co_await t.read_some(asio::buffer(p, 4096), ec);
    parser.commit(n);
    if (ec) co_return make_error_code(errc::connection_lost);
  }
}

bool is_auth_error(const Reply& r) {
  auto code = r.error_code();
  return code == "WRONGPASS" || code == "NOAUTH" || code == "NOPERM" ||
         r.str.find("invalid password") != std::string::npos ||
         r.str.find("invalid username-password") != std::string::npos;
}

}  // namespace

namespace {
std::int64_t ns_of(steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

bool StandaloneStatus::stalled_at(steady_clock::time_point now) const noexcept {
  const auto since = waiting_since.load(std::memory_order_relaxed);
  return since != 0 &&
         ns_of(now) - since >
             std::chrono::duration_cast<std::chrono::nanoseconds>(stall_after_).count();
}

Status StandaloneStatus::read() const noexcept {
  Status s;
  s.state = state.load(std::memory_order_relaxed);
  s.stalled = s.state == State::ready && stalled_at(steady_clock::now());
  s.last_ping_ms = last_ping_ms.load(std::memory_order_relaxed);
  s.reconnects = reconnects.load(std::memory_order_relaxed);
  return s;
}

StandaloneClient::StandaloneClient(asio::any_io_executor ex, Config cfg)
    : ex_(ex),
      cfg_(std::move(cfg)),
      // The health deadline: a request unanswered for this long marks the
      // connection stalled (a frozen server) before the PING times out.
      status_(
          std::make_shared<StandaloneStatus>(std::min(cfg_.command_timeout, cfg_.health_interval))),
      wake_(ex),
      ping_timer_(ex),
      rng_(std::random_device{}()) {}

void StandaloneClient::start() {
  auto self = shared_from_this();
  asio::co_spawn(
      ex_, [self]() { return self->run(); }, log_exception);
  asio::co_spawn(
      ex_, [self]() { return self->pinger(); }, log_exception);
}

void StandaloneClient::stop() noexcept {
  if (state_ == State::closed) return;
  stopping_ = true;
  if (conn_) close_conn(conn_, make_error_code(errc::shutting_down), "client closed");
  fail_queue(make_error_code(errc::shutting_down));
  set_state(State::closed);
  wake_.cancel();
  ping_timer_.cancel();
}

void StandaloneClient::set_state(State s, std::string_view why) {
  if (s == state_) return;
  State old = state_;
  state_ = s;
  status_->state.store(s, std::memory_order_relaxed);
  if (s == State::ready) {
    // The first connection is part of start-up, which prints one line
    // (API.md section 7); a reconnection is news.
    jeweler::logger().log(reconnects_ ? spdlog::level::info : spdlog::level::debug,
                          "redis: state={} address={} protocol=RESP{} reconnects={}", to_string(s),
                          cfg_.describe(), protocol_, reconnects_);
  } else if (s == State::closed) {
    jeweler::logger().info("redis: state=closed address={}", cfg_.describe());
  } else {
    jeweler::logger().warn("redis: state={} previous={} address={} reason=\"{}\"", to_string(s),
                           to_string(old), cfg_.describe(),
                           why.empty() ? last_error_ : std::string(why));
  }
}

void StandaloneClient::record_error(std::string why) {
  ++errors_;
  if (why != last_logged_error_) {
    jeweler::logger().warn("redis: error address={} reason=\"{}\"", cfg_.describe(), why);
    last_logged_error_ = why;
  }
  last_error_ = std::move(why);
}

std::chrono::milliseconds StandaloneClient::backoff(unsigned attempt) {
  // Exponential growth from retry_base, capped at retry_max, with full jitter
  // inside [retry_base, cap] so clients never retry in a tight loop.
  auto base = cfg_.retry_base.count();
  auto cap = cfg_.retry_max.count();
  long long exp = base;
  for (unsigned i = 0; i < attempt && exp < cap; ++i) exp *= 2;
  exp = std::min<long long>(exp, cap);
  std::uniform_int_distribution<long long> dist(std::min<long long>(base, exp), exp);
  return std::chrono::milliseconds(dist(rng_));
}

void StandaloneClient::complete(const std::shared_ptr<PendingRequest>& r, error_code ec) {
  if (r->done) return;
  r->done = true;
  r->ec = ec;
  ++commands_;
  if (observer_ && !r->internal)
    observer_->on_command(r->name, steady_clock::now() - r->started, !ec);
  r->timer.cancel();
}

void StandaloneClient::fail_queue(error_code ec) {
  auto q = std::move(queue_);
  queue_.clear();
  for (auto& r : q) complete(r, ec);
}

void StandaloneClient::close_conn(const std::shared_ptr<Conn>& c, error_code ec,
                                  std::string_view why) {
  if (!c->alive) return;
  c->alive = false;
  c->transport->close();
  c->write_signal.cancel();
  if (c != conn_) return;
  if (!stopping_) record_error(std::string(why));
  // Requests written on this connection: resend only the idempotent ones.
  auto inflight = std::move(inflight_);
  inflight_.clear();
  for (auto it = inflight.rbegin(); it != inflight.rend(); ++it) {
    auto& r = *it;
    if (r->idempotent && !r->abandoned && !r->done && !stopping_) {
      r->written = false;
      r->replies.clear();
      queue_.push_front(r);
    } else {
      complete(r, ec == make_error_code(errc::shutting_down)
                      ? ec
                      : make_error_code(errc::connection_lost));
    }
  }
  conn_.reset();
  status_->waiting_since.store(0, std::memory_order_relaxed);
  if (!stopping_) set_state(State::reconnecting, why);
  wake_.cancel();
}

asio::awaitable<Result<std::vector<Reply>>> StandaloneClient::run_request(std::string wire,
                                                                          std::size_t expected,
                                                                          std::string_view name,
                                                                          ExecOptions opts,
                                                                          bool internal) {
  auto self = shared_from_this();
  if (stopping_) co_return make_error_code(errc::shutting_down);
  if (circuit_) co_return circuit_;  // known down: fail now, not at the deadline
  if (queue_.size() + inflight_.size() >= cfg_.max_pending)
    co_return make_error_code(errc::queue_full);
  auto r = std::make_shared<PendingRequest>(ex_);
  r->wire = std::move(wire);
  r->expected = expected;
  r->name = std::string(name);
  r->idempotent = opts.idempotent;
  r->internal = internal;
  r->started = steady_clock::now();
  r->replies.reserve(expected);
  r->timer.expires_after(opts.timeout.count() > 0 ? opts.timeout : cfg_.command_timeout);
  queue_.push_back(r);
  if (conn_ && conn_->alive && !conn_->writing) conn_->write_signal.cancel();

  co_await r->timer.async_wait(use_tuple);
  if (!r->done) {
    r->abandoned = true;
    if (!r->written) {
      auto it = std::find(queue_.begin(), queue_.end(), r);
      if (it != queue_.end()) queue_.erase(it);
      ++commands_;
      if (observer_ && !internal)
        observer_->on_command(r->name, steady_clock::now() - r->started, false);
      co_return make_error_code(state_ == State::ready ? errc::timeout : errc::unavailable);
    }
    ++commands_;
    if (observer_ && !internal)
      observer_->on_command(r->name, steady_clock::now() - r->started, false);
    co_return make_error_code(errc::timeout);
  }
  if (r->ec) co_return r->ec;
  co_return std::move(r->replies);
}

asio::awaitable<void> StandaloneClient::writer(std::shared_ptr<Conn> c) {
  std::string buf;
  while (c->alive) {
    if (queue_.empty()) {
      c->write_signal.expires_at(steady_clock::time_point::max());
      co_await c->write_signal.async_wait(use_tuple);
      continue;
    }
    buf.clear();
    const bool was_idle = inflight_.empty();
    while (!queue_.empty() && buf.size() < (1u << 20)) {
      auto r = std::move(queue_.front());
      queue_.pop_front();
      if (r->abandoned || r->done) continue;
      buf += r->wire;
      r->written = true;
      inflight_.push_back(std::move(r));
    }
    if (buf.empty()) continue;
    // Nothing was waiting for a reply: the wait starts with this write.
    if (was_idle)
      status_->waiting_since.store(ns_of(steady_clock::now()), std::memory_order_relaxed);
    c->writing = true;
    error_code ec;
    co_await c->transport->write_all(asio::buffer(buf), ec);
    c->writing = false;
    if (!c->alive) co_return;
    if (ec) {
      close_conn(c, make_error_code(errc::connection_lost), "write failed: " + ec.message());
      co_return;
    }
  }
}

asio::awaitable<void> StandaloneClient::reader(std::shared_ptr<Conn> c) {
  constexpr std::size_t chunk = 16 * 1024;
  while (c->alive) {
    error_code ec;
    char* p = c->parser.prepare(chunk);
    std::size_t n = co_await c->transport->read_some(asio::buffer(p, chunk), ec);
    if (!c->alive) co_return;
    c->parser.commit(n);
    if (ec) {
      close_conn(
          c, make_error_code(errc::connection_lost),
          ec == asio::error::eof ? "connection closed by server" : "read failed: " + ec.message());
      co_return;
    }
    bool answered = false;
    for (;;) {
      auto r = c->parser.next();
      if (!r) {
        close_conn(c, make_error_code(errc::protocol_error), "protocol error in reply");
        co_return;
      }
      if (!*r) break;
      Reply& reply = **r;
      if (reply.type == ReplyType::push) continue;  // out-of-band (RESP3); no subscriptions here
      if (inflight_.empty()) {
        close_conn(c, make_error_code(errc::protocol_error), "reply without a request");
        co_return;
      }
      auto& req = inflight_.front();
      req->replies.push_back(std::move(reply));
      if (req->replies.size() == req->expected) {
        auto done = std::move(req);
        inflight_.pop_front();
        complete(done, {});
        answered = true;
      }
    }
    // A reply came: the server is alive; whatever is still in flight waits
    // from now on (one clock read per read, not per reply).
    if (answered)
      status_->waiting_since.store(inflight_.empty() ? 0 : ns_of(steady_clock::now()),
                                   std::memory_order_relaxed);
  }
}

asio::awaitable<error_code> StandaloneClient::handshake(std::shared_ptr<Transport> t,
                                                        RespParser& parser, std::string& why) {
  // The whole handshake shares the connect timeout: a guard closes the
  // transport when it expires, which fails the pending read/write.
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer guard(ex_, cfg_.connect_timeout);
  guard.async_wait([t, timed_out](error_code ec) {
    if (!ec) {
      *timed_out = true;
      t->close();
    }
  });
  auto fail = [&](errc e, std::string reason) {
    why = *timed_out ? "handshake timed out" : std::move(reason);
    return make_error_code(*timed_out ? errc::unavailable : e);
  };

  protocol_ = 2;
  bool need_resp2 = !cfg_.resp3;
  if (cfg_.resp3) {
    Command hello = Command::make("HELLO", "3");
    if (!cfg_.password.empty())
      hello.arg("AUTH").arg(cfg_.username.empty() ? "default" : cfg_.username).arg(cfg_.password);
    hello.arg("SETNAME").arg(cfg_.client_name);
    auto r = co_await roundtrip(*t, parser, hello);
    if (!r) co_return fail(errc::unavailable, "HELLO: " + r.error().message());
    if (r->is_error()) {
      if (is_auth_error(*r)) co_return fail(errc::auth_failed, "authentication failed: " + r->str);
      need_resp2 = true;  // NOPROTO or an old server without HELLO
    } else {
      protocol_ = 3;
    }
  }
  if (need_resp2) {
    if (!cfg_.password.empty()) {
      Command auth = Command::make("AUTH");
      if (!cfg_.username.empty()) auth.arg(cfg_.username);
      auth.arg(cfg_.password);
      auto r = co_await roundtrip(*t, parser, auth);
      if (!r) co_return fail(errc::unavailable, "AUTH: " + r.error().message());
      if (r->is_error()) co_return fail(errc::auth_failed, "authentication failed: " + r->str);
    }
    auto r = co_await roundtrip(*t, parser, Command::make("CLIENT", "SETNAME", cfg_.client_name));
    if (!r) co_return fail(errc::unavailable, "CLIENT SETNAME: " + r.error().message());
    if (r->is_error() && is_auth_error(*r))
      co_return fail(errc::auth_failed, "authentication required: " + r->str);
  }
  if (cfg_.db != 0) {
    auto r = co_await roundtrip(*t, parser, Command::make("SELECT", cfg_.db));
    if (!r) co_return fail(errc::unavailable, "SELECT: " + r.error().message());
    if (r->is_error())
      co_return fail(errc::invalid_argument,
                     "SELECT " + std::to_string(cfg_.db) + " refused by the server: " + r->str +
                         " (database " + std::to_string(cfg_.db) +
                         " from REDIS_DB/REDIS_URL needs `databases " +
                         std::to_string(static_cast<long long>(cfg_.db) + 1) +
                         "` or more in the server's configuration)");
  }
  if (cfg_.mode == Mode::sentinel) {
    auto r = co_await roundtrip(*t, parser, Command::make("ROLE"));
    if (!r) co_return fail(errc::unavailable, "ROLE: " + r.error().message());
    if (!r->is_array() || r->elements.empty() || r->elements[0].str != "master")
      co_return fail(errc::unavailable, "sentinel pointed at a server that is not a master");
  }
  guard.cancel();
  if (*timed_out) {
    why = "handshake timed out";
    co_return make_error_code(errc::unavailable);
  }
  co_return error_code{};
}

asio::awaitable<Result<Endpoint>> StandaloneClient::resolve_target(std::string& why) {
  if (cfg_.mode != Mode::sentinel) co_return cfg_.endpoint;
  // Ask each sentinel in turn for the current master.
  Config scfg = cfg_;
  scfg.unix_path.clear();
  for (const auto& s : cfg_.sentinels) {
    std::string swhy;
    auto t = co_await connect_transport(ex_, scfg, s, swhy);
    if (!t) {
      why = "sentinel " + s.host + ":" + std::to_string(s.port) + ": " + swhy;
      continue;
    }
    RespParser parser;
    asio::steady_timer guard(ex_, cfg_.connect_timeout);
    auto tr = *t;
    guard.async_wait([tr](error_code ec) {
      if (!ec) tr->close();
    });
    auto r = co_await roundtrip(
        *tr, parser, Command::make("SENTINEL", "get-master-addr-by-name", cfg_.sentinel_master));
    guard.cancel();
    tr->close();
    if (r && r->is_array() && r->elements.size() == 2) {
      auto port = r->elements[1].to_integer();
      if (port && *port > 0 && *port < 65536) {
        co_return Endpoint{r->elements[0].str, static_cast<std::uint16_t>(*port)};
      }
    }
    why = "sentinel " + s.host + ":" + std::to_string(s.port) + " does not know master '" +
          cfg_.sentinel_master + "'";
  }
  co_return make_error_code(errc::unavailable);
}

asio::awaitable<void> StandaloneClient::run() {
  auto self = shared_from_this();
  unsigned attempt = 0;
  while (!stopping_) {
    std::string why;
    error_code ec;
    std::shared_ptr<Conn> c;
    circuit_ = {};  // half-open: commands issued now wait for this attempt
    auto target = co_await resolve_target(why);
    if (target) {
      auto t = co_await connect_transport(ex_, cfg_, *target, why);
      if (t) {
        c = std::make_shared<Conn>(ex_);
        c->transport = *t;
        ec = co_await handshake(*t, c->parser, why);
        if (ec) c->transport->close();
      } else {
        ec = t.error();
      }
    } else {
      ec = target.error();
    }
    if (stopping_) {
      if (c) c->transport->close();
      break;
    }
    if (ec) {
      record_error(why);
      // The circuit opens: Redis is known to be unusable, so the commands
      // waiting for this attempt and every command until the next attempt
      // fail at once (auth_failed / invalid_argument keep their clear error).
      circuit_ =
          ec == make_error_code(errc::auth_failed) || ec == make_error_code(errc::invalid_argument)
              ? ec
              : make_error_code(errc::not_connected);
      fail_queue(circuit_);
      set_state(ever_connected_ ? State::reconnecting : State::connecting, why);
      wake_.expires_after(backoff(attempt++));
      co_await wake_.async_wait(use_tuple);
      continue;
    }
    attempt = 0;
    if (ever_connected_) ++reconnects_;
    status_->reconnects.store(reconnects_, std::memory_order_relaxed);
    ever_connected_ = true;
    current_ = *target;
    conn_ = c;
    set_state(State::ready);
    asio::co_spawn(
        ex_, [self, c]() { return self->reader(c); }, log_exception);
    asio::co_spawn(
        ex_, [self, c]() { return self->writer(c); }, log_exception);
    if (!queue_.empty()) c->write_signal.cancel();
    while (c->alive && !stopping_) {
      wake_.expires_at(steady_clock::time_point::max());
      co_await wake_.async_wait(use_tuple);
    }
    if (stopping_) break;
    // Lost the connection: first retry after a short jittered pause.
    wake_.expires_after(backoff(0));
    co_await wake_.async_wait(use_tuple);
  }
}

asio::awaitable<void> StandaloneClient::pinger() {
  auto self = shared_from_this();
  static const std::string ping = "*1\r\n$4\r\nPING\r\n";
  while (!stopping_) {
    ping_timer_.expires_after(cfg_.health_interval);
    co_await ping_timer_.async_wait(use_tuple);
    if (stopping_) break;
    if (state_ != State::ready) continue;
    auto c = conn_;
    auto start = steady_clock::now();
    auto r = co_await run_request(ping, 1, "PING", ExecOptions{cfg_.command_timeout, true}, true);
    if (stopping_) break;
    if (r && !(*r)[0].is_error()) {
      last_ping_ms_ =
          std::chrono::duration<double, std::milli>(steady_clock::now() - start).count();
      status_->last_ping_ms.store(last_ping_ms_, std::memory_order_relaxed);
    } else if (!r && r.error() == make_error_code(errc::timeout) && c && c == conn_ && c->alive) {
      close_conn(c, make_error_code(errc::timeout), "health PING timed out");
    }
  }
}

Health StandaloneClient::health() const {
  Health h;
  h.state = state_;
  h.stalled = state_ == State::ready && status_->stalled_at(steady_clock::now());
  h.mode = cfg_.mode;
  h.address =
      cfg_.mode == Mode::sentinel && ever_connected_
          ? cfg_.describe() + " master=" + current_.host + ":" + std::to_string(current_.port)
          : cfg_.describe();
  h.last_ping_ms = last_ping_ms_;
  h.reconnects = reconnects_;
  h.errors = errors_;
  h.commands = commands_;
  h.last_error = last_error_;
  h.protocol = state_ == State::ready ? protocol_ : 0;
  return h;
}

asio::awaitable<void> StandaloneClient::shutdown(std::chrono::milliseconds deadline) {
  auto self = shared_from_this();
  if (stopping_) co_return;
  stopping_ = true;
  auto until = steady_clock::now() + deadline;
  asio::steady_timer t(ex_);
  // Commands already accepted (queued or written) may finish until the deadline.
  while ((!queue_.empty() || !inflight_.empty()) && conn_ && steady_clock::now() < until) {
    t.expires_after(std::chrono::milliseconds(2));
    co_await t.async_wait(use_tuple);
  }
  stop();
}

asio::awaitable<bool> StandaloneClient::wait_ready(std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto until = steady_clock::now() + timeout;
  asio::steady_timer t(ex_);
  while (state_ != State::ready && state_ != State::closed && steady_clock::now() < until) {
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(use_tuple);
  }
  co_return state_ == State::ready;
}

}  // namespace jeweler::redis::detail
