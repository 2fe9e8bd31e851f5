// Redis Cluster behind the Client interface (REDIS_CLUSTER_NODES).
//
// One standalone connection per master (each with its own reconnection and
// health PINGs), a slot table read with CLUSTER SLOTS from any reachable node,
// and routing by key slot:
//   - a command goes to the master of its key's slot (EVAL/EVALSHA/FCALL: the
//     first key; SCAN: the hash tag of its MATCH pattern, which is how the
//     product scans one tenant's keys; keyless commands: any master);
//   - a pipeline is split by master, each part sent as one pipeline, the
//     replies put back in order;
//   - MOVED updates the slot and resends the command to the new master (the
//     command did not run, so this is safe for anything), and schedules a
//     full refresh of the table; ASK sends ASKING + the command once to the
//     node named.
// The table is refreshed every 30 s, after a MOVED, and every 0.1–2 s while
// it is not complete or a master is unreachable (a failover promotes a
// replica: the next refresh names it).
#pragma once

#include <jeweler/redis/client.hpp>

#include <memory>

namespace jeweler::redis::detail {

std::unique_ptr<Client> make_cluster_client(asio::any_io_executor ex, Config cfg);

}  // namespace jeweler::redis::detail
