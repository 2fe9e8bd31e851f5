// Test harness: a Redis Cluster of three masters (no replicas), each a private
// redis-server of the harness with cluster mode on, joined with
// `redis-cli --cluster create`. Waits until every node reports
// cluster_state:ok.
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
  explicit RedisCluster(int masters = 3) {
    for (int i = 0; i < masters; ++i)
      nodes.push_back(std::make_unique<RedisServer>(RedisServerOptions{
          .extra_args = {"--cluster-enabled", "yes", "--cluster-node-timeout", "2000"},
          .appendonly = false,
          .cluster_bus = true}));
    std::vector<std::string> create = {"--cluster", "create"};
    for (const auto& n : nodes) create.push_back("127.0.0.1:" + std::to_string(n->port()));
    create.push_back("--cluster-yes");
    nodes[0]->cli(create);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (const auto& n : nodes) {
      while (n->cli({"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline)
          throw std::runtime_error("redis cluster did not reach cluster_state:ok");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
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

  /// The node serving `slot`, as node 0 sees it (CLUSTER NODES).
  RedisServer& node_of_slot(long slot) {
    auto myid = [](RedisServer& n) { return n.cli({"CLUSTER", "MYID"}); };
    auto shards = nodes[0]->cli({"CLUSTER", "NODES"});
    for (auto& n : nodes) {
      auto id = myid(*n);
      auto at = shards.find(id);
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
