// Cache statistics. Two views:
//
// - Per process, per namespace (by_namespace, for /metrics:
//   jeweler_cache_requests_total{namespace,result}; Prometheus sums the
//   processes).
// - Per tenant and namespace, shared by every process on the Redis: each
//   process accumulates deltas here (pending) and CacheService writes them to
//   Redis in batches (flush_stats, every Options::stats_flush_interval, and
//   before the admin route reads them: CacheService::tenant_stats), so the
//   hot path never waits for Redis to count.
//
// Shared (std::shared_ptr) by the per-thread CacheService instances.
// Thread-safe: counters are relaxed atomics; the maps that hold them are
// guarded by a mutex and only ever grow (bounded).
#pragma once

#include <jeweler/core/ids.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  bool empty() const noexcept;
  Counters& operator+=(const Counters& o) noexcept;
  friend bool operator==(const Counters&, const Counters&) = default;
};

/// The names of the counters (Redis hash fields "<namespace>:<name>") and
/// access by name, in the order of the struct.
inline constexpr const char* kCounterNames[] = {"hits",          "misses", "sets",      "deletes",
                                                "invalidations", "errors", "fallbacks", "loads"};
std::uint64_t* counter_by_name(Counters& c, std::string_view name) noexcept;

/// One tenant's statistics as kept in Redis: the sums of every process.
struct TenantStats {
  Counters total;
  std::map<std::string, Counters> by_namespace;
  std::uint64_t keys_held = 0;  // live entries in the tenant's key index
};

namespace detail {
struct AtomicCounters {
  std::atomic<std::uint64_t> hits{0}, misses{0}, sets{0}, deletes{0}, invalidations{0}, errors{0},
      fallbacks{0}, loads{0};
  Counters load() const noexcept;
  /// Reads and zeroes every counter (each one atomically).
  Counters take() noexcept;
  void add(const Counters& c) noexcept;
  void reset() noexcept;
};
}  // namespace detail

class Stats {
 public:
  /// Namespaces beyond max_namespaces are counted under "_other" in the
  /// process view; (tenant, namespace) pairs beyond max_pending are not
  /// shared through Redis (counted in dropped()).
  explicit Stats(std::size_t max_namespaces = 256, std::size_t max_pending = 100000);

  /// This process, per namespace (for /metrics).
  std::map<std::string, Counters> by_namespace() const;
  /// This process, everything.
  Counters total() const;
  /// Zeroes the process counters and forgets the pending deltas.
  void reset();

  /// True while the cache runs degraded (Redis unreachable, loaders serve).
  bool degraded() const noexcept { return degraded_.load(std::memory_order_relaxed); }

  // --- used by CacheService ------------------------------------------------
  detail::AtomicCounters& ns(std::string_view name);
  /// The not yet flushed deltas of (tenant, namespace); nullptr beyond the
  /// bound (the process view still counts).
  detail::AtomicCounters* pending(const TenantId& t, std::string_view ns);

  struct Delta {
    std::string tenant;
    std::string ns;
    Counters counters;
  };
  /// Deltas taken for one write to Redis. Outstanding until finish().
  struct Batch {
    std::uint64_t ticket = 0;
    std::vector<Delta> deltas;  // sorted by tenant, then namespace; none empty
  };
  /// Takes (and zeroes) the pending deltas of every tenant, or of `tenant`.
  Batch take_pending(std::optional<std::string_view> tenant = std::nullopt);
  /// Ends a batch; `unwritten` deltas (a failed write) become pending again.
  void finish(const Batch& b, const std::vector<Delta>& unwritten = {});
  /// True when every batch taken before `ticket` has finished (so its
  /// deltas are in Redis, or pending again).
  bool settled_before(std::uint64_t ticket) const;
  /// Counts not shared because the pending map was full.
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  void count_dropped(std::uint64_t n) noexcept { dropped_.fetch_add(n, std::memory_order_relaxed); }

  /// True for the call that starts an outage (log it), false otherwise.
  bool enter_degraded() noexcept { return !degraded_.exchange(true); }
  /// True for the call that ends an outage.
  bool leave_degraded() noexcept {
    return degraded_.load(std::memory_order_relaxed) && degraded_.exchange(false);
  }

 private:
  using Map = std::map<std::string, std::unique_ptr<detail::AtomicCounters>, std::less<>>;
  struct PairLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      std::string_view a1 = a.first, b1 = b.first;
      if (a1 != b1) return a1 < b1;
      return std::string_view(a.second) < std::string_view(b.second);
    }
  };
  using PairMap = std::map<std::pair<std::string, std::string>,
                           std::unique_ptr<detail::AtomicCounters>, PairLess>;

  std::size_t max_namespaces_, max_pending_;
  mutable std::mutex mu_;
  Map namespaces_;
  PairMap pending_;
  std::uint64_t next_ticket_ = 1;
  std::set<std::uint64_t> outstanding_;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> degraded_{false};
};

}  // namespace jeweler::cache
