// Rate-limit policies: what is counted, how much, over which window, with which
// algorithm, and what happens when Redis is unreachable. The seed's five
// limiters (API.md section 3) are built by PolicySet::from_env.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::ratelimit {

enum class Algorithm {
  sliding_log,      // exact sliding window: one ZSET member per admitted request (default)
  sliding_counter,  // approximate sliding window: two counters per key, O(1) memory
  gcra,             // generic cell rate algorithm (token bucket): smooth rate with a burst
};
std::string_view to_string(Algorithm a) noexcept;
/// "log"/"sliding_log", "counter"/"sliding_counter", "gcra"/"token_bucket".
std::optional<Algorithm> parse_algorithm(std::string_view s) noexcept;
/// The shape of an algorithm's value in Redis, part of its keys: "l" (ZSET of
/// admissions), "c" (HASH {w,c,p}), "g" (STRING: the TAT). A change of a
/// value's layout takes a new tag, so old and new never read each other.
std::string_view shape_tag(Algorithm a) noexcept;

/// The largest limit a sliding log accepts (it keeps one entry per counted
/// request). From the environment, a larger limit without an explicit
/// algorithm selects the sliding counter.
inline constexpr std::int64_t kMaxSlidingLog = 1'000'000;
/// The largest limit (exact in the scripts' Lua numbers, far beyond any real
/// budget: load tests set "unlimited" values such as 1e9 or 1e12).
inline constexpr std::int64_t kMaxLimit = 1'000'000'000'000'000;

/// From the environment, a sliding counter of at least this limit (and a
/// window of at least kMinLeaseWindow) gets Policy::lease = kDefaultLease.
inline constexpr std::int64_t kMinLeaseLimit = kMaxSlidingLog;
inline constexpr std::chrono::milliseconds kMinLeaseWindow{1000};
inline constexpr std::int64_t kDefaultLease = 64;
inline constexpr std::int64_t kMaxLease = 1024;

/// When a limiter counts a request.
enum class Consume {
  always,  // every request admitted by the check consumes one unit (api, invoice, ...)
  // auth (failed logins, 2FA codes): the attempt takes its unit at admission,
  // atomically, and holds it while it is evaluated; a success gives it back
  // (Limiter::release / Middleware::release), a failure keeps it.
  on_failure,
};

/// One counted budget; `name` is the policy name shown in the headers
/// ("api", "api-tenant", "auth-ip", ...).
struct Policy {
  std::string name;                              // 1..32 of [a-z0-9_-]
  std::int64_t limit = 100;                      // requests per window (1..kMaxLimit)
  std::chrono::milliseconds window{900'000};     // 1 ms .. 30 days
  Algorithm algorithm = Algorithm::sliding_log;  //
  std::int64_t burst = 0;                        // gcra only: burst size, 0 = limit
  bool fail_open = true;                         // Redis down: in-process fallback (true) or 503
  Consume consume = Consume::always;             //
  std::string message = "Too many requests";     // the seed's `message`, for the 429 body
  /// sliding_counter only: a Limiter (one per server thread) may reserve up
  /// to this many units of a key in one script run and admit the next
  /// requests of that key from them without Redis (docs/ratelimit.md,
  /// "Leases"). 0 = every request runs the script.
  std::int64_t lease = 0;

  /// The effective GCRA burst.
  std::int64_t capacity() const noexcept { return burst > 0 ? burst : limit; }
  /// Throws std::invalid_argument naming the policy when a field is out of range.
  void validate() const;
};

bool valid_policy_name(std::string_view name) noexcept;

/// The limiters of API.md section 3, with their policies.
struct PolicySet {
  Policy api;           // "api": per user (or client IP when anonymous)
  Policy api_tenant;    // "api-tenant": per tenant, default 10 x api.limit
  Policy auth_ip;       // "auth-ip": failed logins per client IP
  Policy auth_account;  // "auth-account": failed logins per account (email)
  Policy reset_ip;      // "password-reset-ip"
  Policy reset_email;   // "password-reset-email"
  Policy invoice;       // "invoice": POST /api/invoices per user
  Policy upload;        // "upload": POST /api/uploads per user

  /// The seed's defaults.
  static PolicySet defaults();

  using Lookup = std::function<std::optional<std::string>(std::string_view name)>;
  /// Defaults overridden by the variables read through `lookup` (the process
  /// environment when empty):
  ///   RATE_LIMIT_MAX_REQUESTS, RATE_LIMIT_WINDOW_MS, RATE_LIMIT_TENANT_MAX,
  ///   RATE_LIMIT_API_FAIL_OPEN, RATE_LIMIT_API_ALGORITHM,
  ///   RATE_LIMIT_<NAME>_MAX, _WINDOW_MS, _FAIL_OPEN, _ALGORITHM for
  ///   <NAME> = AUTH, PASSWORD_RESET, INVOICE, UPLOAD.
  /// A bad value throws redis::ConfigError whose message names the variable.
  static PolicySet from_env(const Lookup& lookup = {});

  /// Every policy, for listing and /metrics.
  std::vector<const Policy*> all() const;
};

}  // namespace jeweler::ratelimit
