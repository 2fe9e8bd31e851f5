// Tenant-isolated cache-aside caching on Redis (API.md section 4; the seed's
// src/services/cache.ts). See docs/cache.md for the key schema and decisions.
//
// One CacheService per io_context thread, built on that thread's
// redis::Client; Options and Stats are shared by all of them:
//
//   auto opts = std::make_shared<const cache::Options>(cache::Options::from_env());
//   auto stats = std::make_shared<cache::Stats>();
//   cache::CacheService cache(client, opts, stats);   // per thread
//
//   auto r = co_await cache.get_or_set(tenant, "customer", "42", [&]() ->
//   awaitable<Result<std::string>> {
//     co_return load_customer_json(42);
//   });
//   if (!r) ...                           // loader error (Redis trouble never shows here)
//   headers["X-Cache"] = r->hit() ? "HIT" : "MISS";
//
// Every key lives under a TenantId (a validated type) and a namespace; no call
// takes a raw Redis key, so one tenant can never read, write or invalidate
// another's entries.
#pragma once

#include <jeweler/cache/options.hpp>
#include <jeweler/cache/stats.hpp>
#include <jeweler/cache/types.hpp>
#include <jeweler/core/errc.hpp>
#include <jeweler/core/ids.hpp>
#include <jeweler/redis/client.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace jeweler::cache {

namespace asio = boost::asio;

/// A TTL argument: the namespace default (default-constructed), a duration, or
/// explicitly no expiry (Ttl::persistent()).
class Ttl {
 public:
  constexpr Ttl() = default;
  template <class Rep, class Period>
  constexpr Ttl(std::chrono::duration<Rep, Period> d)  // NOLINT: implicit on purpose
      : kind_(Kind::duration), ms_(std::chrono::duration_cast<std::chrono::milliseconds>(d)) {}
  static constexpr Ttl persistent() {
    Ttl t;
    t.kind_ = Kind::persistent;
    return t;
  }
  constexpr bool is_default() const noexcept { return kind_ == Kind::namespace_default; }
  constexpr bool is_persistent() const noexcept { return kind_ == Kind::persistent; }
  constexpr std::chrono::milliseconds duration() const noexcept { return ms_; }

 private:
  enum class Kind { namespace_default, duration, persistent };
  Kind kind_ = Kind::namespace_default;
  std::chrono::milliseconds ms_{0};
};

/// Where a get_or_set value came from. Only `hit` means "X-Cache: HIT".
enum class Source {
  hit,        // found in Redis
  loaded,     // this call ran the loader (and cached the value when it could)
  coalesced,  // shared the loader run of a concurrent call in this process
  waited,     // another process ran the loader; read from Redis after waiting
  fallback,   // Redis failed: the loader ran and nothing was cached (degraded)
};
std::string_view to_string(Source s) noexcept;

template <class T>
struct Fetched {
  T value;
  Source source = Source::loaded;
  bool hit() const noexcept { return source == Source::hit; }
};

/// Produces the value on a miss. An error (or an exception) caches nothing
/// and is returned to every caller waiting for this run.
using Loader = std::function<asio::awaitable<Result<std::string>>()>;
using JsonLoader = std::function<asio::awaitable<Result<boost::json::value>>()>;
using KpiLoader = std::function<asio::awaitable<Result<KpiData>>()>;
using GoldPriceLoader = std::function<asio::awaitable<Result<GoldPrice>>()>;
using PermissionsLoader = std::function<asio::awaitable<Result<Permissions>>()>;

/// Key and namespace rules (errc::invalid_argument otherwise):
/// namespace: 1..32 of [a-z0-9_-]; key: 1..256 of [A-Za-z0-9_.:@+=,/-];
/// pattern (invalidate_pattern, over "<namespace>:<key>"): 1..256 printable
/// ASCII characters except space, '{' and '}' (glob syntax of Redis MATCH).
bool valid_namespace(std::string_view name) noexcept;
bool valid_key(std::string_view key) noexcept;
bool valid_pattern(std::string_view pattern) noexcept;

