// What a check returns: one LimitResult per policy that applied, and the
// combined decision. Times are in the decision's clock (Redis TIME, or the
// local clock when the in-process fallback decided).
#pragma once

#include <jeweler/ratelimit/key.hpp>
#include <jeweler/ratelimit/policy.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace jeweler::ratelimit {

enum class Mode {
  consume,     // admit and count the request (or reject it, counting nothing)
  check_only,  // report whether one more request would be admitted; count nothing
};

/// One budget to check: the policy must outlive the call.
struct Check {
  const Policy* policy = nullptr;
  Key key;
  Mode mode = Mode::consume;
};

struct LimitResult {
  const Policy* policy = nullptr;
  bool allowed = false;   // this limit admits the request (check_only: would admit one more)
  bool consumed = false;  // one unit was counted by this request
  std::int64_t limit = 0;
  std::int64_t remaining = 0;  // requests still admitted now, after this one
  std::chrono::milliseconds window{0};
  /// Until the next slot frees (remaining grows by one); 0 when nothing is counted.
  std::chrono::milliseconds reset_after{0};
  /// When !allowed: until a retry of this limit can succeed.
  std::chrono::milliseconds retry_after{0};
  std::int64_t now_ms = 0;  // Unix ms of the decision
  bool fallback = false;    // decided by the in-process fallback limiter

  std::int64_t reset_at_ms() const noexcept { return now_ms + reset_after.count(); }
};

/// A unit an admitted request holds in a policy counted on failure
/// (Consume::on_failure: auth). Limiter::release() gives it back when the
/// attempt succeeds; a failed attempt keeps it (docs/ratelimit.md,
/// "Reservations").
struct Reservation {
  const Policy* policy = nullptr;
  std::string key;         // the Redis key (in-process key when fallback)
  std::string scope;       // the hash-tag scope: one refund script run per scope
  std::int64_t at_ms = 0;  // the script's clock when the unit was taken
  std::string member;      // the request's id (sliding-log member "<at_ms>:<member>")
  bool fallback = false;   // taken from the in-process fallback
};

struct Decision {
  bool allowed = true;  // every limit admitted the request
  std::vector<LimitResult> results;
  /// Units held for on-failure policies (only when allowed).
  std::vector<Reservation> reserved;

  bool fallback() const noexcept;
  /// The limit shown in the X-RateLimit-* headers. Rejected limits first (the
  /// one with the longest retry_after: it decides when a retry succeeds);
  /// otherwise the lowest remaining, then the latest reset, then the smallest
  /// limit. Null when there are no results.
  const LimitResult* most_restrictive() const noexcept;
  /// The earliest moment a retry can succeed: max retry_after of the rejected
  /// limits (0 when allowed).
  std::chrono::milliseconds retry_after() const noexcept;
};

}  // namespace jeweler::ratelimit
