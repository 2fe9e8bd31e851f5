// Test harness: a Redis Cluster of three masters (by default no replicas),
// each a private redis-server of the harness with cluster mode on, joined with
// `redis-cli --cluster create`. Waits until every node reports
// cluster_state:ok and every replica is in sync with its master.
#pragma once

#include "redis_server.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace jeweler::test {

class RedisCluster {
 public:
  explicit RedisCluster(int masters = 3, int replicas = 0) {
    for (int i = 0; i < masters * (1 + replicas); ++i)
      nodes.push_back(std::make_unique<RedisServer>(RedisServerOptions{
          .extra_args = {"--cluster-enabled", "yes", "--cluster-node-timeout", "2000"},
          .appendonly = false,
          .cluster_bus = true}));
    std::vector<std::string> create = {"--cluster", "create"};
    for (const auto& n : nodes) create.push_back("127.0.0.1:" + std::to_string(n->port()));
    create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
    nodes[0]->cli(create);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto wait = [&](const char* what, auto done) {
      while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
          throw std::runtime_error(std::string("redis cluster: ") + what);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    };
    for (const auto& n : nodes)
      wait("no cluster_state:ok", [&] {
        return n->cli({"CLUSTER", "INFO"}).find("cluster_state:ok") != std::string::npos;
      });
    wait("replicas not in sync", [&] {
      int synced = 0;
      for (const auto& n : nodes)
        if (n->cli({"INFO", "replication"}).find("master_link_status:up") != std::string::npos)
          ++synced;
      return synced == masters * replicas;
    });
  }

  /// A client config in cluster mode with only the first node as its seed.
  redis::Config config() const {
    auto c = nodes[0]->config();
    c.mode = redis::Mode::cluster;
    c.cluster_nodes = {redis::Endpoint{"127.0.0.1", nodes[0]->port()}};
    return c;
  }
  /// REDIS_CLUSTER_NODES for the server: the first node only.
  std::string seeds() const { return "127.0.0.1:" + std::to_string(nodes[0]->port()); }

  /// Moving an empty `slot` from `from` to `to` the way redis-cli does:
  /// IMPORTING / MIGRATING (the old master then answers ASK for keys it does
  /// not hold), then NODE, which bumps the epoch; finish waits until every
  /// node agrees.
  void start_migration(long slot, RedisServer& from, RedisServer& to) {
    const auto s = std::to_string(slot);
    to.cli({"CLUSTER", "SETSLOT", s, "IMPORTING", from.cli({"CLUSTER", "MYID"})});
    from.cli({"CLUSTER", "SETSLOT", s, "MIGRATING", to.cli({"CLUSTER", "MYID"})});
  }
  void finish_migration(long slot, RedisServer& from, RedisServer& to) {
    const auto s = std::to_string(slot);
    const auto to_id = to.cli({"CLUSTER", "MYID"});
    to.cli({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    from.cli({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    for (auto& n : nodes)
      if (n.get() != &to && n.get() != &from) n->cli({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (std::size_t v = 0; v < nodes.size(); ++v) {
      while (&node_of_slot(slot, v) != &to) {
        if (std::chrono::steady_clock::now() > deadline)
          throw std::runtime_error("the cluster did not agree on slot " + s);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  /// The node serving `slot`, as node `viewer` sees it (CLUSTER NODES).
  RedisServer& node_of_slot(long slot, std::size_t viewer = 0) {
    auto myid = [](RedisServer& n) { return n.cli({"CLUSTER", "MYID"}); };
    auto shards = nodes[viewer]->cli({"CLUSTER", "NODES"});
    for (auto& n : nodes) {
      auto id = myid(*n);
      // The line that starts with the id (a replica's line names its master too).
      auto at = shards.rfind(id, 0) == 0 ? 0 : shards.find("\n" + id);
      if (at == std::string::npos) continue;
      if (at != 0) ++at;
      auto eol = shards.find('\n', at);
      std::string line = shards.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
      // "... master - 0 0 1 connected 0-5460"
      std::size_t pos = line.find("connected");
      while (pos != std::string::npos) {
        pos = line.find(' ', pos);
        if (pos == std::string::npos) break;
        ++pos;
        auto end = line.find(' ', pos);
        std::string range =
            line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        auto dash = range.find('-');
        long lo = std::stol(range.substr(0, dash));
        long hi = dash == std::string::npos ? lo : std::stol(range.substr(dash + 1));
        if (slot >= lo && slot <= hi) return *n;
        pos = end;
      }
    }
    throw std::runtime_error("no node serves slot " + std::to_string(slot));
  }

  std::vector<std::unique_ptr<RedisServer>> nodes;
};

}  // namespace jeweler::test