class CacheService {
 public:
  CacheService(redis::Client& client, std::shared_ptr<const Options> options,
               std::shared_ptr<Stats> stats);
  CacheService(const CacheService&) = delete;
  CacheService& operator=(const CacheService&) = delete;
  ~CacheService();

  // --- raw values (any bytes) -------------------------------------------
  /// The value, std::nullopt on a miss; an error when Redis failed (a
  /// "miss with error": the caller can tell, and may treat it as a miss).
  asio::awaitable<Result<std::optional<std::string>>> get(const TenantId& t, std::string_view ns,
                                                          std::string_view key);
  asio::awaitable<Result<void>> set(const TenantId& t, std::string_view ns, std::string_view key,
                                    std::string_view value, Ttl ttl = {});
  /// True when the value existed.
  asio::awaitable<Result<bool>> del(const TenantId& t, std::string_view ns, std::string_view key);
  asio::awaitable<Result<bool>> exists(const TenantId& t, std::string_view ns,
                                       std::string_view key);
  /// Multi-get (one MGET): one optional per key, in order.
  asio::awaitable<Result<std::vector<std::optional<std::string>>>> mget(
      const TenantId& t, std::string_view ns, std::vector<std::string> keys);
  /// Multi-set (one pipelined write), each entry with `ttl`.
  asio::awaitable<Result<void>> mset(const TenantId& t, std::string_view ns,
                                     std::vector<std::pair<std::string, std::string>> entries,
                                     Ttl ttl = {});

  // --- TTL ---------------------------------------------------------------
  /// Remaining TTL: std::nullopt when the key does not exist,
  /// std::chrono::milliseconds::max() when it has no expiry.
  asio::awaitable<Result<std::optional<std::chrono::milliseconds>>> ttl(const TenantId& t,
                                                                        std::string_view ns,
                                                                        std::string_view key);
  /// Sets a new TTL (Ttl{} = namespace default, Ttl::persistent() = none).
  /// False when the key does not exist.
  asio::awaitable<Result<bool>> expire(const TenantId& t, std::string_view ns, std::string_view key,
                                       Ttl ttl);
  /// Restarts the namespace default TTL. False when the key does not exist.
  asio::awaitable<Result<bool>> touch(const TenantId& t, std::string_view ns, std::string_view key);

  // --- cache-aside --------------------------------------------------------
  /// The cached value, or the loader's, stored with `ttl`. Concurrent misses
  /// of one key run the loader once per process (single flight) and once
  /// across processes (a Redis lock; the others wait for the value). When
  /// Redis fails the loader's value is returned uncached (Source::fallback).
  /// The only errors are the loader's and invalid arguments.
  asio::awaitable<Result<Fetched<std::string>>> get_or_set(const TenantId& t, std::string_view ns,
                                                           std::string_view key, Loader loader,
                                                           Ttl ttl = {});

  // --- JSON values ----------------------------------------------------------
  /// A stored value that is not JSON is a miss (counted as an error).
  asio::awaitable<Result<std::optional<boost::json::value>>> get_json(const TenantId& t,
                                                                      std::string_view ns,
                                                                      std::string_view key);
  asio::awaitable<Result<void>> set_json(const TenantId& t, std::string_view ns,
                                         std::string_view key, const boost::json::value& v,
                                         Ttl ttl = {});
  asio::awaitable<Result<Fetched<boost::json::value>>> get_or_set_json(const TenantId& t,
                                                                       std::string_view ns,
                                                                       std::string_view key,
                                                                       JsonLoader loader,
                                                                       Ttl ttl = {});

