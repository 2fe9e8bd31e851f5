// Test harness: a private redis-server on a free loopback port in a temp dir.
// Every test binary that needs Redis uses this; no test depends on a Redis the
// machine happens to run. The process is killed and the dir removed on
// destruction.
#pragma once

#include <jeweler/redis/config.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace jeweler::test {

struct RedisServerOptions {
  bool tls = false;                     // also listen with TLS (certs made with the openssl CLI)
  bool tls_only = false;                // TLS port only (port() is then 0)
  bool unix_socket = false;             // also listen on a unix socket
  std::string password;                 // requirepass
  std::vector<std::string> acl_users;   // lines for --user, e.g. "app on >pw ~* +@all"
  std::vector<std::string> extra_args;  // more redis-server --options
  bool appendonly = true;               // persistence so restart() keeps data
  bool cluster_bus = false;             // pick a port whose +10000 (cluster bus) is free too
  // Not empty: a Sentinel (redis-server <dir>/sentinel.conf --sentinel) with
  // these configuration lines, e.g. "sentinel monitor m 127.0.0.1 6379 1".
  std::vector<std::string> sentinel_conf;
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions opts = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  std::uint16_t tls_port() const noexcept { return tls_port_; }
  std::string unix_path() const;
  const std::string& dir() const noexcept { return dir_; }
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  std::string client_cert_file() const { return dir_ + "/client.crt"; }
  std::string client_key_file() const { return dir_ + "/client.key"; }
  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0; }

  /// A client config for the plain TCP port (short timeouts and retry
  /// intervals that suit tests), with the password if one was set.
  redis::Config config() const;
  /// "redis://127.0.0.1:PORT" (no credentials)
  std::string url() const;

  void start();   // (re)start on the same ports with the same data dir; waits until it answers
  void stop();    // SIGTERM, wait for exit (data saved)
  void kill9();   // SIGKILL, wait for exit
  void pause();   // SIGSTOP: the server stops answering but keeps connections
  void resume();  // SIGCONT

  /// Runs redis-cli against the server and returns its stdout (trailing
  /// newline trimmed). Throws on failure to run.
  std::string cli(const std::vector<std::string>& args) const;
  void flushall() const { cli({"FLUSHALL"}); }

  /// A free loopback TCP port (bound then released).
  static std::uint16_t free_port();

 private:
  void make_certs();
  void wait_ready(std::chrono::milliseconds timeout);

  RedisServerOptions opts_;
  std::string dir_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace jeweler::test
