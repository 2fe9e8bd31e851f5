// Process-wide cache statistics, shared (std::shared_ptr) by the per-thread
// CacheService instances. Thread-safe: counters are relaxed atomics, the maps
// that hold them are guarded by a mutex and only ever grow (bounded).
#pragma once

#include <jeweler/core/ids.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace jeweler::cache {

/// A snapshot of counters.
struct Counters {
  std::uint64_t hits = 0;           // get / get_or_set found the value
  std::uint64_t misses = 0;         // get / get_or_set did not
  std::uint64_t sets = 0;           // values written (set, mset entries, loader results stored)
  std::uint64_t deletes = 0;        // del calls
  std::uint64_t invalidations = 0;  // keys removed by invalidate_pattern / invalidate_tenant
  std::uint64_t errors = 0;         // Redis failures and unreadable values
  std::uint64_t fallbacks = 0;      // get_or_set served by the loader because Redis failed
  std::uint64_t loads = 0;          // loader runs (any outcome)

  /// hits / (hits + misses), 0 when there were no lookups.
  double hit_ratio() const noexcept {
    auto n = hits + misses;
    return n == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(n);
  }
  Counters& operator+=(const Counters& o) noexcept;
};

namespace detail {
struct AtomicCounters {
  std::atomic<std::uint64_t> hits{0}, misses{0}, sets{0}, deletes{0}, invalidations{0}, errors{0},
      fallbacks{0}, loads{0};
  Counters load() const noexcept;
  void reset() noexcept;
};
}  // namespace detail

class Stats {
 public:
  /// Namespaces and tenants beyond these bounds are counted under "_other".
  explicit Stats(std::size_t max_namespaces = 256, std::size_t max_tenants = 10000);

  /// Per namespace (for /metrics: jeweler_cache_requests_total{namespace,result}).
  std::map<std::string, Counters> by_namespace() const;
  /// One tenant's counters (for the admin stats route: a tenant sees only its own).
  Counters for_tenant(const TenantId& tenant) const;
  /// Everything.
  Counters total() const;
  void reset();

  /// True while the cache runs degraded (Redis unreachable, loaders serve).
  bool degraded() const noexcept { return degraded_.load(std::memory_order_relaxed); }

  // Used by CacheService.
  detail::AtomicCounters& ns(std::string_view name);
  detail::AtomicCounters& tenant(const TenantId& t);
  /// True for the call that starts an outage (log it), false otherwise.
  bool enter_degraded() noexcept { return !degraded_.exchange(true); }
  /// True for the call that ends an outage.
  bool leave_degraded() noexcept {
    return degraded_.load(std::memory_order_relaxed) && degraded_.exchange(false);
  }

 private:
  using Map = std::map<std::string, std::unique_ptr<detail::AtomicCounters>, std::less<>>;
  detail::AtomicCounters& find_or_add(Map& m, std::size_t max, std::string_view key);

  std::size_t max_namespaces_, max_tenants_;
  mutable std::mutex mu_;
  Map namespaces_;
  Map tenants_;
  std::atomic<bool> degraded_{false};
};

}  // namespace jeweler::cache