  // --- counters -------------------------------------------------------------
  /// Adds `by` (may be negative) and returns the new value; the TTL is set
  /// only when this call creates the key, atomically with it (one script).
  asio::awaitable<Result<std::int64_t>> increment(const TenantId& t, std::string_view ns,
                                                  std::string_view key, std::int64_t by = 1,
                                                  Ttl ttl = {});
  asio::awaitable<Result<std::int64_t>> decrement(const TenantId& t, std::string_view ns,
                                                  std::string_view key, std::int64_t by = 1,
                                                  Ttl ttl = {});
  /// Current counter value, 0 when absent.
  asio::awaitable<Result<std::int64_t>> counter(const TenantId& t, std::string_view ns,
                                                std::string_view key);

  // --- invalidation -----------------------------------------------------------
  // Every entry is recorded in its tenant's key index (a sorted set updated
  // in the same script as the entry), so these calls cost in proportion to
  // the tenant's own entries, whatever the rest of the keyspace holds; they
  // never SCAN the keyspace. docs/cache.md, "Invalidation".

  /// Removes the tenant's entries whose "<namespace>:<key>" matches the glob
  /// `pattern` (ZSCAN MATCH over the tenant's index, then one script per
  /// batch that removes the entries). Only the tenant's index is read, so no
  /// pattern reaches another tenant. Loads in flight for this tenant when it
  /// starts do not store their values. Returns how many entries were removed.
  asio::awaitable<Result<std::uint64_t>> invalidate_pattern(const TenantId& t,
                                                            std::string_view pattern);
  /// Every entry of the tenant.
  asio::awaitable<Result<std::uint64_t>> invalidate_tenant(const TenantId& t);
  /// Number of live entries the tenant holds (its index, expired members
  /// pruned first; entries Redis evicted under maxmemory count until their
  /// TTL passes).
  asio::awaitable<Result<std::uint64_t>> keys_held(const TenantId& t);

  // --- statistics shared through Redis ------------------------------------------
  /// Writes the pending (tenant, namespace) deltas of this process' Stats to
  /// Redis (HINCRBY in a hash per tenant; one pipeline). On failure they stay
  /// pending for the next flush.
  asio::awaitable<Result<void>> flush_stats();
  /// Flushes every Options::stats_flush_interval until `stop` is true, then
  /// once more. Run one per process (the server runs it on thread 0).
  asio::awaitable<void> run_stats_flusher(const std::atomic<bool>& stop);
  /// The tenant's statistics summed over every process sharing the Redis,
  /// and its live entries: this process' pending deltas of the tenant are
  /// written first (in the same script, one round trip), so it sees its own counts at
  /// once.
  asio::awaitable<Result<TenantStats>> tenant_stats(const TenantId& t);

  // --- platform data (namespaces and TTLs of API.md section 4) ----------------
  asio::awaitable<Result<std::optional<KpiData>>> get_kpi(const TenantId& t);
  asio::awaitable<Result<void>> set_kpi(const TenantId& t, const KpiData& k);
  asio::awaitable<Result<Fetched<KpiData>>> get_or_set_kpi(const TenantId& t, KpiLoader loader);
  asio::awaitable<Result<bool>> invalidate_kpi(const TenantId& t);
  /// The KPI entry for a caller that batches commands (one round trip for
  /// the whole request): kpi_read() is the command to send, kpi_hit() the
  /// entry from its reply when that is a usable hit (counted as one);
  /// otherwise std::nullopt, nothing counted: call get_or_set_kpi().
  redis::Command kpi_read(const TenantId& t) const;
  std::optional<Fetched<KpiData>> kpi_hit(const TenantId& t, const redis::Reply& r);

  asio::awaitable<Result<std::optional<GoldPrice>>> get_gold_price(const TenantId& t);
  asio::awaitable<Result<void>> set_gold_price(const TenantId& t, const GoldPrice& g);
  asio::awaitable<Result<Fetched<GoldPrice>>> get_or_set_gold_price(const TenantId& t,
                                                                    GoldPriceLoader loader);

