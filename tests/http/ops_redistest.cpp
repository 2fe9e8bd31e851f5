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

namespace {

/// The value of the first sample line that starts with `series` ("name" or
/// "name{labels}"), nullopt when absent.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while ((pos = text.find(series, pos)) != std::string::npos) {
    bool line_start = pos == 0 || text[pos - 1] == '\n';
    auto after = pos + series.size();
    if (line_start && after < text.size() && (text[after] == ' ' || text[after] == '{')) {
      auto eol = text.find('\n', after);
      auto line = text.substr(pos, eol - pos);
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
    pos = after;
  }
  return std::nullopt;
}

std::string scrape(std::uint16_t port) {
  auto r = http_request(port, "GET", "/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

/// Runs `promtool check metrics` on `text`; nullopt when promtool is missing.
std::optional<std::pair<int, std::string>> promtool_check(const std::string& text) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) return std::nullopt;
  auto dir = make_temp_dir("promtool");
  std::ofstream(dir + "/metrics.txt") << text;
  std::string cmd = "promtool check metrics < " + dir + "/metrics.txt > " + dir + "/out.txt 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(dir + "/out.txt");
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return std::make_pair(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out);
}

}  // namespace

TEST(Ops, MetricsOperatorsLookForFirst) {
  RedisServerOptions o;
  o.extra_args = {"--maxmemory", "64mb"};
  RedisServer redis(o);
  ServerProcess server({{"REDIS_URL", redis.url()}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  ASSERT_EQ(wait_status(port, "/health/ready", 200, 10s)->status, 200);

  std::string m;
  auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    m = scrape(port);
    if (sample(m, "jeweler_redis_memory_used_bytes")) break;
    std::this_thread::sleep_for(200ms);
  }
  // Build info: the version the binary reports.
  auto version = run_server({}, {"--version"}).output;  // "jeweler-server 0.1.0\n"
  version = version.substr(version.find(' ') + 1);
  version = version.substr(0, version.find('\n'));
  EXPECT_NE(m.find("jeweler_build_info{version=\"" + version + "\""), std::string::npos) << m;
  EXPECT_EQ(sample(m, "jeweler_build_info"), 1.0);
  EXPECT_NE(m.find("# TYPE jeweler_build_info gauge"), std::string::npos);

  // process_*: plausible values of this very process.
  auto rss = sample(m, "process_resident_memory_bytes");
  ASSERT_TRUE(rss) << m;
  EXPECT_GT(*rss, 1 << 20);
  EXPECT_GE(*sample(m, "process_virtual_memory_bytes"), *rss);
  auto fds = sample(m, "process_open_fds");
  ASSERT_TRUE(fds);
  EXPECT_GE(*fds, 4);  // stdio + the listener at least
  EXPECT_GE(*sample(m, "process_max_fds"), *fds);
  EXPECT_GE(*sample(m, "process_cpu_seconds_total"), 0);
  auto start = sample(m, "process_start_time_seconds");
  ASSERT_TRUE(start);
  auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch());
  EXPECT_LE(*start, now.count() + 5);
  EXPECT_GT(*start, now.count() - 600);  // started by this test
  EXPECT_GE(*sample(m, "process_threads"), 2);

  // Redis memory, from INFO: the maxmemory the harness set, a used size.
  EXPECT_EQ(sample(m, "jeweler_redis_memory_max_bytes"), 64.0 * 1024 * 1024) << m;
  EXPECT_GT(*sample(m, "jeweler_redis_memory_used_bytes"), 0);
  EXPECT_EQ(sample(m, "jeweler_redis_evicted_keys_total"), 0.0);
  EXPECT_NE(m.find("# TYPE jeweler_redis_evicted_keys_total counter"), std::string::npos);

  // INFO is cached: many scrapes do not make many INFO round trips.
  auto info_calls = [&] {
    auto stats = redis.cli({"INFO", "commandstats"});
    auto p = stats.find("cmdstat_info:calls=");
    return p == std::string::npos ? 0L : std::stol(stats.substr(p + 19));
  };
  auto t0 = std::chrono::steady_clock::now();
  auto before = info_calls();
  for (int i = 0; i < 50; ++i) scrape(port);
  auto after = info_calls();
  // One poll (2 INFO) per 5 s elapsed, +1 poll at each end, +1 for the cli's own INFO.
  auto polls =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0)
              .count() /
          5 +
      2;
  EXPECT_LE(after - before, 2 * polls + 1) << "50 scrapes made " << (after - before) << " INFO";

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0);
}

