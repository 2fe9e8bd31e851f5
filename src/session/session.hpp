// Secure multi-device sessions on Redis (API.md section 2; the seed's
// src/services/session.ts). docs/session.md has the key schema, the Lua
// scripts' contracts and the mapping of the seed's methods to these calls.
//
// One SessionService per io_context thread, built on that thread's
// redis::Client; Options and Stats are shared by all of them:
//
//   auto opts = std::make_shared<const session::Options>(session::Options::from_env());
//   auto stats = std::make_shared<session::Stats>();
//   session::SessionService sessions(client, opts, stats);   // per thread
//
//   session::NewSession in{.tenant_id = t, .user_id = u, .email = e, .role = "admin",
//                          .device = {ua, ip, dev}};
//   auto created = co_await sessions.create(in);
//   if (!created) ...                       // is_unavailable(ec) -> 503; invalid_argument -> 422
//   reply(created->token, to_json(created->session));
//
//   std::optional<session::DeviceSeen> seen = session::DeviceSeen{ua, ip};
//   auto found = co_await sessions.get(token, seen);
//   if (!found) ...                         // Redis trouble: 503, NEVER "logged out"
//   else if (!*found) ...                   // no session: 401
//   else if ((*found)->user_agent_changed) ...   // destroy + 401
//
// g++ 12: pass NewSession / SessionPatch / DeviceSeen as named locals, not as
// braced temporaries inside the co_await expression (sessions.update(t,
// SessionPatch{...})): g++ 12 destroys such temporaries twice (see the note in
// redis/client.hpp).
//
// Errors: a Result error is never "no session". It is either a Redis failure
// (jeweler::is_unavailable(ec) is true: map to 503), errc::invalid_argument
// for unusable input, or errc::internal for an unexpected reply (logged).
// Unknown, expired, destroyed, malformed and corrupt (logged, counted)
// sessions are all "none" (std::nullopt / false).
#pragma once

#include <jeweler/core/errc.hpp>
#include <jeweler/core/ids.hpp>
#include <jeweler/redis/client.hpp>
#include <jeweler/session/detail/keys.hpp>
#include <jeweler/session/options.hpp>
#include <jeweler/session/stats.hpp>
#include <jeweler/session/types.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace jeweler::session {

namespace asio = boost::asio;

class SessionService {
 public:
  /// Throws redis::ConfigError when the options or the key prefix are unusable.
  SessionService(redis::Client& client, std::shared_ptr<const Options> options,
                 std::shared_ptr<Stats> stats);

  /// Login: a new session with a new token. Beyond Options::max_per_user the
  /// least recently active sessions of the user are evicted (ids returned),
  /// counting verified and pending (two_factor_verified = false) sessions
  /// apart: a pending login never evicts a verified session. A pending
  /// session lives Options::pending_2fa_ttl at most (idle and absolute).
  asio::awaitable<Result<IssuedSession>> create(NewSession in);

  /// The session of `token`, refreshing its idle TTL (never past the absolute
  /// lifetime) and writing lastActivity at most once per activity_interval.
  /// With `seen`, compares the request's user agent and IP with the session's
  /// (an IP change is recorded and counted; a user-agent change only reported).
  asio::awaitable<Result<std::optional<Lookup>>> get(std::string token,
                                                     std::optional<DeviceSeen> seen = {});

  /// get() in two halves, for a caller that sends the check together with
  /// other commands (one round trip for the whole request). begin_get()
  /// appends the commands of the quick check to `p` when this thread's local
  /// validation can decide (std::nullopt: call get()); the pending check
  /// names the session's owner, so that per-user work can be batched with it.
  /// end_get() reads the replies; std::nullopt again means "call get()"
  /// (the session changed meanwhile, or the batch failed).
  struct PendingGet {
    Session session;  // the cached copy: owner, device, deadlines
    std::string digest;
    std::string ver;
    std::int64_t now = 0;
    std::int64_t ttl = 0;
    std::size_t first = 0;  // index of its first command in the pipeline
  };
  std::optional<PendingGet> begin_get(std::string_view token, DeviceSeen seen, redis::Pipeline& p);
  std::optional<Result<std::optional<Lookup>>> end_get(
      PendingGet& g, const Result<std::vector<redis::Reply>>& replies);

  /// Partial update, atomic (concurrent updates of other fields are kept).
  /// Does not refresh the TTL. std::nullopt when there is no session.
  asio::awaitable<Result<std::optional<Session>>> update(std::string token, SessionPatch patch);

