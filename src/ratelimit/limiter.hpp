// The rate limiter on Redis: one Limiter per io_context thread, on that
// thread's redis::Client; the Stats and the Fallback are process-wide.
//
//   auto stats = std::make_shared<ratelimit::Stats>();
//   auto fallback = std::make_shared<ratelimit::Fallback>();
//   ratelimit::Limiter limiter(client, stats, fallback);      // per thread
//
//   const auto& p = policies.api;                              // outlives the call
//   std::vector<ratelimit::Check> checks = {{&p, ratelimit::Key::user(t, u)},
//                                           {&policies.api_tenant, ratelimit::Key::tenant(t)}};
//   auto d = co_await limiter.check(std::move(checks));
//   if (!d) ...            // Redis unreachable and a policy fails closed:
//   is_unavailable(d.error()) else if (!d->allowed)  // 429, d->retry_after()
//
// Each check is one Lua script run (EVALSHA) per hash-tag scope using the
// Redis server's clock (TIME). Checks of several scopes are pipelined in one
// round trip; when one scope rejects, what the others counted is refunded.
// A sliding-counter policy with a lease (Policy::lease, budgets >= 10^6)
// reserves up to `lease` units per script run; this Limiter admits the next
// requests of that key from them without Redis until they run out, the
// window ends or LimiterOptions::lease_ttl passes (docs/ratelimit.md, "Leases").
#pragma once

#include <jeweler/core/errc.hpp>
#include <jeweler/ratelimit/decision.hpp>
#include <jeweler/ratelimit/fallback.hpp>
#include <jeweler/ratelimit/stats.hpp>
#include <jeweler/redis/client.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace jeweler::ratelimit {

namespace asio = boost::asio;

struct LimiterOptions {
  /// Per Redis call; past it the check fails open or closed. The script is
  /// never resent (it counts), so a late reply may still have counted.
  std::chrono::milliseconds timeout{500};
  /// While this Limiter's last call found Redis unreachable and its client
  /// is not ready now, checks go straight to the fallback / fail closed
  /// without waiting for the client.
  bool skip_redis_while_down = true;
  /// The longest a lease (Policy::lease) is used after its grant, within its
  /// window: it bounds how stale the remaining count it reports can be.
  std::chrono::milliseconds lease_ttl{1000};
};

namespace detail {
/// The checks of one hash-tag scope: one script run.
struct CheckGroup {
  std::vector<std::size_t> index;  // into the checks
  std::vector<std::string> keys;
  std::vector<std::string> args;
  std::vector<std::int64_t> ask;  // per index: units asked for a lease, 0 = no lease
};
/// A key's units reserved in Redis by one script run for this Limiter.
struct Lease {
  std::int64_t left = 0;           // reserved, not used yet
  std::int64_t used = 0;           // of this grant, used by later requests
  std::int64_t ask = 1;            // what the grant asked for (the next ask follows the use)
  std::uint64_t generation = 0;    // bumped by every grant
  std::int64_t granted_at_ms = 0;  // Redis clock: the window the units count in
  std::int64_t remaining = 0;    // the limit's remaining at the grant, every reserved unit counted
  std::int64_t reset_at_ms = 0;  // Redis clock
  std::int64_t offset_ms = 0;    // Redis clock minus steady clock, when the check was sent
  std::int64_t until_ms = 0;     // steady clock: usable before this

  /// Units left and not expired at steady time `steady_ms`.
  bool usable_at(std::int64_t steady_ms) const noexcept { return left > 0 && until_ms > steady_ms; }
};
}  // namespace detail

class Limiter {
 public:
  Limiter(redis::Client& client, std::shared_ptr<Stats> stats, std::shared_ptr<Fallback> fallback,
          LimiterOptions options = {});
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  /// Checks (and, for Mode::consume checks, counts) the request against every
  /// check atomically: admitted by all, or counted by none. Errors:
  /// jeweler::errc::invalid_argument (no policy), and when Redis fails and a
  /// policy fails closed: an error with is_unavailable() true (Redis could
  /// not be reached) or errc::internal (Redis answered an error).
  asio::awaitable<Result<Decision>> check(std::vector<Check> checks);
  /// Gives back units an admitted request holds for on-failure policies
  /// (Decision::reserved): the attempt succeeded, or was not evaluated. One
  /// round trip (nothing when empty); a failure is logged and the units stay
  /// counted until they slide out of the window (errs on the strict side).
  asio::awaitable<void> release(std::vector<Reservation> reserved);

