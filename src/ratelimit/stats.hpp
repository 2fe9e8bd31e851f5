// Process-wide rate-limit statistics, shared (std::shared_ptr) by the
// per-thread Limiter instances; thread-safe (relaxed atomics, a mutex guards
// the bounded map of policies).
//
// /metrics:  jeweler_ratelimit_decisions_total{policy,decision}
//   decision = allowed | rejected | unavailable (failed closed: Redis down)
//   plus jeweler_ratelimit_fallback_total{policy}, jeweler_ratelimit_errors_total{policy}
//   (Redis answered an error) and jeweler_ratelimit_outages_total.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace jeweler::ratelimit {

struct PolicyCounters {
  std::uint64_t allowed = 0;      // consumed (or check_only calls that were not counted: never)
  std::uint64_t rejected = 0;     // this policy said no
  std::uint64_t unavailable = 0;  // Redis unreachable and the policy fails closed
  std::uint64_t fallback = 0;     // decisions made by the in-process fallback limiter
  std::uint64_t errors = 0;       // checks that failed because Redis answered an error
};

/// What /health shows of the limiters.
struct HealthState {
  /// "ok", or "failing" while every recent check failed with an error reply (at least
  /// kFailingAfter in a row, none succeeded since).
  std::string status = "ok";
  std::uint64_t errors = 0;              // checks failed with an error reply, all time
  std::uint64_t consecutive_errors = 0;  // since the last check that succeeded
  std::string last_error;                // of the current streak ("" when none)
  bool healthy() const noexcept { return status != "failing"; }
};
inline constexpr std::uint64_t kFailingAfter = 3;

namespace detail {
struct AtomicPolicyCounters {
  std::atomic<std::uint64_t> allowed{0}, rejected{0}, unavailable{0}, fallback{0}, errors{0};
};
}  // namespace detail

class Stats {
 public:
  /// Policies beyond `max_policies` are counted under "_other".
  explicit Stats(std::size_t max_policies = 256) : max_policies_(max_policies) {}

  std::map<std::string, PolicyCounters> snapshot() const;
  PolicyCounters for_policy(std::string_view name) const;
  std::uint64_t outages() const noexcept { return outages_.load(std::memory_order_relaxed); }
  /// True while Redis is unreachable for the limiters.
  bool degraded() const noexcept { return degraded_.load(std::memory_order_relaxed); }
  /// Prometheus text exposition of the counters (with HELP/TYPE lines).
  std::string prometheus() const;
  /// The limiters' state for /health.
  HealthState health() const;

  /// A check failed because Redis answered an error (not: unreachable).
  /// True for the call that starts a streak (log it once).
  bool record_error(std::string_view message);
  /// A check ran through Redis: ends an error streak (cheap when none).
  void record_success() noexcept {
    if (consecutive_errors_.load(std::memory_order_relaxed) != 0)
      consecutive_errors_.store(0, std::memory_order_relaxed);
  }

  // Used by Limiter.
  detail::AtomicPolicyCounters& policy(std::string_view name);
  /// True for the call that starts an outage (log it once).
  bool enter_degraded() noexcept {
    bool first = !degraded_.exchange(true);
    if (first) outages_.fetch_add(1, std::memory_order_relaxed);
    return first;
  }
  /// True for the call that ends it.
  bool leave_degraded() noexcept {
    return degraded_.load(std::memory_order_relaxed) && degraded_.exchange(false);
  }

 private:
  std::size_t max_policies_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<detail::AtomicPolicyCounters>, std::less<>> policies_;
  std::atomic<bool> degraded_{false};
  std::atomic<std::uint64_t> outages_{0};
  std::atomic<std::uint64_t> errors_{0}, consecutive_errors_{0};
  std::string last_error_;  // guarded by mu_
};

}  // namespace jeweler::ratelimit
