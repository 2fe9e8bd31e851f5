// Operations (issue 19): REDIS_URL forms and databases above 15 against a
// real redis-server, the metrics operators look for first (checked with
// promtool when it is installed), and the drain delay before shutdown.
#include "http_support.hpp"

#include <redis_server.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace jeweler::test;
using namespace std::chrono_literals;
namespace json = boost::json;

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

bool wait_output(ServerProcess& s, const std::string& needle, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (s.output().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

}  // namespace

TEST(Ops, DatabaseAboveFifteenWorksWhenTheServerHasIt) {
  RedisServerOptions o;
  o.unix_socket = true;
  o.extra_args = {"--databases", "32"};
  RedisServer redis(o);
  // A bare socket path with ?db=, as redis-cli -s / ioredis users write it.
  ServerProcess server({{"REDIS_URL", redis.unix_path() + "?db=20"}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  auto r = wait_status(port, "/health", 200, 10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body << server.output();
  EXPECT_NE(server.output().find("unix:" + redis.unix_path() + "?db=20"), std::string::npos)
      << server.output();
  // The server's connections selected database 20.
  auto clients = redis.cli({"CLIENT", "LIST"});
  EXPECT_NE(clients.find("db=20"), std::string::npos) << clients;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0);
}

TEST(Ops, DatabaseTheServerLacksIsReportedClearly) {
  RedisServer redis;  // 16 databases
  ServerProcess server({{"REDIS_URL", redis.url() + "/20"},
                        {"REDIS_RETRY_BASE_MS", "50"},
                        {"REDIS_RETRY_MAX_MS", "200"}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  EXPECT_TRUE(wait_output(server, "SELECT 20 refused by the server", 10s)) << server.output();
  auto out = server.output();
  EXPECT_NE(out.find("databases 21"), std::string::npos) << out;
  EXPECT_NE(out.find("out of range"), std::string::npos) << out;
  // Health tells the truth: down, not a crash.
  auto r = http_request(port, "GET", "/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(server.running());
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0);
}
