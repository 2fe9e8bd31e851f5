#include "redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

namespace jeweler::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string run_capture(const std::vector<std::string>& argv, int* status_out = nullptr) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  std::array<char, 4096> buf;
  for (;;) {
    ssize_t n = ::read(pipefd[0], buf.data(), buf.size());
    if (n > 0) {
      out.append(buf.data(), static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (status_out) *status_out = status;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

void run_checked(const std::vector<std::string>& argv) {
  int status = 0;
  run_capture(argv, &status);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("command failed: " + argv[0] + " " + (argv.size() > 1 ? argv[1] : ""));
}

}  // namespace

std::uint16_t RedisServer::free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

namespace {

bool port_free(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

/// A port p <= 55535 with p and p + 10000 (Redis Cluster's bus) both free.
std::uint16_t free_cluster_port() {
  std::mt19937 rng(std::random_device{}());
  for (int i = 0; i < 1000; ++i) {
    auto p = static_cast<std::uint16_t>(20000 + rng() % 35000);
    if (port_free(p) && port_free(static_cast<std::uint16_t>(p + 10000))) return p;
  }
  throw std::runtime_error("no free port pair for a cluster node");
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions opts) : opts_(std::move(opts)) {
  std::string tmpl = (fs::temp_directory_path() / "jeweler-redis-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  if (!opts_.tls_only) port_ = opts_.cluster_bus ? free_cluster_port() : free_port();
  if (opts_.tls || opts_.tls_only) {
    tls_port_ = free_port();
    make_certs();
  }
  start();
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string RedisServer::unix_path() const {
  return dir_ + "/redis.sock";
}

std::string RedisServer::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

redis::Config RedisServer::config() const {
  redis::Config c;
  c.endpoint = {"127.0.0.1", port_};
  c.password = opts_.password;
  c.connect_timeout = 1000ms;
  c.command_timeout = 2000ms;
  c.retry_base = 20ms;
  c.retry_max = 200ms;
  c.health_interval = 200ms;
  c.key_prefix = "jeweler:";
  return c;
}

void RedisServer::make_certs() {
  auto p = [&](const char* f) { return dir_ + "/" + f; };
  run_checked({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
               "/CN=jeweler-test-ca", "-keyout", p("ca.key"), "-out", p("ca.crt")});
  for (const char* who : {"server", "client"}) {
    std::string w = who;
    std::string ext = p((w + ".ext").c_str());
    if (FILE* f = std::fopen(ext.c_str(), "w")) {
      std::fputs("subjectAltName=DNS:localhost,IP:127.0.0.1\n", f);
      std::fclose(f);
    }
    run_checked({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                 "-keyout", p((w + ".key").c_str()), "-out", p((w + ".csr").c_str())});
    run_checked({"openssl", "x509", "-req", "-in", p((w + ".csr").c_str()), "-CA", p("ca.crt"),
                 "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", ext, "-out",
                 p((w + ".crt").c_str())});
  }
}

void RedisServer::start() {
  if (pid_ > 0) return;
  std::vector<std::string> args = {"redis-server",
                                   "--bind",
                                   "127.0.0.1",
                                   "--port",
                                   std::to_string(port_),
                                   "--dir",
                                   dir_,
                                   "--daemonize",
                                   "no",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   opts_.appendonly ? "yes" : "no",
                                   "--logfile",
                                   dir_ + "/redis.log",
                                   "--protected-mode",
                                   "no"};
  if (opts_.unix_socket) {
    args.insert(args.end(), {"--unixsocket", unix_path(), "--unixsocketperm", "700"});
  }
  if (!opts_.password.empty()) args.insert(args.end(), {"--requirepass", opts_.password});
  for (const auto& u : opts_.acl_users) {
    // One --user followed by the rule words as separate arguments.
    args.push_back("--user");
    std::size_t start = 0;
    while (start < u.size()) {
      auto sp = u.find(' ', start);
      if (sp == std::string::npos) sp = u.size();
      if (sp > start) args.push_back(u.substr(start, sp - start));
      start = sp + 1;
    }
  }
  if (tls_port_) {
    args.insert(args.end(),
                {"--tls-port", std::to_string(tls_port_), "--tls-cert-file", dir_ + "/server.crt",
                 "--tls-key-file", dir_ + "/server.key", "--tls-ca-cert-file", dir_ + "/ca.crt",
                 "--tls-auth-clients", "optional"});
  }
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  if (!opts_.sentinel_conf.empty()) {
    // Sentinel keeps its state in its configuration file: written once, then
    // rewritten by the sentinel itself (a restart keeps what it learnt).
    const std::string conf = dir_ + "/sentinel.conf";
    if (!fs::exists(conf)) {
      FILE* f = std::fopen(conf.c_str(), "w");
      if (!f) throw std::runtime_error("cannot write " + conf);
      for (const auto& line : opts_.sentinel_conf) std::fprintf(f, "%s\n", line.c_str());
      std::fclose(f);
    }
    args.insert(args.begin() + 1, {conf, "--sentinel"});
  }

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  wait_ready(10s);
}

void RedisServer::wait_ready(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start; see " + dir_ + "/redis.log");
    }
    try {
      if (cli({"PING"}) == "PONG") return;
    } catch (...) {
    }
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("redis-server did not answer PING in time");
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "--no-auth-warning"};
  if (port_) {
    argv.insert(argv.end(), {"-h", "127.0.0.1", "-p", std::to_string(port_)});
  } else {
    argv.insert(argv.end(),
                {"-h", "127.0.0.1", "-p", std::to_string(tls_port_), "--tls", "--cacert", ca_file(),
                 "--cert", client_cert_file(), "--key", client_key_file()});
  }
  if (!opts_.password.empty()) argv.insert(argv.end(), {"-a", opts_.password});
  argv.insert(argv.end(), args.begin(), args.end());
  int status = 0;
  std::string out = run_capture(argv, &status);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("redis-cli failed: " + out);
  return out;
}

}  // namespace jeweler::test
