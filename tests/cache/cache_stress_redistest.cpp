// Heavier cache tests on a real redis-server: pattern invalidation of 100,000
// keys while another client PINGs, and get_or_set across 3 processes.
#include <jeweler/cache/cache.hpp>

#include "co_test.hpp"
#include "redis_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

using namespace jeweler;
using namespace jeweler::cache;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using test::co_sleep;
using test::RedisServer;
using test::run_co;

namespace {

const TenantId kA = TenantId::from("aurum");
const TenantId kB = TenantId::from("argent");

asio::awaitable<std::unique_ptr<redis::Client>> connect(asio::io_context& io, redis::Config cfg) {
  auto c = redis::make_client(io.get_executor(), std::move(cfg));
  if (!co_await c->wait_ready(5s)) throw std::runtime_error("redis not ready");
  co_return c;
}

}  // namespace

TEST(CacheStress, PatternInvalidationOf100kKeysDoesNotBlockOtherClients) {
  RedisServer srv(test::RedisServerOptions{.appendonly = false});
  constexpr int kKeys = 100000;
  run_co(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto client = co_await connect(io, srv.config());
        CacheService cache(*client, std::make_shared<Options>(), std::make_shared<Stats>());
        // Fill: 100k customer entries of A, plus entries that must survive.
        for (int base = 0; base < kKeys; base += 1000) {
          std::vector<std::pair<std::string, std::string>> batch;
          for (int i = base; i < base + 1000; ++i)
            batch.emplace_back(std::to_string(i), "customer-" + std::to_string(i));
          auto r = co_await cache.mset(kA, "customer", std::move(batch));
          if (!r) throw std::runtime_error("mset failed");
        }
        for (int i = 0; i < 500; ++i) {
          EXPECT_TRUE(co_await cache.set(kB, "customer", std::to_string(i), "b"));
          EXPECT_TRUE(co_await cache.set(kA, "product", std::to_string(i), "p"));
        }
        EXPECT_EQ((co_await cache.keys_held(kA)).value(), std::uint64_t(kKeys + 500));

        // Another client PINGs in a loop on its own thread and records the
        // worst latency while the invalidation runs.
        std::atomic<bool> stop{false};
        std::atomic<std::int64_t> max_us{0}, pings{0};
        std::atomic<bool> ping_failed{false};
        std::thread pinger([&] {
          asio::io_context pio;
          asio::co_spawn(
              pio,
              [&]() -> asio::awaitable<void> {
                auto pc = co_await connect(pio, srv.config());
                while (!stop.load()) {
                  auto t0 = std::chrono::steady_clock::now();
                  auto r = co_await pc->exec(redis::Command::make("PING"));
                  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - t0)
                                .count();
                  if (!r) ping_failed = true;
                  pings++;
                  if (us > max_us.load()) max_us = us;
                }
                co_await pc->shutdown(1s);
              },
              asio::detached);
          pio.run();
        });
        co_await co_sleep(50ms);
        auto t0 = std::chrono::steady_clock::now();
        auto removed = co_await cache.invalidate_pattern(kA, "customer:*");
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - t0);
        stop = true;
        pinger.join();

        CO_ASSERT_TRUE(removed);
        EXPECT_EQ(*removed, std::uint64_t(kKeys));
        EXPECT_FALSE(ping_failed.load());
        std::printf(
            "[ info ] invalidate_pattern removed %llu keys in %lld ms; concurrent PING: "
            "%lld pings, max latency %.3f ms\n",
            static_cast<unsigned long long>(*removed), static_cast<long long>(took.count()),
            static_cast<long long>(pings.load()), static_cast<double>(max_us.load()) / 1000.0);
        // Generous on purpose: the machine is shared and noisy.
        EXPECT_LT(max_us.load(), 1000000);
        EXPECT_GT(pings.load(), 0);
        // Only A's customers went.
        EXPECT_EQ((co_await cache.keys_held(kA)).value(), 500u);
        EXPECT_EQ((co_await cache.keys_held(kB)).value(), 500u);
        EXPECT_FALSE((co_await cache.exists(kA, "customer", "12345")).value());
        EXPECT_TRUE((co_await cache.exists(kA, "product", "7")).value());
        co_await client->shutdown(1s);
      },
      180s);
}

namespace {

// One "process" of the multi-process test: 20 concurrent get_or_set calls of
// one key; the loader counts its runs in Redis. Returns 0 when every call got
// the value.
int child_main(const redis::Config& cfg, std::chrono::steady_clock::time_point start) {
  asio::io_context io;
  int rc = 10;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto client = co_await connect(io, cfg);
        CacheService cache(*client, std::make_shared<Options>(), std::make_shared<Stats>());
        asio::steady_timer t(io, start);
        co_await t.async_wait(asio::use_awaitable);
        std::string mine = "value-from-" + std::to_string(::getpid());
        Loader loader = [&]() -> asio::awaitable<Result<std::string>> {
          auto r = co_await client->exec(redis::Command::make("INCR", "test:loads"));
          if (!r) co_return r.error();
          co_await co_sleep(300ms);
          co_return mine;
        };
        int left = 20, good = 0;
        asio::steady_timer done(io, asio::steady_timer::time_point::max());
        for (int i = 0; i < 20; ++i) {
          asio::co_spawn(
              io,
              [&]() -> asio::awaitable<void> {
                auto r = co_await cache.get_or_set(kA, "kpi", "dashboard", loader);
                if (r) {
                  ++good;
                  co_await client->exec(redis::Command::make("RPUSH", "test:results", r->value));
                }
                if (--left == 0) done.cancel();
              },
              asio::detached);
        }
        boost::system::error_code ec;
        co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        rc = good == 20 ? 0 : 1;
        co_await client->shutdown(1s);
      },
      [&](std::exception_ptr e) {
        if (e) rc = 2;
      });
  io.run_for(30s);
  return rc;
}

}  // namespace

TEST(CacheStress, GetOrSetAcrossThreeProcessesRunsTheLoaderOnce) {
  RedisServer srv(test::RedisServerOptions{.appendonly = false});
  auto cfg = srv.config();
  auto start = std::chrono::steady_clock::now() + 1500ms;  // CLOCK_MONOTONIC: shared by processes
  std::vector<pid_t> children;
  for (int i = 0; i < 3; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(child_main(cfg, start));
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  EXPECT_EQ(srv.cli({"GET", "test:loads"}), "1");
  EXPECT_EQ(srv.cli({"LLEN", "test:results"}), "60");
  auto values = srv.cli({"LRANGE", "test:results", "0", "-1"});
  auto first = values.substr(0, values.find('\n'));
  EXPECT_EQ(first.rfind("value-from-", 0), 0u) << values;
  std::size_t same = 0, pos = 0;
  while ((pos = values.find(first, pos)) != std::string::npos) {
    ++same;
    pos += first.size();
  }
  EXPECT_EQ(same, 60u) << values;
  EXPECT_EQ(srv.cli({"EXISTS", "jeweler:cachelock:{aurum}:kpi:dashboard"}), "0");
}
