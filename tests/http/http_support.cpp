#include "http_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace jeweler::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string make_temp_dir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("jeweler-" + tag + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

namespace {

std::vector<std::string> base_env() {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("PATH=") || kv.starts_with("HOME=") || kv.starts_with("ASAN_") ||
        kv.starts_with("UBSAN_") || kv.starts_with("LSAN_") || kv.starts_with("JEWELER_SANITIZED="))
      out.emplace_back(kv);
  }
  return out;
}

pid_t spawn(const Env& env, const std::vector<std::string>& args, const std::string& cwd,
            const std::string& out_path) {
  std::vector<std::string> envs = base_env();
  for (auto& [k, v] : env) {
    std::erase_if(envs, [&](const std::string& s) { return s.starts_with(k + "="); });
    envs.push_back(k + "=" + v);
  }
  std::vector<std::string> argv_s = {JEWELER_SERVER_BIN};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

ServerProcess::ServerProcess(Env env, std::vector<std::string> args, std::string cwd) {
  if (cwd.empty()) {
    cwd_ = make_temp_dir("srv");
    own_cwd_ = true;
  } else {
    cwd_ = cwd;
  }
  out_path_ = cwd_ + "/server.out";
  Env full = {{"PORT", "0"},
              {"HOST", "127.0.0.1"},
              {"HTTP_THREADS", "2"},
              {"JEWELER_TEST_ROUTES", "1"},
              {"LOG_LEVEL", "info"}};
  for (auto& [k, v] : env) full[k] = v;
  pid_ = spawn(full, args, cwd_, out_path_);
}

ServerProcess::~ServerProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_exit(10s);
  }
  if (own_cwd_) {
    std::error_code ec;
    fs::remove_all(cwd_, ec);
  }
}

std::uint16_t ServerProcess::wait_listening(std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    std::string out = slurp(out_path_);
    auto pos = out.find("listening on");
    if (pos != std::string::npos) {
      auto p = out.find("\"port\":", pos);
      if (p != std::string::npos) {
        port_ = static_cast<std::uint16_t>(std::atoi(out.c_str() + p + 7));
        return port_;
      }
    }
    if (!running()) return 0;
    std::this_thread::sleep_for(20ms);
  }
  return 0;
}

void ServerProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool ServerProcess::running() {
  if (exit_code_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(status);
    return false;
  }
  return true;
}

std::optional<int> ServerProcess::wait_exit(std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
  return exit_code_;
}

std::string ServerProcess::output() const {
  return slurp(out_path_);
}

RunResult run_server(Env env, std::vector<std::string> args, std::chrono::milliseconds timeout) {
  ServerProcess p(std::move(env), std::move(args));
  RunResult r;
  auto code = p.wait_exit(timeout);
  r.code = code ? *code : -1;
  r.output = p.output();
  return r;
}

Conn::Conn(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Conn::~Conn() {
  close();
}

void Conn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Conn::send(const std::string& data) {
  std::size_t off = 0;
  while (fd_ >= 0 && off < data.size()) {
    auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

bool Conn::fill(std::chrono::steady_clock::time_point until) {
  if (fd_ < 0) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
  char tmp[65536];
  auto n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<std::size_t>(n));
  return true;
}

std::optional<HttpResponse> Conn::read_response(std::chrono::milliseconds timeout, bool head) {
  auto until = std::chrono::steady_clock::now() + timeout;
  std::size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
    if (!fill(until)) return std::nullopt;
  HttpResponse r;
  std::string head_block = buf_.substr(0, end);
  buf_.erase(0, end + 4);
  std::istringstream in(head_block);
  std::string line;
  std::getline(in, line);
  if (line.size() < 12 || !line.starts_with("HTTP/1.")) return std::nullopt;
  r.status = std::atoi(line.c_str() + 9);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    r.headers[k] = v;
  }
  if (head || r.status == 204 || r.status == 304 || r.status / 100 == 1) return r;
  if (r.headers.count("content-length")) {
    std::size_t len = std::strtoull(r.headers["content-length"].c_str(), nullptr, 10);
    while (buf_.size() < len)
      if (!fill(until)) return std::nullopt;
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
  } else if (r.header("transfer-encoding").find("chunked") != std::string::npos) {
    while (true) {
      std::size_t nl;
      while ((nl = buf_.find("\r\n")) == std::string::npos)
        if (!fill(until)) return std::nullopt;
      std::size_t size = std::strtoull(buf_.c_str(), nullptr, 16);
      while (buf_.size() < nl + 2 + size + 2)
        if (!fill(until)) return std::nullopt;
      r.body += buf_.substr(nl + 2, size);
      buf_.erase(0, nl + 2 + size + 2);
      if (size == 0) break;
    }
  } else {
    while (fill(until)) {
    }
    r.body = std::move(buf_);
    buf_.clear();
  }
  return r;
}

bool Conn::closed_by_peer(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return true;
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count())));
    if (pr != 1) return false;
    char tmp[4096];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return true;
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
  return false;
}

std::optional<HttpResponse> http_request(std::uint16_t port, const std::string& method,
                                         const std::string& target,
                                         const std::map<std::string, std::string>& headers,
                                         const std::string& body) {
  Conn c(port);
  if (!c.ok()) return std::nullopt;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  c.send(req);
  return c.read_response(std::chrono::seconds(15), method == "HEAD");
}

bool can_connect(std::uint16_t port) {
  Conn c(port);
  return c.ok();
}

}  // namespace jeweler::test