TEST(Ops, EvictionsShowInMetrics) {
  RedisServerOptions o;
  o.extra_args = {"--maxmemory", "3mb", "--maxmemory-policy", "allkeys-random"};
  RedisServer redis(o);
  ServerProcess server({{"REDIS_URL", redis.url()}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  // Fill well past maxmemory: Redis evicts to make room.
  for (int round = 0; round < 8; ++round)
    redis.cli({"EVAL", "for i=1,2000 do redis.call('SET', ARGV[1] .. i, string.rep('x', 512)) end",
               "0", "fill" + std::to_string(round) + ":"});
  redis.cli({"SET", "last", "x"});
  auto evicted_by_redis = std::stol(
      redis.cli({"INFO", "stats"}).substr(redis.cli({"INFO", "stats"}).find("evicted_keys:") + 13));
  ASSERT_GT(evicted_by_redis, 0);
  std::optional<double> evicted;
  auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    evicted = sample(scrape(port), "jeweler_redis_evicted_keys_total");
    if (evicted && *evicted > 0) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(evicted);
  EXPECT_GT(*evicted, 0);
  EXPECT_LE(*evicted, static_cast<double>(evicted_by_redis) + 0.5);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0);
}

TEST(Ops, MetricsPassPromtoolCheck) {
  RedisServer redis;
  ServerProcess server({{"REDIS_URL", redis.url()}, {"COOKIE_SECURE", "false"}}, {"--demo-data"});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  ASSERT_EQ(wait_status(port, "/health/ready", 200, 10s)->status, 200);
  // Traffic through every component, so that their families have samples:
  // logins (sessions, auth limiters), a cached route (cache, api limiters).
  for (int i = 0; i < 5; ++i) http_request(port, "GET", "/health");
  http_request(port, "GET", "/no/such/route");
  std::map<std::string, std::string> json_type = {{"Content-Type", "application/json"}};
  auto login = http_request(port, "POST", "/api/auth/login", json_type,
                            R"({"email":"owner@aurum.example","password":"aurum-owner-pw"})");
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 200) << login->body;
  http_request(port, "POST", "/api/auth/login", json_type,
               R"({"email":"owner@aurum.example","password":"wrong"})");
  auto token = json::parse(login->body).at("token").as_string();
  std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + std::string(token)}};
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(http_request(port, "GET", "/api/dashboard/kpi", auth)->status, 200);
  std::string m;
  auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    m = scrape(port);
    if (sample(m, "jeweler_redis_memory_used_bytes")) break;
    std::this_thread::sleep_for(200ms);
  }
  auto check = promtool_check(m);
  if (!check)
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; scripts/deps.sh)";
  EXPECT_EQ(check->first, 0) << check->second << "\n---\n" << m;
  // The families of the other components were part of what was checked.
  EXPECT_TRUE(sample(m, "jeweler_ratelimit_decisions_total")) << m;
  EXPECT_TRUE(sample(m, "jeweler_cache_requests_total")) << m;
  EXPECT_NE(m.find("jeweler_http_request_duration_seconds_bucket{route=\"/api/dashboard/kpi\""),
            std::string::npos)
      << m;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0);
}

// SHUTDOWN_DRAIN_DELAY_MS (Kubernetes-style): after SIGTERM, /health/ready
// answers 503 while new connections are still accepted and served; then the
// normal graceful shutdown closes the listener and the process exits 0.
TEST(Ops, DrainDelayKeepsServingWhileNotReady) {
  RedisServer redis;
  ServerProcess server({{"REDIS_URL", redis.url()}, {"SHUTDOWN_DRAIN_DELAY_MS", "12000"}});
  auto port = server.wait_listening();
  ASSERT_NE(port, 0) << server.output();
  ASSERT_EQ(wait_status(port, "/health/ready", 200, 10s)->status, 200);
  Conn keep(port);  // a keep-alive connection opened before the signal
  keep.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(keep.read_response(5s));

  server.signal(SIGTERM);
  auto ready = wait_status(port, "/health/ready", 503, 10s);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->status, 503) << ready->body;
  EXPECT_EQ(json::parse(ready->body).at("reason").as_string(), "shutting_down");
  EXPECT_FALSE(ready->header("retry-after").empty());
  // Still accepting: fresh connections are served (each http_request is one).
  int served = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = http_request(port, "GET", "/health/live");
    if (r && r->status == 200) ++served;
  }
  EXPECT_EQ(served, 5);
  auto h = http_request(port, "GET", "/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200) << h->body;  // Redis is fine; only readiness turned
  // The connection opened before the signal still works too.
  keep.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
  auto k = keep.read_response(5s);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->status, 200);
  EXPECT_TRUE(server.running());
  EXPECT_NE(server.output().find("draining"), std::string::npos) << server.output();

  // Then the normal shutdown: the listener closes and the process exits 0.
  EXPECT_EQ(server.wait_exit(40s), 0) << server.output();
  auto out = server.output();
  EXPECT_LT(out.find("draining"), out.find("shutting down: no new connections")) << out;
}

TEST(Ops, DrainDelayIsValidated) {
  auto r = run_server({{"SHUTDOWN_DRAIN_DELAY_MS", "-1"}}, {});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("SHUTDOWN_DRAIN_DELAY_MS"), std::string::npos) << r.output;
}
