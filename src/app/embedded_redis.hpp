// The embedded default (API.md section 6): when no Redis is configured (no
// REDIS_* connection variable), jeweler-server ALWAYS runs a private
// redis-server child: it never adopts whatever happens to listen on
// localhost:6379 (a local user could run a Redis there first and forge
// sessions). The child listens on a unix socket only (mode 0700, no TCP
// port), with persistence on (AOF + RDB); its data dir and socket are under
// the data directory (the folder of DATABASE_PATH, ./var/ by default), which
// is created 0700, and it runs with umask 077 so that its files are 0600. A
// supervisor thread notices if the child dies and restarts it (with
// backoff); stop() shuts it down cleanly (SIGTERM: it saves, then exits).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace jeweler::app {

struct ServerConfig;

/// The start-up decision: true when no REDIS_* connection variable is set,
/// whatever listens on localhost:6379 (nothing is probed).
bool use_embedded_redis(const ServerConfig& cfg) noexcept;

/// The full path of an executable `program` found on $PATH, if any.
std::optional<std::string> find_on_path(std::string_view program);

class EmbeddedRedis {
 public:
  /// `dir`: data directory (created 0700 if missing; throws
  /// std::runtime_error when it cannot be). Does not start anything.
  explicit EmbeddedRedis(std::string dir);
  ~EmbeddedRedis();
  EmbeddedRedis(const EmbeddedRedis&) = delete;
  EmbeddedRedis& operator=(const EmbeddedRedis&) = delete;

  /// Starts redis-server and waits (up to `timeout`) until it answers PING
  /// on its socket. Throws std::runtime_error with the reason (no
  /// redis-server binary, socket path too long, child exited: last log lines).
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// SIGTERM, wait up to `timeout` (then SIGKILL). Idempotent.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const std::string& socket_path() const noexcept { return socket_; }
  const std::string& dir() const noexcept { return dir_; }
  pid_t pid() const noexcept { return pid_.load(); }
  /// Times the child died unexpectedly (and was restarted).
  int crashes() const noexcept { return crashes_.load(); }

 private:
  pid_t spawn();
  /// False when the child exited (its wait status in *exit_status; the
  /// child is then reaped) or did not answer in time.
  bool wait_answering(std::chrono::milliseconds timeout, pid_t pid, int* exit_status = nullptr);
  void supervise();

  std::string dir_, socket_, log_;
  std::atomic<pid_t> pid_{-1};
  std::atomic<bool> stopping_{false};
  std::atomic<int> crashes_{0};
  std::mutex mu_;
  std::condition_variable exited_;
  bool running_ = false;
  std::thread supervisor_;
};

}  // namespace jeweler::app
