// One multiplexed connection to one Redis server (standalone, or the master
// found through Sentinel), with automatic pipelining: commands issued while a
// write is in flight are coalesced into the next write; replies are matched
// in order. A run() coroutine owns connect, handshake, health PINGs and
// reconnection with exponential backoff and full jitter.
#pragma once

#include <jeweler/redis/client.hpp>
#include <jeweler/redis/detail/resp_parser.hpp>
#include <jeweler/redis/detail/transport.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <random>

namespace jeweler::redis::detail {

namespace asio = boost::asio;

struct PendingRequest {
  PendingRequest(asio::any_io_executor ex) : timer(ex) {}
  std::string wire;          // every command of the request, RESP-encoded
  std::size_t expected = 0;  // replies expected
  std::vector<Reply> replies;
  std::string name;  // first command's name, for the observer
  bool idempotent = false;
  bool written = false;
  bool done = false;
  bool abandoned = false;  // the caller stopped waiting (timeout)
  bool internal = false;   // handshake-free health PING
  boost::system::error_code ec;
  asio::steady_timer timer;  // the caller waits on it; cancelled on completion
  std::chrono::steady_clock::time_point started;
};

/// The thread-safe half of the client's health (Client::status_source):
/// written by the client's thread, read by any thread.
class StandaloneStatus final : public StatusSource {
 public:
  explicit StandaloneStatus(std::chrono::milliseconds stall_after) : stall_after_(stall_after) {}
  Status read() const noexcept override;
  /// Stalled at `now`: a request has waited longer than the deadline with no
  /// reply since (0 = nothing is waiting).
  bool stalled_at(std::chrono::steady_clock::time_point now) const noexcept;

  std::atomic<State> state{State::connecting};
  std::atomic<double> last_ping_ms{-1};
  std::atomic<std::uint64_t> reconnects{0};
  /// steady_clock nanoseconds since which the oldest unanswered request has
  /// been waiting with no reply read (0: nothing in flight).
  std::atomic<std::int64_t> waiting_since{0};

 private:
  std::chrono::milliseconds stall_after_;
};

class StandaloneClient final : public std::enable_shared_from_this<StandaloneClient> {
 public:
  StandaloneClient(asio::any_io_executor ex, Config cfg);

  void start();
  void stop() noexcept;  // immediate close (destructor path)

  asio::awaitable<Result<std::vector<Reply>>> run_request(std::string wire, std::size_t expected,
                                                          std::string_view name, ExecOptions opts,
                                                          bool internal = false);
  Health health() const;
  const Config& config() const noexcept { return cfg_; }
  asio::awaitable<void> shutdown(std::chrono::milliseconds deadline);
  asio::awaitable<bool> wait_ready(std::chrono::milliseconds timeout);
  void set_observer(std::shared_ptr<CommandObserver> o) { observer_ = std::move(o); }
  std::shared_ptr<const StatusSource> status_source() const { return status_; }

 private:
  struct Conn {
    explicit Conn(asio::any_io_executor ex) : write_signal(ex) {}
    std::shared_ptr<Transport> transport;
    RespParser parser;
    asio::steady_timer write_signal;  // the writer sleeps on it while idle
    bool alive = true;
    bool writing = false;
  };

  asio::awaitable<void> run();
  asio::awaitable<void> reader(std::shared_ptr<Conn> c);
  asio::awaitable<void> writer(std::shared_ptr<Conn> c);
  asio::awaitable<void> pinger();
  asio::awaitable<Result<Endpoint>> resolve_target(std::string& why);
  asio::awaitable<boost::system::error_code> handshake(std::shared_ptr<Transport> t,
                                                       RespParser& parser, std::string& why);
  void close_conn(const std::shared_ptr<Conn>& c, boost::system::error_code ec,
                  std::string_view why);
  void complete(const std::shared_ptr<PendingRequest>& r, boost::system::error_code ec);
  void fail_queue(boost::system::error_code ec);
  void set_state(State s, std::string_view why = {});
  void record_error(std::string why);
  std::chrono::milliseconds backoff(unsigned attempt);

  asio::any_io_executor ex_;
  Config cfg_;
  State state_ = State::connecting;
  // The circuit: set when a connection attempt fails (the error commands get
  // at once while it is set), cleared when the next attempt starts
  // (half-open: commands wait for that attempt, within their deadline).
  boost::system::error_code circuit_;
  std::shared_ptr<StandaloneStatus> status_;
  bool stopping_ = false;
  bool ever_connected_ = false;
  std::shared_ptr<Conn> conn_;
  std::deque<std::shared_ptr<PendingRequest>> queue_;     // waiting to be written
  std::deque<std::shared_ptr<PendingRequest>> inflight_;  // written, awaiting replies
  asio::steady_timer wake_;  // run() sleeps on it (backoff, connection alive)
  asio::steady_timer ping_timer_;
  std::shared_ptr<CommandObserver> observer_;
  std::mt19937_64 rng_;
  // health
  double last_ping_ms_ = -1;
  std::uint64_t reconnects_ = 0;
  std::uint64_t errors_ = 0;
  std::uint64_t commands_ = 0;
  std::string last_error_;
  int protocol_ = 0;
  Endpoint current_;
  std::string last_logged_error_;
};

}  // namespace jeweler::redis::detail
