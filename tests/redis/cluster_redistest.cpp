// Redis Cluster mode against a real three-master cluster started by the
// harness: slot routing, split pipelines, scripts, MOVED after a slot moves.
#include <jeweler/redis/client.hpp>
#include <jeweler/redis/script.hpp>

#include "co_test.hpp"
#include "redis_cluster.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

using namespace jeweler;
using namespace jeweler::redis;
using namespace std::chrono_literals;
using test::RedisCluster;
using test::run_co;

namespace {

RedisCluster& shared_cluster() {
  static RedisCluster cluster;
  return cluster;
}

/// Redirections the masters have answered so far (INFO errorstats).
long moved_replies(RedisCluster& c) {
  long n = 0;
  for (auto& node : c.nodes) {
    auto info = node->cli({"INFO", "errorstats"});
    auto at = info.find("errorstat_MOVED:count=");
    if (at != std::string::npos) n += std::stol(info.substr(at + 22));
  }
  return n;
}

ExecOptions idempotent() {
  ExecOptions o;
  o.idempotent = true;
  return o;
}

}  // namespace

TEST(RedisClusterSlots, KeySlotMatchesTheServer) {
  EXPECT_EQ(key_slot("123456789"), 12739);  // the CRC16/XMODEM check value 0x31C3
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));  // empty tag: the whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  auto& c = shared_cluster();
  for (std::string key :
       {"foo{}{bar}", "foo{{bar}}zap", "{user1000}.following", "a{b}c{d}", "}{x}"})
    EXPECT_EQ(std::to_string(key_slot(key)), c.nodes[0]->cli({"CLUSTER", "KEYSLOT", key})) << key;
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) {
    std::string key =
        "k" + std::to_string(rng()) + (i % 3 == 0 ? "{t:" + std::to_string(i) + "}" : "");
    EXPECT_EQ(std::to_string(key_slot(key)), c.nodes[0]->cli({"CLUSTER", "KEYSLOT", key})) << key;
  }
}

TEST(RedisCluster, RoutesKeysPipelinesAndScriptsAcrossMasters) {
  auto& cluster = shared_cluster();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto client = make_client(io.get_executor(), cluster.config());
    CO_ASSERT_TRUE(co_await client->wait_ready(10s));
    auto h = client->health();
    EXPECT_EQ(h.mode, Mode::cluster);
    EXPECT_TRUE(h.up());

    const long moved_before = moved_replies(cluster);
    // Single commands: 300 keys land on every master, each where it belongs.
    for (int i = 0; i < 300; ++i) {
      auto r = co_await client->exec(Command::make("SET", "route:" + std::to_string(i), i));
      CO_ASSERT_TRUE(r);
      EXPECT_EQ(r->str, "OK") << to_debug_string(*r);
    }
    long total = 0;
    for (auto& n : cluster.nodes) {
      long keys = std::stol(n->cli({"DBSIZE"}));
      EXPECT_GT(keys, 0) << "a master got no key";
      total += keys;
    }
    EXPECT_GE(total, 300);
    for (int i = 0; i < 300; i += 37) {
      auto key = "route:" + std::to_string(i);
      auto& owner = cluster.node_of_slot(key_slot(key));
      EXPECT_EQ(owner.cli({"GET", key}), std::to_string(i));
    }

    // A pipeline across the masters: one reply per command, in order.
    Pipeline p;
    for (int i = 0; i < 50; ++i) p.add(Command::make("INCRBY", "pipe:" + std::to_string(i), i));
    for (int i = 0; i < 50; ++i) p.add(Command::make("GET", "route:" + std::to_string(i)));
    auto rs = co_await client->exec(std::move(p), idempotent());
    CO_ASSERT_TRUE(rs);
    CO_ASSERT_TRUE(rs->size() == 100u);
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ((*rs)[i].integer, i);
      EXPECT_EQ((*rs)[50 + i].str, std::to_string(i));
    }

    // Scripts run on the key's master; NOSCRIPT there is answered with EVAL.
    static const Script incr("cluster.incr", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    Pipeline sp;
    std::set<std::string> owners;
    for (int i = 0; i < 12; ++i) {
      std::vector<std::string> keys = {"{t:" + std::to_string(i) + "}:n"};
      std::vector<std::string> args = {"5"};
      owners.insert(std::to_string(cluster.node_of_slot(key_slot(keys[0])).port()));
      sp.add_eval(incr, keys, args);
    }
    EXPECT_GT(owners.size(), 1u);
    auto sr = co_await client->exec(std::move(sp));
    CO_ASSERT_TRUE(sr);
    for (const auto& r : *sr) EXPECT_EQ(r.integer, 5) << to_debug_string(r);
    std::vector<std::string> k1 = {"{t:1}:n"};
    std::vector<std::string> a1 = {"2"};
    auto one = co_await client->eval(incr, k1, a1);
    CO_ASSERT_TRUE(one);
    EXPECT_EQ(one->integer, 7);

    // SCAN with a hash-tagged MATCH goes to the tag's master.
    for (int i = 0; i < 20; ++i)
      CO_ASSERT_TRUE(
          co_await client->exec(Command::make("SET", "{tenant:x}:item:" + std::to_string(i), "v")));
    std::set<std::string> found;
    std::string cursor = "0";
    do {
      auto r = co_await client->exec(
          Command::make("SCAN", cursor, "MATCH", "{tenant:x}:item:*", "COUNT", 100));
      CO_ASSERT_TRUE(r);
      CO_ASSERT_TRUE(r->is_array() && r->elements.size() == 2);
      cursor = r->elements[0].str;
      for (const auto& k : r->elements[1].elements) found.insert(k.str);
    } while (cursor != "0");
    EXPECT_EQ(found.size(), 20u);
    // Every command went straight to its master: no redirection was needed.
    EXPECT_EQ(moved_replies(cluster), moved_before);
    co_await client->shutdown(1s);
  });
}