  /// Renews the idle TTL (never past loginTime + max lifetime) and writes
  /// lastActivity. std::nullopt when there is no session.
  asio::awaitable<Result<std::optional<Session>>> extend(std::string token);

  /// A new token for the same session (same id, loginTime, TTL), with `patch`
  /// applied in the same step (e.g. two_factor_verified = true). The old token
  /// stops working at once. std::nullopt when there is no session.
  /// two_factor_verified = true on a pending session promotes it: the normal
  /// lifetimes (loginTime + max lifetime, idle TTL) instead of the pending
  /// one, and it counts toward max_per_user among the verified sessions
  /// (the least recently active others beyond it are evicted: evicted_ids).
  asio::awaitable<Result<std::optional<IssuedSession>>> rotate(std::string token,
                                                               SessionPatch patch = {});

  /// Records the use of TOTP time step `step` by `user` (RFC 6238 section
  /// 5.2: a code is accepted once): true when this is the first use, false
  /// when the step was used before (a replay). The marker lives `ttl` (longer
  /// than the acceptance window) in the session key space, out of reach of
  /// any cache invalidation, and is set atomically with the check (SET NX
  /// PX). When Redis cannot store it (OOM under noeviction, read-only
  /// replica, outage), the result is an error (is_unavailable: 503): never
  /// "first use" without a marker.
  asio::awaitable<Result<bool>> claim_totp_step(TenantId tenant, UserId user, std::int64_t step,
                                                std::chrono::milliseconds ttl);

  /// Logout. False when there was no session.
  asio::awaitable<Result<bool>> destroy(std::string token);

  /// Ends one of the user's own sessions by public id. False when `id` is not
  /// a live session of that user (-> 404).
  asio::awaitable<Result<bool>> destroy_by_id(TenantId tenant, UserId user, std::string id);

  /// Force logout from all devices, except the session with public id
  /// `keep_id` when given. Returns how many live sessions were destroyed.
  asio::awaitable<Result<std::size_t>> destroy_all(TenantId tenant, UserId user,
                                                   std::optional<std::string> keep_id = {});

  /// The user's live sessions, newest login first. Expired index entries are
  /// removed on the way.
  asio::awaitable<Result<std::vector<Session>>> list(TenantId tenant, UserId user);

  /// Live sessions and users with sessions in a tenant. Approximate: see
  /// docs/session.md (maintained beside the sessions, not atomically).
  asio::awaitable<Result<TenantStats>> tenant_stats(TenantId tenant);

  /// Live sessions of all tenants (jeweler_sessions_active); also stored in
  /// Stats::last_active(). Approximate like tenant_stats.
  asio::awaitable<Result<std::uint64_t>> active_sessions();

  const Options& options() const noexcept { return *options_; }
  const std::shared_ptr<Stats>& stats() const noexcept { return stats_; }
  const detail::Keys& keys() const noexcept { return keys_; }

 private:
  asio::awaitable<Result<std::optional<Lookup>>> lookup(std::string token,
                                                        std::optional<DeviceSeen> seen,
                                                        bool extend);
  asio::awaitable<void> update_index_stats(redis::Pipeline p);
  /// get() through the local validation cache; std::nullopt when the cached
  /// copy cannot decide (the caller runs the full script).
  asio::awaitable<std::optional<Result<std::optional<Lookup>>>> quick_get(
      const TokenRef& ref, const std::optional<DeviceSeen>& seen);
  std::optional<PendingGet> prepare_quick(const TokenRef& ref,
                                          const std::optional<DeviceSeen>& seen,
                                          redis::Pipeline& p);
  void remember(const TokenRef& ref, const Session& s, std::string ver);

  /// Local validation cache (docs/session.md, "Local validation"): what the
  /// last full lookup of a token returned, by token digest. Within the
  /// activity interval, a get() from the same user agent and IP checks the
  /// session with PEXPIRE + HGET ver (one round trip, no script) instead of
  /// the get script; a destroyed, expired, rotated or updated session is seen
  /// at once. Per service (= per thread): no locking.
  struct Validated {
    Session session;
    std::string ver;  // the session's 'ver' field when read
  };
  std::unordered_map<std::string, Validated> validated_;
  static constexpr std::size_t kValidatedMax = 8192;

  redis::Client& client_;
  std::shared_ptr<const Options> options_;
  std::shared_ptr<Stats> stats_;
  detail::Keys keys_;
};

}  // namespace jeweler::session
