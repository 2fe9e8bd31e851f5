// The one Redis abstraction that services use. It never exposes a socket:
// standalone, Sentinel and Cluster implementations sit behind this interface.
//
// Threading: a Client lives on one executor (one io_context thread). Call it
// only from coroutines running on that executor. Give every io_context thread
// its own Client (see make_client).
//
//   auto client = redis::make_client(io.get_executor(), redis::Config::from_env());
//   auto r = co_await client->exec({"GET", "k"});
//   if (!r) ...            // r.error(): unavailable, timeout, connection_lost, ...
//   else if (r->is_error()) ...  // Redis answered -ERR: data, not a failure
//
// g++ 12 note: inside a coroutine, build commands with Command::make("GET", key)
// (or .arg()); a braced list of string literals, Command{"GET", "k"}, trips a
// compiler bug ("array used as initializer"); the same holds for any braced
// list used as a temporary inside a co_await expression: put it in a local
// variable first (std::vector<std::string> keys = {"k"}; co_await c.eval(s, keys, ...)).
#pragma once

#include <jeweler/redis/command.hpp>
#include <jeweler/redis/config.hpp>
#include <jeweler/redis/error.hpp>
#include <jeweler/redis/reply.hpp>
#include <jeweler/redis/script.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace jeweler::redis {

namespace asio = boost::asio;

/// Per-call options (userver's CommandControl).
struct ExecOptions {
  /// 0 = the client's command_timeout. Covers waiting for a connection too.
  std::chrono::milliseconds timeout{0};
  /// Safe to resend when the connection dropped after it was written. Never
  /// set this for anything that counts (INCR, rate-limit scripts, ...).
  bool idempotent = false;
};

enum class State { connecting, ready, reconnecting, closed };
std::string_view to_string(State s) noexcept;

struct Health {
  State state = State::connecting;
  Mode mode = Mode::standalone;
  std::string address;           // Config::describe(), no credentials
  double last_ping_ms = -1;      // latency of the last health PING, -1 = none yet
  std::uint64_t reconnects = 0;  // successful reconnections after the first connect
  std::uint64_t errors = 0;      // connection-level errors seen
  std::uint64_t commands = 0;    // commands completed (any outcome)
  std::string last_error;        // last connection-level error, for /health
  int protocol = 0;              // 2 or 3 once connected
  /// Connected, but a request written to it has waited longer than the
  /// health deadline without any reply (a frozen server): not up.
  bool stalled = false;
  bool up() const noexcept { return state == State::ready && !stalled; }
};

/// The part of Health that any thread may read at any time (Client itself is
/// bound to its thread). Computed at read time from atomics the client keeps
/// current, so /health, /health/ready and jeweler_redis_up read one state.
struct Status {
  State state = State::connecting;
  bool stalled = false;
  double last_ping_ms = -1;
  std::uint64_t reconnects = 0;
  bool up() const noexcept { return state == State::ready && !stalled; }
};

class StatusSource {
 public:
  virtual ~StatusSource() = default;
  /// Thread-safe; cheap (a few atomic loads and one clock read).
  virtual Status read() const noexcept = 0;
};

/// Observes command latencies (for /metrics). Called on the client's thread.
struct CommandObserver {
  virtual ~CommandObserver() = default;
  virtual void on_command(std::string_view name, std::chrono::nanoseconds latency, bool ok) = 0;
};

class Client {
 public:
  virtual ~Client() = default;

  /// Runs one command. The Result is an error only when no reply was had
  /// (see errc); a Redis error reply is a Reply with is_error().
  virtual asio::awaitable<Result<Reply>> exec(Command cmd, ExecOptions opts = {}) = 0;

  /// Runs several commands in one write; one Reply each, in order. EVALSHA
  /// entries added with Pipeline::add_eval are retried with EVAL on NOSCRIPT.
  virtual asio::awaitable<Result<std::vector<Reply>>> exec(Pipeline p, ExecOptions opts = {}) = 0;

  /// EVALSHA, then EVAL once if the server answers NOSCRIPT.
  asio::awaitable<Result<Reply>> eval(const Script& script, std::vector<std::string> keys,
                                      std::vector<std::string> args, ExecOptions opts = {});

  virtual Health health() const = 0;
  virtual const Config& config() const noexcept = 0;

  /// Stops taking commands (they fail with shutting_down), lets commands in
  /// flight finish until `deadline`, then closes the connection. Idempotent.
  virtual asio::awaitable<void> shutdown(std::chrono::milliseconds deadline) = 0;

  /// Waits (up to `timeout`) until the client is ready; false if it is not.
  virtual asio::awaitable<bool> wait_ready(std::chrono::milliseconds timeout) = 0;

  virtual void set_observer(std::shared_ptr<CommandObserver> observer) = 0;

  /// The connection state for readers on other threads (kept alive by the
  /// shared_ptr even after the client is gone: then it reads `closed`).
  virtual std::shared_ptr<const StatusSource> status_source() const = 0;

  /// REDIS_KEY_PREFIX: every key the product writes starts with it.
  const std::string& key_prefix() const noexcept { return config().key_prefix; }
};

/// Creates the client for `cfg.mode` and starts connecting in the background
/// on `ex`. Throws ConfigError for a mode this build does not support.
std::unique_ptr<Client> make_client(asio::any_io_executor ex, Config cfg);

}  // namespace jeweler::redis
