// Test helpers for the HTTP integration tests: start the real jeweler-server
// binary as a child process and talk HTTP/1.1 to it over plain sockets.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace jeweler::test {

using Env = std::map<std::string, std::string>;

/// The jeweler-server child. Output (stdout+stderr) goes to a file.
class ServerProcess {
 public:
  /// Starts the binary with a clean environment: PATH, HOME, sanitizer
  /// options, PORT=0, HOST=127.0.0.1, HTTP_THREADS=2, JEWELER_TEST_ROUTES=1
  /// plus `env` (which may override them). `cwd` empty: a fresh temp dir.
  explicit ServerProcess(Env env, std::vector<std::string> args = {}, std::string cwd = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  /// Waits for the start-up line and returns the port; 0 if the process
  /// exited or did not print it in time.
  std::uint16_t wait_listening(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  const std::string& cwd() const noexcept { return cwd_; }
  void signal(int sig);
  /// Exit code (or 128+signal), nullopt if still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running();
  std::string output() const;

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string cwd_, out_path_;
  bool own_cwd_ = false;
  std::optional<int> exit_code_;
};

/// Runs the binary to completion (for --help, config errors, ...).
struct RunResult {
  int code = -1;
  std::string output;
};
RunResult run_server(Env env, std::vector<std::string> args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20));

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// A blocking client socket to 127.0.0.1:port.
class Conn {
 public:
  explicit Conn(std::uint16_t port);
  ~Conn();
  bool ok() const noexcept { return fd_ >= 0; }
  void send(const std::string& data);
  /// Reads one response (Content-Length or chunked body, or to EOF when
  /// neither); nullopt on timeout or when the connection closed first.
  std::optional<HttpResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::seconds(10), bool head = false);
  /// True when the server closed the connection (EOF/reset) within timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout);
  void close();

 private:
  int fd_ = -1;
  std::string buf_;
  bool fill(std::chrono::steady_clock::time_point until);
};

/// One request on a fresh connection (Connection: close).
std::optional<HttpResponse> http_request(std::uint16_t port, const std::string& method,
                                         const std::string& target,
                                         const std::map<std::string, std::string>& headers = {},
                                         const std::string& body = {});

/// True when a TCP connection to 127.0.0.1:port is accepted.
bool can_connect(std::uint16_t port);

std::string make_temp_dir(const std::string& tag);

}  // namespace jeweler::test
