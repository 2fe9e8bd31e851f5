// The server's life: health while Redis goes away and comes back, graceful
// shutdown with a request in flight, and the embedded redis-server.
#include "http_support.hpp"

#include <jeweler/app/embedded_redis.hpp>

#include <redis_server.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

using namespace jeweler::test;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::optional<HttpResponse> wait_status(std::uint16_t port, const std::string& target, int status,
                                        std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  std::optional<HttpResponse> r;
  while (std::chrono::steady_clock::now() < until) {
    r = http_request(port, "GET", target);
    if (r && r->status == status) return r;
    std::this_thread::sleep_for(100ms);
  }
  return r;
}

}  // namespace

TEST(Lifecycle, HealthFollowsRedisDownAndBack) {
  RedisServer redis;
  ServerProcess server({{"REDIS_URL", redis.url()},
                        {"REDIS_RETRY_BASE_MS", "50"},
                        {"REDIS_RETRY_MAX_MS", "300"},
                        {"REDIS_COMMAND_TIMEOUT_MS", "500"}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  auto r = wait_status(port, "/health", 200, 10s);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;

  redis.kill9();
  r = wait_status(port, "/health", 503, 10s);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 503) << r->body;
  auto v = json::parse(r->body).as_object();
  EXPECT_EQ(v.at("status").as_string(), "degraded");
  EXPECT_EQ(v.at("redis").at("status").as_string(), "down");
  EXPECT_EQ(v.at("redis").at("mode").as_string(), "standalone");
  EXPECT_EQ(v.at("error").as_string(), "service_unavailable");
  EXPECT_EQ(v.at("requestId").as_string(), r->header("x-request-id"));
  EXPECT_EQ(http_request(port, "GET", "/health/ready")->status, 503);
  EXPECT_EQ(http_request(port, "GET", "/health/live")->status, 200);
  // A route that needs Redis answers 503 + Retry-After, without hanging.
  auto t0 = std::chrono::steady_clock::now();
  auto need = http_request(port, "GET", "/__test/redis");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(need);
  EXPECT_EQ(need->status, 503) << need->body;
  EXPECT_EQ(json::parse(need->body).at("error").as_string(), "service_unavailable");
  EXPECT_FALSE(need->header("retry-after").empty());
  EXPECT_LT(took, 5s);  // bounded by the command timeout, not a hang
  EXPECT_TRUE(server.running());

  redis.start();
  r = wait_status(port, "/health", 200, 15s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(wait_status(port, "/health/ready", 200, 5s)->status, 200);
  EXPECT_EQ(wait_status(port, "/__test/redis", 200, 5s)->status, 200);
  std::this_thread::sleep_for(400ms);
  auto m = http_request(port, "GET", "/metrics");
  EXPECT_NE(m->body.find("jeweler_redis_up 1\n"), std::string::npos) << m->body;
  EXPECT_EQ(m->body.find("jeweler_redis_reconnects_total 0\n"), std::string::npos) << m->body;

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0) << server.output();
}

TEST(Lifecycle, GracefulShutdownFinishesRequestsInFlight) {
  RedisServer redis;
  ServerProcess server({{"REDIS_URL", redis.url()}, {"SHUTDOWN_TIMEOUT_MS", "8000"}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  ASSERT_TRUE(wait_status(port, "/health/ready", 200, 10s));

  // An idle keep-alive connection, and a slow request in flight.
  Conn idle(port);
  idle.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(idle.read_response(5s));
  Conn slow(port);
  slow.send("GET /__test/slow?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(300ms);
  auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGTERM);

  // The idle connection is closed, new connections are refused...
  EXPECT_TRUE(idle.closed_by_peer(3s));
  bool refused = false;
  for (int i = 0; i < 50 && !refused; ++i) {
    refused = !can_connect(port);
    if (!refused) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(refused);
  // ...the request in flight still gets its full answer, then the connection closes.
  auto r = slow.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto v = json::parse(r->body).as_object();
  EXPECT_EQ(v.at("sleptMs").as_int64(), 1500);
  EXPECT_TRUE(v.at("shuttingDownAtEnd").as_bool());  // readiness had turned
  EXPECT_EQ(r->header("connection"), "close");
  auto code = server.wait_exit(15s);
  EXPECT_EQ(code, 0) << server.output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
  auto out = server.output();
  EXPECT_NE(out.find("shutting down"), std::string::npos);
  EXPECT_NE(out.find("jeweler-server stopped"), std::string::npos);
}

TEST(Lifecycle, ShutdownDeadlineCutsSlowRequests) {
  RedisServer redis;
  ServerProcess server({{"REDIS_URL", redis.url()}, {"SHUTDOWN_TIMEOUT_MS", "300"}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  Conn slow(port);
  slow.send("GET /__test/slow?ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(300ms);
  auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGINT);
  auto code = server.wait_exit(15s);
  EXPECT_EQ(code, 0) << server.output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_TRUE(slow.closed_by_peer(1s));
}

TEST(Lifecycle, EmbeddedRedisStartsAndStopsCleanly) {
  auto cwd = make_temp_dir("emb");
  std::optional<int> code;
  pid_t redis_pid = -1;
  {
    ServerProcess server({}, {}, cwd);  // no REDIS_* at all
    auto port = server.wait_listening(30s);
    ASSERT_NE(port, 0) << server.output();
    auto out = server.output();
    EXPECT_NE(out.find("embedded redis-server"), std::string::npos) << out;
    EXPECT_NE(out.find("unix:" + fs::canonical(cwd).string() + "/var/redis.sock"),
              std::string::npos)
        << out;
    EXPECT_TRUE(fs::exists(cwd + "/var/redis.sock"));
    auto r = wait_status(port, "/health", 200, 10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(http_request(port, "GET", "/__test/redis")->status, 200);
    std::ifstream pidfile(cwd + "/var/redis.pid");
    pidfile >> redis_pid;
    ASSERT_GT(redis_pid, 0);
    EXPECT_EQ(::kill(redis_pid, 0), 0);  // alive

    server.signal(SIGTERM);
    code = server.wait_exit(20s);
    EXPECT_EQ(code, 0) << server.output();
  }
  // The child is gone (reaped by the server), its data persisted, socket removed.
  EXPECT_NE(::kill(redis_pid, 0), 0);
  EXPECT_TRUE(fs::exists(cwd + "/var/appendonlydir") || fs::exists(cwd + "/var/appendonly.aof"));
  EXPECT_FALSE(fs::exists(cwd + "/var/redis.sock"));
  fs::remove_all(cwd);
}

TEST(Lifecycle, EmbeddedRedisIsRestartedWhenItDies) {
  auto cwd = make_temp_dir("emb");
  {
    ServerProcess server({}, {}, cwd);
    auto port = server.wait_listening(30s);
    ASSERT_NE(port, 0) << server.output();
    ASSERT_EQ(wait_status(port, "/__test/redis", 200, 10s)->status, 200);
    pid_t first = -1;
    std::ifstream(cwd + "/var/redis.pid") >> first;
    ASSERT_GT(first, 0);
    ::kill(first, SIGKILL);
    auto out_has = [&](const std::string& s) {
      return server.output().find(s) != std::string::npos;
    };
    for (int i = 0; i < 100 && !out_has("embedded redis-server restarted"); ++i)
      std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(out_has("embedded redis-server exited unexpectedly")) << server.output();
    EXPECT_TRUE(out_has("embedded redis-server restarted")) << server.output();
    auto r = wait_status(port, "/__test/redis", 200, 15s);
    EXPECT_EQ(r->status, 200) << r->body;
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(20s), 0) << server.output();
  }
  fs::remove_all(cwd);
}
