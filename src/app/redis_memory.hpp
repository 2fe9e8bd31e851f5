// Redis memory monitoring (issue 19, the seed's "Redis memory usage
// monitoring"): used and max memory and evicted keys from INFO memory / INFO
// stats, polled by one thread every few seconds — never per scrape — and
// exported as jeweler_redis_memory_used_bytes, jeweler_redis_memory_max_bytes
// and jeweler_redis_evicted_keys_total (docs/server.md, Metrics).
#pragma once

#include <jeweler/http/metrics.hpp>
#include <jeweler/redis/client.hpp>

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

namespace jeweler::app {

struct RedisMemory {
  std::atomic<bool> known{false};  // false until the first INFO answered, or after it failed
  std::atomic<double> used_bytes{0};
  std::atomic<double> max_bytes{0};  // 0 = no maxmemory set
  std::atomic<double> evicted_keys{0};
  std::atomic<std::uint64_t> polls{0};  // INFO round trips made (tests, debugging)
};

/// The integer value of `field` in an INFO reply ("field:value" lines).
std::optional<std::int64_t> info_field(std::string_view info, std::string_view field);

/// Polls INFO memory + INFO stats every `interval` until *stop (checked
/// every 250 ms, so a shutdown never waits for the interval).
boost::asio::awaitable<void> poll_redis_memory(redis::Client& client,
                                               std::shared_ptr<RedisMemory> memory,
                                               std::shared_ptr<std::atomic<bool>> stop,
                                               std::chrono::milliseconds interval);

/// Exports the last values read (nothing while unknown: no stale numbers).
void add_redis_memory_collector(http::metrics::Registry& registry,
                                std::shared_ptr<const RedisMemory> memory);

}  // namespace jeweler::app