// A slot migrates behind the client's back: during the migration the old
// master answers ASK (the script then runs on the new one, which has never
// seen it), afterwards MOVED; the client follows both without a restart.
TEST(RedisCluster, FollowsAskAndMovedWhileASlotMigrates) {
  auto& cluster = shared_cluster();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto client = make_client(io.get_executor(), cluster.config());
    CO_ASSERT_TRUE(co_await client->wait_ready(10s));
    const std::string key = "migrating-key";
    const long slot = key_slot(key);
    auto& from = cluster.node_of_slot(slot);
    test::RedisServer* to = nullptr;
    for (auto& n : cluster.nodes)
      if (n.get() != &from) to = n.get();
    CO_ASSERT_TRUE(to != nullptr);
    auto warm = co_await client->exec(Command::make("GET", key));  // the table knows `from`
    CO_ASSERT_TRUE(warm);
    EXPECT_TRUE(warm->is_nil());
    static const Script set_script("cluster.ask.set", "return redis.call('SET', KEYS[1], ARGV[1])");
    cluster.start_migration(slot, from, *to);
    Pipeline p;
    std::vector<std::string> keys = {key};
    std::vector<std::string> args = {"asked"};
    p.add_eval(set_script, keys, args);
    auto during = co_await client->exec(std::move(p));  // ASK: the script runs on `to`
    cluster.finish_migration(slot, from, *to);
    CO_ASSERT_TRUE(during);
    EXPECT_EQ((*during)[0].str, "OK") << to_debug_string((*during)[0]);
    EXPECT_EQ(to->cli({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}), "1");
    auto get = co_await client->exec(Command::make("GET", key));  // MOVED, then `to`
    CO_ASSERT_TRUE(get);
    EXPECT_EQ(get->str, "asked") << to_debug_string(*get);
    auto again = co_await client->exec(Command::make("GET", key));  // straight to `to`
    CO_ASSERT_TRUE(again);
    EXPECT_EQ(again->str, "asked");
    // Put the slot back for the other tests.
    CO_ASSERT_TRUE(co_await client->exec(Command::make("DEL", key)));
    cluster.start_migration(slot, *to, from);
    cluster.finish_migration(slot, *to, from);
    co_await client->shutdown(1s);
  });
}

// A master dies (kill -9): its replica is promoted by the cluster, and the
// client finds it through the slot table refresh, with no restart.
TEST(RedisClusterFailover, FollowsAPromotedReplicaWithoutRestart) {
  RedisCluster cluster(3, 1);
  run_co(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto client = make_client(io.get_executor(), cluster.config());
        CO_ASSERT_TRUE(co_await client->wait_ready(20s));
        const std::string key = "failover-key";
        auto first = co_await client->exec(Command::make("SET", key, "before"));
        CO_ASSERT_TRUE(first);
        EXPECT_EQ(first->str, "OK");
        auto& master = cluster.node_of_slot(key_slot(key));
        master.kill9();
        ExecOptions quick;
        quick.timeout = 500ms;
        bool written = false;
        int failures = 0;
        const auto deadline = std::chrono::steady_clock::now() + 40s;
        while (!written && std::chrono::steady_clock::now() < deadline) {
          auto r = co_await client->exec(Command::make("SET", key, "after"), quick);
          if (r && r->is_string() && r->str == "OK") {
            written = true;
          } else {
            ++failures;  // until the cluster has promoted the replica
            co_await test::co_sleep(100ms);
          }
        }
        EXPECT_TRUE(written) << "no write succeeded within 40 s of the master's death";
        CO_ASSERT_TRUE(written);
        EXPECT_GT(failures, 0);  // the old master was really gone for a while
        auto get = co_await client->exec(Command::make("GET", key));
        CO_ASSERT_TRUE(get);
        EXPECT_EQ(get->str, "after");
        EXPECT_TRUE(co_await client->wait_ready(10s));  // every slot served again
        EXPECT_TRUE(client->health().up());
        co_await client->shutdown(1s);
      },
      120s);
}

TEST(RedisCluster, ConfigErrors) {
  asio::io_context io;
  auto cfg = shared_cluster().config();
  cfg.db = 2;
  EXPECT_THROW(make_client(io.get_executor(), cfg), ConfigError);
  cfg.db = 0;
  cfg.cluster_nodes.clear();
  EXPECT_THROW(make_client(io.get_executor(), cfg), ConfigError);
}