  /// One limit. (Prefer this to check({&p, key}): g++ 12 miscompiles braced
  /// temporaries inside co_await expressions.)
  asio::awaitable<Result<Decision>> check(const Policy& policy, Key key, Mode mode = Mode::consume);

  /// TEST ONLY: as check(), with the scripts' clock forced to `now_ms` instead
  /// of Redis TIME (deterministic timelines). Never use in production code.
  asio::awaitable<Result<Decision>> check_at(std::vector<Check> checks, std::int64_t now_ms);

  /// check() in two halves, for a caller that sends the check together with
  /// other commands (one round trip): begin_check() appends the script runs
  /// to `p` (nothing when the outcome is already known: then `decided` is
  /// set), end_check() reads their replies from the pipeline's. A request
  /// another scope rejected costs one more round trip (the refund).
  struct PendingCheck {
    std::vector<Check> checks;
    std::vector<detail::CheckGroup> groups;
    std::optional<std::int64_t> now;
    std::size_t first = 0;  // index of the first script run in the pipeline
    std::optional<Result<Decision>> decided;
    /// Checks admitted from this Limiter's leases: index, Redis key, result.
    struct Leased {
      std::size_t index;
      std::string key;
      std::uint64_t generation;
      LimitResult result;
    };
    std::vector<Leased> leased;
    std::int64_t sent_ms = 0;  // steady clock when the check was prepared
    std::string member;        // this request's id in the scripts
  };
  PendingCheck begin_check(std::vector<Check> checks, redis::Pipeline& p);
  asio::awaitable<Result<Decision>> end_check(PendingCheck& c,
                                              const Result<std::vector<redis::Reply>>& replies);
  /// The options to send a pipeline holding begin_check() commands with.
  redis::ExecOptions exec_options() const noexcept;

  redis::Client& client() noexcept { return client_; }
  const Stats& stats() const noexcept { return *stats_; }

 private:
  asio::awaitable<Result<Decision>> run(std::vector<Check> checks, std::optional<std::int64_t> now);
  PendingCheck prepare(std::vector<Check> checks, std::optional<std::int64_t> now,
                       redis::Pipeline& p);
  Result<Decision> degrade(const std::vector<Check>& checks, boost::system::error_code ec,
                           std::optional<std::int64_t> now, std::string_view detail = {});
  void count(const Decision& d, const std::vector<Check>& checks);
  detail::AtomicPolicyCounters& counters(const Policy* p);
  std::string next_member();
  /// The usable lease of `key` (units left, not expired), or null.
  detail::Lease* usable_lease(const std::string& key, std::int64_t steady_ms);
  /// Keeps `units` of a grant that asked for `ask`, made by a script run at
  /// Redis time `now_ms` for a check prepared at steady time `sent_ms`.
  void keep_lease(const std::string& key, const Policy& p, std::int64_t ask, std::int64_t units,
                  const LimitResult& r, std::int64_t sent_ms);
  /// Gives the units taken from leases by a request that was not admitted.
  void return_leased(PendingCheck& c);

  redis::Client& client_;
  std::shared_ptr<Stats> stats_;
  std::shared_ptr<Fallback> fallback_;
  LimiterOptions options_;
  std::unordered_map<const Policy*, detail::AtomicPolicyCounters*> counters_;
  std::string member_prefix_;
  std::uint64_t seq_ = 0;
  std::unordered_map<std::string, detail::Lease> leases_;  // by Redis key
  bool down_ = false;  // this Limiter's last call found Redis unreachable
};

/// The Lua sources (documented in docs/ratelimit.md), exposed for the
/// benchmark, which runs the same script with redis-benchmark.
const redis::Script& check_script();
const redis::Script& refund_script();

}  // namespace jeweler::ratelimit