  /// Customer, product and invoice entries are JSON objects keyed by id.
  asio::awaitable<Result<std::optional<boost::json::value>>> get_customer(const TenantId& t,
                                                                          std::string_view id);
  asio::awaitable<Result<void>> set_customer(const TenantId& t, std::string_view id,
                                             const boost::json::value& v);
  asio::awaitable<Result<std::optional<boost::json::value>>> get_product(const TenantId& t,
                                                                         std::string_view id);
  asio::awaitable<Result<void>> set_product(const TenantId& t, std::string_view id,
                                            const boost::json::value& v);
  asio::awaitable<Result<std::optional<boost::json::value>>> get_invoice(const TenantId& t,
                                                                         std::string_view id);
  asio::awaitable<Result<void>> set_invoice(const TenantId& t, std::string_view id,
                                            const boost::json::value& v);

  asio::awaitable<Result<std::optional<Permissions>>> get_permissions(const TenantId& t,
                                                                      const UserId& user);
  asio::awaitable<Result<void>> set_permissions(const TenantId& t, const UserId& user,
                                                const Permissions& p);
  asio::awaitable<Result<Fetched<Permissions>>> get_or_set_permissions(const TenantId& t,
                                                                       const UserId& user,
                                                                       PermissionsLoader loader);

  const Options& options() const noexcept { return *options_; }
  Stats& stats() noexcept { return *stats_; }

  /// The Redis key of an entry (for tests and docs; never accepted back).
  std::string redis_key(const TenantId& t, std::string_view ns, std::string_view key) const;

  struct Flight;  // in-process single flight (defined in cache.cpp)

 private:
  asio::awaitable<Result<Fetched<std::string>>> lead(const TenantId& t, std::string ns,
                                                     std::string key, Loader& loader, Ttl ttl);
  asio::awaitable<Result<std::string>> run_loader(const TenantId& t, std::string_view ns,
                                                  Loader& loader);
  /// Removes the index members matching `pattern` (empty = all) and their entries.
  asio::awaitable<Result<std::uint64_t>> invalidate_index(const TenantId& t,
                                                          std::string_view pattern);
  std::chrono::milliseconds resolve(Ttl ttl, std::string_view ns) const;
  void redis_failed(const TenantId& t, std::string_view ns, const boost::system::error_code& ec);
  void redis_ok();
  /// True while this instance saw Redis unreachable and the client is still
  /// not connected: fail fast instead of waiting for a command timeout.
  bool known_down() const;
  using CounterField = std::atomic<std::uint64_t> detail::AtomicCounters::*;
  /// Adds to the namespace's counters (this process) and to the (tenant,
  /// namespace) deltas that flush_stats() writes to Redis. The counter
  /// objects are looked up in Stats once and remembered by this instance, so
  /// the hot path takes no lock and sends nothing.
  void count(const TenantId& t, std::string_view ns, CounterField f, std::uint64_t n = 1);

  redis::Client& client_;
  std::shared_ptr<const Options> options_;
  std::shared_ptr<Stats> stats_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  bool down_ = false;  // last Redis call of this instance found it unreachable
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using CounterCache =
      std::unordered_map<std::string, detail::AtomicCounters*, StringHash, std::equal_to<>>;
  CounterCache ns_counters_;
  struct PairKey {
    std::string tenant, ns;
  };
  struct PairView {
    std::string_view tenant, ns;
  };
  struct PairHash {
    using is_transparent = void;
    std::size_t operator()(PairView v) const noexcept;
    std::size_t operator()(const PairKey& k) const noexcept {
      return (*this)(PairView{k.tenant, k.ns});
    }
  };
  struct PairEq {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return std::string_view(a.tenant) == std::string_view(b.tenant) &&
             std::string_view(a.ns) == std::string_view(b.ns);
    }
  };
  // nullptr: beyond Stats' bound (not shared).
  std::unordered_map<PairKey, detail::AtomicCounters*, PairHash, PairEq> pending_counters_;
};

}  // namespace jeweler::cache
