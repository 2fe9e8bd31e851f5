#include <jeweler/app/config.hpp>
#include <jeweler/app/embedded_redis.hpp>
#include <jeweler/core/private_files.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace jeweler::app {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// Non-blocking connect with a timeout; returns the fd or -1.
int connect_with_timeout(const sockaddr* sa, socklen_t len, int family,
                         std::chrono::milliseconds timeout) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int r = ::connect(fd, sa, len);
  if (r == 0) return fd;
  if (errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
    ::close(fd);
    return -1;
  }
  int err = 0;
  socklen_t el = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Sends PING and expects a reply line ("+PONG", or an error such as
/// -NOAUTH: either way a Redis answers).
bool ping(int fd, std::chrono::milliseconds timeout) {
  const char msg[] = "*1\r\n$4\r\nPING\r\n";
  if (::send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof msg - 1))
    return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  char buf[64];
  auto n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 && (buf[0] == '+' || buf[0] == '-');
}

}  // namespace

std::optional<std::string> find_on_path(std::string_view program) {
  const char* path_env = std::getenv("PATH");
  std::string_view path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = path.find(':');
    std::string dir(path.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + std::string(program);
    std::error_code ec;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate, ec))
      return candidate;
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

bool use_embedded_redis(const ServerConfig& cfg) noexcept {
  return !cfg.redis_configured;
}

EmbeddedRedis::EmbeddedRedis(std::string dir) {
  if (auto ec = files::make_private_dirs(dir))
    throw std::runtime_error("cannot create the data directory " + dir + ": " + ec.message());
  dir_ = fs::absolute(dir).lexically_normal().string();
  socket_ = dir_ + "/redis.sock";
  log_ = dir_ + "/redis.log";
}

EmbeddedRedis::~EmbeddedRedis() {
  stop();
}

pid_t EmbeddedRedis::spawn() {
  std::vector<std::string> args = {"redis-server", "--port",    "0",
                                   "--unixsocket", socket_,     "--unixsocketperm",
                                   "700",          "--dir",     dir_,
                                   "--appendonly", "yes",       "--daemonize",
                                   "no",           "--pidfile", dir_ + "/redis.pid",
                                   "--logfile",    log_,        "--protected-mode",
                                   "yes"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::error_code ec;
  fs::remove(socket_, ec);  // a stale socket from a crash
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    // Own process group: a Ctrl-C on the terminal reaches the server only;
    // the server stops Redis itself, after closing its connections.
    ::setpgid(0, 0);
    // If the server dies without stopping us, do not linger.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::close_range(3, ~0U, 0);  // no inherited listening sockets or client connections
    // Its files (AOF, RDB, log, pid file) readable by this user only,
    // whatever the umask the server was started with.
    ::umask(077);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  return pid;
}

bool EmbeddedRedis::wait_answering(std::chrono::milliseconds timeout, pid_t pid, int* exit_status) {
  auto until = std::chrono::steady_clock::now() + timeout;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, socket_.c_str(), sizeof sa.sun_path - 1);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {  // it exited (reaped here)
      if (exit_status) *exit_status = status;
      return false;
    }
    int fd = connect_with_timeout(reinterpret_cast<sockaddr*>(&sa), sizeof sa, AF_UNIX, 200ms);
    if (fd >= 0) {
      bool ok = ping(fd, 500ms);
      ::close(fd);
      if (ok) return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

void EmbeddedRedis::start(std::chrono::milliseconds timeout) {
  if (socket_.size() >= sizeof(sockaddr_un{}.sun_path))
    throw std::runtime_error("the socket path " + socket_ +
                             " is too long for a unix socket; set DATABASE_PATH to a shorter "
                             "directory or configure REDIS_URL");
  // Say what is missing before trying: a child that cannot exec leaves no log.
  const char* how_to_fix =
      "install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL to a Redis "
      "you run (e.g. REDIS_URL=redis://127.0.0.1:6379)";
  if (!find_on_path("redis-server")) {
    const char* path_env = std::getenv("PATH");
    throw std::runtime_error(
        std::string("no Redis is configured and redis-server was not found on the PATH (") +
        (path_env ? path_env : "PATH unset") + "): " + how_to_fix);
  }
  pid_t pid = spawn();
  int status = 0;
  if (!wait_answering(timeout, pid, &status)) {
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      throw std::runtime_error(std::string("cannot run redis-server (exec failed): ") + how_to_fix);
    std::error_code ec;
    if (!fs::exists(log_, ec))
      throw std::runtime_error(
          "the embedded redis-server exited before writing its log (" + log_ + "; exit status " +
          std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
          "): run `redis-server --version` to check the installation, or " + how_to_fix);
    std::string tail;
    std::ifstream in(log_);
    std::deque<std::string> lines;
    for (std::string l; std::getline(in, l);) {
      lines.push_back(l);
      if (lines.size() > 5) lines.pop_front();
    }
    for (auto& l : lines) tail += "\n  " + l;
    throw std::runtime_error("the embedded redis-server did not start (log " + log_ + ")" + tail);
  }
  pid_ = pid;
  {
    std::lock_guard lock(mu_);
    running_ = true;
  }
  supervisor_ = std::thread([this] { supervise(); });
}

void EmbeddedRedis::supervise() {
  auto backoff = 500ms;
  while (true) {
    pid_t pid = pid_.load();
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (stopping_) break;
    ++crashes_;
    spdlog::error(
        "{{\"msg\":\"embedded redis-server exited unexpectedly, restarting\",\"pid\":{},"
        "\"status\":{}}}",
        pid, status);
    // Restart; data comes back from the append-only file.
    while (!stopping_) {
      std::this_thread::sleep_for(backoff);
      if (stopping_) break;
      try {
        pid_t np = spawn();
        if (wait_answering(15s, np)) {
          pid_ = np;
          spdlog::info("{{\"msg\":\"embedded redis-server restarted\",\"pid\":{}}}", np);
          backoff = 500ms;
          break;
        }
        ::kill(np, SIGKILL);
        ::waitpid(np, &status, 0);
      } catch (const std::exception& e) {
        spdlog::error("{{\"msg\":\"embedded redis-server restart failed\",\"error\":\"{}\"}}",
                      e.what());
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
    }
    if (stopping_) break;
  }
  std::lock_guard lock(mu_);
  running_ = false;
  exited_.notify_all();
}

void EmbeddedRedis::stop(std::chrono::milliseconds timeout) {
  if (stopping_.exchange(true)) {
    if (supervisor_.joinable()) supervisor_.join();
    return;
  }
  pid_t pid = pid_.load();
  if (pid <= 0 || !supervisor_.joinable()) return;
  ::kill(pid, SIGTERM);  // redis-server saves and exits
  {
    std::unique_lock lock(mu_);
    if (!exited_.wait_for(lock, timeout, [this] { return !running_; })) {
      spdlog::warn("{\"msg\":\"embedded redis-server did not stop in time, killing it\"}");
      ::kill(pid, SIGKILL);
    }
  }
  supervisor_.join();
  std::error_code ec;
  fs::remove(socket_, ec);
}

}  // namespace jeweler::app
