// Sentinel mode against a real set started by the harness: a master, a
// replica and one sentinel (quorum 1) on loopback ports.
#include <jeweler/redis/client.hpp>

#include "co_test.hpp"
#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace jeweler;
using namespace jeweler::redis;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using test::co_sleep;
using test::RedisServer;
using test::RedisServerOptions;
using test::run_co;

namespace {

RedisServerOptions replica_of(const RedisServer& master) {
  return RedisServerOptions{
      .extra_args = {"--replicaof", "127.0.0.1", std::to_string(master.port())},
      .appendonly = false};
}

RedisServerOptions sentinel_of(const RedisServer& master, const std::string& name) {
  return RedisServerOptions{.appendonly = false,
                            .sentinel_conf = {"sentinel monitor " + name + " 127.0.0.1 " +
                                                  std::to_string(master.port()) + " 1",
                                              "sentinel down-after-milliseconds " + name + " 500",
                                              "sentinel failover-timeout " + name + " 2000"}};
}

Config sentinel_config(const RedisServer& master, const RedisServer& sentinel, std::string name) {
  Config cfg = master.config();  // the harness's short test timeouts
  cfg.mode = Mode::sentinel;
  cfg.sentinels = {Endpoint{"127.0.0.1", 1},  // nothing listens there: the next one is asked
                   Endpoint{"127.0.0.1", sentinel.port()}};
  cfg.sentinel_master = std::move(name);
  return cfg;
}

bool names_master(const Health& h, const RedisServer& s) {
  return h.address.find("master=127.0.0.1:" + std::to_string(s.port())) != std::string::npos;
}

}  // namespace

TEST(RedisSentinel, FindsTheMasterThenFollowsAFailover) {
  RedisServer master(RedisServerOptions{.appendonly = false});
  RedisServer replica(replica_of(master));
  RedisServer sentinel(sentinel_of(master, "jm"));
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), sentinel_config(master, sentinel, "jm"));
    CO_ASSERT_TRUE(co_await c->wait_ready(5s));
    EXPECT_EQ(c->health().mode, Mode::sentinel);
    EXPECT_TRUE(names_master(c->health(), master)) << c->health().address;
    auto set = co_await c->exec(Command::make("SET", "s:k", "before"));
    CO_ASSERT_TRUE(set);
    EXPECT_EQ(set->str, "OK");
    std::int64_t acked = 0;  // the replica has it (it may still be in its first sync)
    for (int i = 0; i < 20 && acked < 1; ++i) {
      auto w = co_await c->exec(Command::make("WAIT", 1, 500), ExecOptions{2s});
      CO_ASSERT_TRUE(w);
      acked = w->integer;
    }
    CO_ASSERT_EQ(acked, 1);

    // The sentinel learns of replicas from the master's INFO (every 10 s
    // after the first): wait until it lists this one, else it would have
    // nothing to promote.
    bool known = false;
    for (int i = 0; i < 300 && !known; ++i) {
      auto r = sentinel.cli({"SENTINEL", "REPLICAS", "jm"});
      known = r.find(std::to_string(replica.port())) != std::string::npos &&
              r.find("disconnected") == std::string::npos;
      if (!known) co_await co_sleep(100ms);
    }
    CO_ASSERT_TRUE(known);
    master.kill9();
    // The sentinel sees the master down after 500 ms and promotes the
    // replica; the client, reconnecting, asks the sentinels again and checks
    // ROLE. No restart, no new client.
    bool moved = false;
    for (int i = 0; i < 300 && !moved; ++i) {
      auto r = co_await c->exec(Command::make("SET", "s:after", "x"), ExecOptions{300ms});
      moved = r && !r->is_error() && names_master(c->health(), replica);
      if (!moved) co_await co_sleep(100ms);
    }
    EXPECT_TRUE(moved) << c->health().address << " / " << c->health().last_error;
    CO_ASSERT_TRUE(moved);
    auto before = co_await c->exec(Command::make("GET", "s:k"));
    CO_ASSERT_TRUE(before);
    EXPECT_EQ(before->str, "before");
    EXPECT_EQ(replica.cli({"ROLE"}).substr(0, 6), "master");
    EXPECT_GE(c->health().reconnects, 1u);
    co_await c->shutdown(1s);
  });
}

TEST(RedisSentinel, UnknownMasterNameIsAClearError) {
  RedisServer master(RedisServerOptions{.appendonly = false});
  RedisServer sentinel(sentinel_of(master, "jm"));
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), sentinel_config(master, sentinel, "no-such-master"));
    EXPECT_FALSE(co_await c->wait_ready(1s));
    auto r = co_await c->exec(Command::make("GET", "k"), ExecOptions{300ms});
    CO_ASSERT_FALSE(r);
    EXPECT_TRUE(is_unavailable(r.error())) << r.error().message();
    EXPECT_NE(c->health().last_error.find("does not know master 'no-such-master'"),
              std::string::npos)
        << c->health().last_error;
    co_await c->shutdown(1s);
  });
}
