// Tenant isolation of the cache's admin operations (issue 14, finding 10),
// against a real redis-server: one tenant's invalidation, pattern
// invalidation, "keys held" and statistics read only that tenant's keys
// (every command Redis executes, scripts included, is watched with MONITOR),
// and no glob pattern reaches another tenant's entries.
#include <jeweler/cache/cache.hpp>

#include "co_test.hpp"
#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

using namespace jeweler;
using namespace jeweler::cache;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using test::RedisServer;
using test::run_co;

namespace {

RedisServer& shared_server() {
  static RedisServer server(test::RedisServerOptions{.appendonly = false});
  return server;
}

const TenantId kA = TenantId::from("aurum");
const TenantId kB = TenantId::from("argent");

asio::awaitable<std::unique_ptr<redis::Client>> connect(asio::io_context& io, redis::Config cfg) {
  auto c = redis::make_client(io.get_executor(), std::move(cfg));
  if (!co_await c->wait_ready(5s)) throw std::runtime_error("redis not ready");
  co_return c;
}

/// A MONITOR connection read on its own thread: every command the server
/// executes (those run by scripts included, tagged "lua") until stop().
class Monitor {
 public:
  explicit Monitor(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("monitor: connect failed");
    timeval tv{0, 200000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char cmd[] = "MONITOR\r\n";
    if (::send(fd_, cmd, sizeof cmd - 1, 0) != static_cast<ssize_t>(sizeof cmd - 1))
      throw std::runtime_error("monitor: send failed");
    // The +OK arrives before any monitored command.
    while (text().find("+OK") == std::string::npos) read_some();
    reader_ = std::thread([this] {
      while (!stop_.load()) read_some();
    });
  }
  ~Monitor() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    ::close(fd_);
  }
  /// Waits until `marker` was seen (the caller sends e.g. ECHO marker), then
  /// returns every line up to it.
  std::vector<std::string> lines_until(const std::string& marker) {
    auto until = std::chrono::steady_clock::now() + 20s;
    while (text().find(marker) == std::string::npos && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(10ms);
    std::vector<std::string> out;
    std::istringstream in(text());
    for (std::string line; std::getline(in, line);) {
      out.push_back(line);
      if (line.find(marker) != std::string::npos) break;
    }
    return out;
  }

 private:
  std::string text() {
    std::lock_guard lock(mu_);
    return buf_;
  }
  void read_some() {
    char b[65536];
    auto n = ::recv(fd_, b, sizeof b, 0);
    if (n > 0) {
      std::lock_guard lock(mu_);
      buf_.append(b, static_cast<std::size_t>(n));
    }
  }
  int fd_ = -1;
  std::thread reader_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string buf_;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

asio::awaitable<void> fill(CacheService& c, const TenantId& t, int n) {
  const std::vector<std::string> namespaces = {"customer", "product"};
  for (const auto& ns : namespaces) {
    std::vector<std::pair<std::string, std::string>> batch;
    for (int i = 0; i < n; ++i) batch.emplace_back(std::to_string(i), t.str());
    if (!co_await c.mset(t, ns, std::move(batch))) throw std::runtime_error("mset failed");
  }
  if (!co_await c.set(t, "kpi", "dashboard", t.str())) throw std::runtime_error("set failed");
}

}  // namespace

// Tenant A's invalidations, "keys held" and statistics with tenant B holding
// ten times as many entries: no command Redis runs (scripts included) names
// a key of B or walks the keyspace (no SCAN, no KEYS), and every one of B's
// entries is still there with its value.
TEST(CacheSecurity, TenantOperationsTouchNoKeyOfAnotherTenant) {
  auto& srv = shared_server();
  srv.flushall();
  run_co(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto client = co_await connect(io, srv.config());
        CacheService c(*client, std::make_shared<Options>(), std::make_shared<Stats>());
        co_await fill(c, kA, 300);
        co_await fill(c, kB, 3000);
        (void)co_await c.get(kB, "customer", "1");  // B has statistics too
        auto b_keys = srv.cli({"DBSIZE"});

        srv.cli({"CONFIG", "RESETSTAT"});
        std::vector<std::string> lines;
        {
          Monitor mon(srv.port());
          EXPECT_EQ((co_await c.keys_held(kA)).value(), 601u);
          EXPECT_EQ((co_await c.tenant_stats(kA)).value().keys_held, 601u);
          EXPECT_EQ((co_await c.invalidate_pattern(kA, "customer:1*")).value(), 111u);
          EXPECT_EQ((co_await c.invalidate_pattern(kA, "*")).value(), 490u);
          EXPECT_TRUE(co_await c.set(kA, "kpi", "dashboard", "again"));
          EXPECT_EQ((co_await c.invalidate_tenant(kA)).value(), 1u);
          EXPECT_EQ((co_await c.tenant_stats(kA)).value().keys_held, 0u);
          srv.cli({"ECHO", "end-of-tenant-a"});
          lines = mon.lines_until("end-of-tenant-a");
        }
        std::size_t commands = 0, in_scripts = 0;
        for (const auto& line : lines) {
          auto l = lower(line);
          if (l.find("end-of-tenant-a") != std::string::npos ||
              l.find("\"config\"") != std::string::npos)
            continue;
          if (l.find('"') == std::string::npos) continue;  // +OK
          ++commands;
          if (l.find("[0 lua]") != std::string::npos) ++in_scripts;
          EXPECT_EQ(l.find("{argent}"), std::string::npos) << line;
          EXPECT_EQ(l.find("\"scan\""), std::string::npos) << line;
          EXPECT_EQ(l.find("\"keys\""), std::string::npos) << line;
          // Every key named is A's.
          for (auto pos = l.find("\"jeweler:"); pos != std::string::npos;
               pos = l.find("\"jeweler:", pos + 1))
            EXPECT_NE(l.substr(pos, l.find('"', pos + 1) - pos).find("{aurum}"), std::string::npos)
                << line;
        }
        EXPECT_GT(commands, 10u);
        EXPECT_GT(in_scripts, 600u);  // the scripts' own commands were seen
        std::printf(
            "[ info ] tenant A's operations: %zu commands seen by MONITOR (%zu in scripts), "
            "none naming tenant B\n",
            commands, in_scripts);
        auto info = srv.cli({"INFO", "commandstats"});
        EXPECT_EQ(info.find("cmdstat_scan:"), std::string::npos) << info;
        EXPECT_EQ(info.find("cmdstat_keys:"), std::string::npos) << info;

        // B is whole: every entry, its values, its statistics.
        EXPECT_EQ((co_await c.keys_held(kB)).value(), 6001u);
        for (int i = 0; i < 3000; i += 97) {
          EXPECT_EQ((co_await c.get(kB, "customer", std::to_string(i))).value(), "argent");
          EXPECT_EQ((co_await c.get(kB, "product", std::to_string(i))).value(), "argent");
        }
        EXPECT_EQ((co_await c.tenant_stats(kB)).value().total.invalidations, 0u);
        co_await client->shutdown(1s);
        (void)b_keys;
      },
      120s);
}

// Pattern invalidation is correct within the tenant (exactly the matching
// entries go) and no glob — wildcards, classes, escapes, another tenant's
// name, key-family text — removes anything of another tenant.
TEST(CacheSecurity, PatternInvalidationStaysInTheTenant) {
  auto& srv = shared_server();
  srv.flushall();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto client = co_await connect(io, srv.config());
    CacheService c(*client, std::make_shared<Options>(), std::make_shared<Stats>());
    auto ab = TenantId::from("ab"), abc = TenantId::from("abc");
    const std::vector<std::pair<std::string, std::string>> entries = {
        {"customer", "1"}, {"customer", "10"}, {"customer", "2"},
        {"product", "1"},  {"product", "x1"},  {"kpi", "dashboard"}};
    auto fill_all = [&](const TenantId& t) -> asio::awaitable<void> {
      for (const auto& [ns, key] : entries) EXPECT_TRUE(co_await c.set(t, ns, key, t.str()));
    };
    auto live = [&](const TenantId& t) -> asio::awaitable<std::vector<std::string>> {
      std::vector<std::string> out;
      for (const auto& [ns, key] : entries)
        if ((co_await c.exists(t, ns, key)).value()) out.push_back(ns + ":" + key);
      co_return out;
    };
    const std::vector<std::string> all = {"customer:1", "customer:10", "customer:2",
                                          "product:1",  "product:x1",  "kpi:dashboard"};

    // Correctness within the tenant.
    struct Case {
      std::string pattern;
      std::vector<std::string> left;
    };
    const std::vector<Case> cases = {
        {"customer:1*", {"customer:2", "product:1", "product:x1", "kpi:dashboard"}},
        {"*:1", {"customer:10", "customer:2", "product:x1", "kpi:dashboard"}},
        {"customer:?", {"customer:10", "product:1", "product:x1", "kpi:dashboard"}},
        {"product:[a-z]*",
         {"customer:1", "customer:10", "customer:2", "product:1", "kpi:dashboard"}},
        {"kpi:*", {"customer:1", "customer:10", "customer:2", "product:1", "product:x1"}},
        {"customer", all},
        {"*", {}}};
    for (const auto& k : cases) {
      co_await fill_all(ab);
      co_await fill_all(abc);
      co_await fill_all(kB);
      auto r = co_await c.invalidate_pattern(ab, k.pattern);
      EXPECT_TRUE(r) << k.pattern;
      EXPECT_EQ(co_await live(ab), k.left) << k.pattern;
      EXPECT_EQ(r ? *r : 0u, all.size() - k.left.size()) << k.pattern;
      EXPECT_EQ(co_await live(abc), all) << k.pattern;
      EXPECT_EQ(co_await live(kB), all) << k.pattern;
      (void)co_await c.invalidate_tenant(ab);
    }

    // Globs that try to leave the tenant.
    co_await fill_all(ab);
    co_await fill_all(abc);
    co_await fill_all(kB);
    const std::vector<std::string> escapes = {
        "*",       "**",        "?*",         "[a-z]*", "*\\",   "\\*",        "[",    "*]*",
        "*[^x]*",  "*argent*",  "*abc*",      "*c:*",   "*:*:*", "..*",        "c*:*", "cache:*",
        "*cache*", "jeweler:*", "\\{abc\\}*", "*\\}*",  "*[{]*", "*cacheidx*", "*\\*"};
    for (const auto& pat : escapes) {
      auto r = co_await c.invalidate_pattern(ab, pat);
      EXPECT_TRUE(r || r.error() == make_error_code(errc::invalid_argument)) << pat;
      EXPECT_EQ(co_await live(abc), all) << pat;
      EXPECT_EQ(co_await live(kB), all) << pat;
      co_await fill_all(ab);
    }
    // Braces, spaces and control bytes are refused outright.
    const std::vector<std::string> refused = {"*}*", "*{abc}*", "cache:{argent}:*",
                                              "a b", "a\nb",    ""};
    for (const auto& pat : refused)
      EXPECT_EQ((co_await c.invalidate_pattern(ab, pat)).error(),
                make_error_code(errc::invalid_argument))
          << pat;
    EXPECT_EQ((co_await c.keys_held(abc)).value(), all.size());
    EXPECT_EQ((co_await c.keys_held(kB)).value(), all.size());
    co_await client->shutdown(1s);
  });
}
