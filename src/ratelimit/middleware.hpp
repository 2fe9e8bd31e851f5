// The framework-independent rate-limit middleware core: request facts in,
// decision + headers out. The HTTP adapter (src/http) fills RequestFacts from
// the connection and the authenticated session, calls apply() before the
// handler, copies Outcome::headers into the response, and answers
// Outcome::status with error_body() when it is not 200.
//
//   auto cfg = std::make_shared<const ratelimit::MiddlewareConfig>(
//       ratelimit::MiddlewareConfig::from_env());
//   ratelimit::Middleware mw(limiter, cfg);                     // per thread
//   ratelimit::RequestFacts f{.peer = "10.0.0.7", .x_forwarded_for = xff, .user = uid,
//                             .tenant = tid};
//   std::vector<std::string> names = {"api", "invoice"};       // POST /api/invoices
//   auto o = co_await mw.apply(f, std::move(names));  // (g++ 12: no braced list in co_await)
//   // login: apply(f_with_email, {"api", "auth"}) admits the attempt and reserves
//   // one auth unit (per IP and per account) BEFORE the password is verified;
//   // a failed attempt keeps it, a successful one gives it back:
//   //   co_await mw.release(o);
#pragma once

#include <jeweler/core/ids.hpp>
#include <jeweler/ratelimit/decision.hpp>
#include <jeweler/ratelimit/headers.hpp>
#include <jeweler/ratelimit/limiter.hpp>
#include <jeweler/ratelimit/policy.hpp>
#include <jeweler/ratelimit/proxy.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::ratelimit {

struct RequestFacts {
  std::string_view peer;             // the socket's peer address
  std::string_view x_forwarded_for;  // every X-Forwarded-For line joined with ","; "" if none
  std::optional<UserId> user;        // authenticated user, if any
  std::optional<TenantId> tenant;    // its tenant, if any
  std::string_view account;          // auth / password reset: the email of the body ("" = none)
};

/// Builds the key of one rule from the request (`client_ip` is already
/// resolved through TRUST_PROXY); std::nullopt = the rule does not apply.
using KeyGenerator =
    std::function<std::optional<Key>(const RequestFacts&, std::string_view client_ip)>;

/// Built-in key generators.
KeyGenerator key_by_ip(int ipv6_prefix = 64);
KeyGenerator key_by_user_or_ip(int ipv6_prefix = 64);  // user when authenticated, else client IP
KeyGenerator key_by_user();                            // no user: the rule does not apply
KeyGenerator key_by_tenant();
KeyGenerator key_by_account();  // the email of the request (hashed)

/// One budget of a limiter: a policy and whose requests it counts.
struct Rule {
  Policy policy;
  KeyGenerator key;
};

/// A named limiter (the seed's createRateLimiter): one or more rules checked
/// together. All rules of a limiter share its consume mode.
struct LimiterSpec {
  std::string name;
  std::vector<Rule> rules;
};

/// The seed's createRateLimiter({windowMs, maxRequests, keyGenerator, message}).
LimiterSpec create_rate_limiter(std::string name, std::chrono::milliseconds window,
                                std::int64_t max_requests, KeyGenerator key,
                                std::string message = "Too many requests");

struct MiddlewareConfig {
  TrustedProxies trust_proxy;
  int ipv6_prefix = 64;  // IPv6 clients are keyed by their /64 network
  /// Retry-After of a 503 when a fail-closed limit cannot reach Redis.
  std::chrono::seconds unavailable_retry_after{5};
  /// "api", "auth", "passwordReset", "invoice", "upload" (+ any added).
  std::map<std::string, LimiterSpec, std::less<>> limiters;

  /// The limiters of API.md section 3 over `policies`.
  static MiddlewareConfig standard(const PolicySet& policies, TrustedProxies trust = {});
  /// PolicySet::from_env + TRUST_PROXY; throws redis::ConfigError naming a bad variable.
  static MiddlewareConfig from_env(const PolicySet::Lookup& lookup = {});
  void add(LimiterSpec spec);
};

struct Outcome {
  enum class Verdict { allow, reject, unavailable };
  Verdict verdict = Verdict::allow;
  int status = 200;              // 200: go on; 429 rate_limited; 503 service_unavailable
  std::vector<Header> headers;   // to add to the response, whatever the status
  std::string policy;            // 429: the limit that rejected (most restrictive)
  std::int64_t retry_after = 0;  // 429/503: seconds
  std::string message;           // 429/503: human-readable
  Decision decision;             // the details (empty when unavailable)

  bool allowed() const noexcept { return verdict == Verdict::allow; }
  /// {"error","message",("policy","retryAfter" on 429),"requestId"}
  boost::json::object error_body(std::string_view request_id) const;
};

class Middleware {
 public:
  Middleware(Limiter& limiter, std::shared_ptr<const MiddlewareConfig> config);

  /// The client address: socket peer, or X-Forwarded-For from a trusted proxy.
  std::string client_ip(const RequestFacts& f) const;
  /// Checks the named limiters (unknown names are ignored and logged once)
  /// and counts the request when every limit admits it. Limits whose policy
  /// counts failures (auth) take their unit at admission too, atomically,
  /// so concurrent attempts never exceed the limit: the Outcome's
  /// decision.reserved holds them until release().
  asio::awaitable<Outcome> apply(const RequestFacts& f, std::vector<std::string> limiters);
  /// The attempt admitted by `o` succeeded (or was not evaluated): gives back
  /// the units it reserved for on-failure limits and updates o.headers.
  /// A failed attempt simply keeps them (no call).
  asio::awaitable<void> release(Outcome& o);

  /// apply() in two halves, for a caller that sends the check together with
  /// other commands (one round trip): begin() appends the script runs to `p`,
  /// end() reads their replies from the pipeline's.
  using Pending = Limiter::PendingCheck;
  Pending begin(const RequestFacts& f, const std::vector<std::string>& limiters,
                redis::Pipeline& p);
  asio::awaitable<Outcome> end(Pending& pending, const Result<std::vector<redis::Reply>>& replies);
  /// The options to send a pipeline holding begin() commands with.
  redis::ExecOptions exec_options() const noexcept { return limiter_.exec_options(); }

  const MiddlewareConfig& config() const noexcept { return *config_; }

 private:
  asio::awaitable<Outcome> run(const RequestFacts& f, const std::vector<std::string>& names);
  std::vector<Check> checks_for(const RequestFacts& f, const std::vector<std::string>& names) const;
  Outcome outcome(Result<Decision> d) const;

  Limiter& limiter_;
  std::shared_ptr<const MiddlewareConfig> config_;
};

}  // namespace jeweler::ratelimit
