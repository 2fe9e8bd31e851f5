// Settings of the cache service: a plain struct with defaults, parsed once at
// start-up (the server reads CACHE_TTL_* through from_env) and shared
// read-only by every per-thread CacheService.
#pragma once

#include <jeweler/redis/config.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace jeweler::cache {

using namespace std::chrono_literals;

/// Namespaces of the platform's data (API.md section 4).
namespace ns {
inline constexpr std::string_view kpi = "kpi";
inline constexpr std::string_view gold_price = "gold-price";
inline constexpr std::string_view customer = "customer";
inline constexpr std::string_view product = "product";
inline constexpr std::string_view invoice = "invoice";
inline constexpr std::string_view permissions = "permissions";
}  // namespace ns

/// Default TTLs of the platform's namespaces (API.md section 4).
struct DefaultTtls {
  std::chrono::milliseconds kpi = 5min;           // CACHE_TTL_KPI
  std::chrono::milliseconds gold_price = 60s;     // CACHE_TTL_GOLD_PRICE
  std::chrono::milliseconds customer = 1h;        // CACHE_TTL_CUSTOMER
  std::chrono::milliseconds product = 30min;      // CACHE_TTL_PRODUCT
  std::chrono::milliseconds invoice = 10min;      // CACHE_TTL_INVOICE
  std::chrono::milliseconds permissions = 15min;  // CACHE_TTL_PERMISSIONS
};

struct Options {
  DefaultTtls ttl;
  /// TTL of namespaces that are neither platform namespaces nor listed in
  /// namespace_ttl. Never "no expiry": that must be asked for per call.
  std::chrono::milliseconds default_ttl = 10min;
  /// Default TTLs of further namespaces, by name.
  std::map<std::string, std::chrono::milliseconds, std::less<>> namespace_ttl;

  /// Cross-process single flight: lifetime of the Redis lock taken by the
  /// process that runs a loader. A loader slower than this still answers its
  /// callers, but its value is not cached (the lock may have passed on).
  std::chrono::milliseconds lock_ttl = 10s;
  /// How long a process waits for another process' loader before it runs the
  /// loader itself (uncached unless it then gets the lock).
  std::chrono::milliseconds lock_wait = 3s;
  /// Polling interval while waiting: starts at poll_min, doubles to poll_max.
  std::chrono::milliseconds poll_min = 5ms;
  std::chrono::milliseconds poll_max = 50ms;
  /// How long a failed loader's marker stays in the lock key, so that the
  /// other processes waiting for it see the failure.
  std::chrono::milliseconds failure_marker_ttl = 1s;

  /// ZSCAN COUNT hint over the tenant's key index for invalidate_pattern /
  /// invalidate_tenant (one removal script per batch).
  std::size_t scan_count = 500;
  /// How often the process writes its statistics deltas to Redis
  /// (CacheService::run_stats_flusher). The admin route writes its tenant's
  /// deltas before it reads, whatever this is.
  std::chrono::milliseconds stats_flush_interval = 250ms;
  /// A tenant's statistics hash expires this long after its last write
  /// (statistics of a tenant without cache traffic that long start again).
  std::chrono::milliseconds stats_ttl = std::chrono::hours(24 * 30);
  /// Largest value set() accepts.
  std::size_t max_value_bytes = 16 * 1024 * 1024;

  /// Default TTL of namespace `name`.
  std::chrono::milliseconds ttl_for(std::string_view name) const;

  /// Defaults overridden by CACHE_TTL_KPI, CACHE_TTL_GOLD_PRICE,
  /// CACHE_TTL_CUSTOMER, CACHE_TTL_PRODUCT, CACHE_TTL_INVOICE,
  /// CACHE_TTL_PERMISSIONS (durations: "90s", "15m", "1h", bare seconds).
  /// Throws redis::ConfigError naming the variable for a bad value.
  static Options from_env(const redis::Config::Lookup& lookup = {});
};

}  // namespace jeweler::cache
