// Settings of the session service: a plain struct with defaults, parsed once
// at start-up and shared read-only (std::shared_ptr<const Options>) by every
// per-thread SessionService.
#pragma once

#include <jeweler/redis/config.hpp>

#include <chrono>
#include <cstddef>

namespace jeweler::session {

using namespace std::chrono_literals;

struct Options {
  /// Idle timeout: a session unused this long expires. SESSION_TTL
  /// (alias JWT_EXPIRES_IN).
  std::chrono::milliseconds idle_ttl = 24h;
  /// Absolute lifetime: nothing extends a session past loginTime + this.
  /// SESSION_MAX_LIFETIME (alias JWT_REFRESH_EXPIRES_IN).
  std::chrono::milliseconds max_lifetime = 24h * 7;
  /// Live sessions per user; a login beyond it evicts the least recently
  /// active one. SESSION_MAX_PER_USER, 1..1000.
  std::size_t max_per_user = 10;
  /// Lifetime of a session waiting for its second factor (created with
  /// two_factor_verified = false), idle and absolute: such a session ends this
  /// long after login at the latest. Pending sessions are counted apart from
  /// verified ones (at most max_per_user of each per user; a new pending
  /// session evicts only pending ones), so a password alone never evicts a
  /// verified session. Promotion (rotate with two_factor_verified = true)
  /// gives the normal lifetimes. SESSION_2FA_PENDING_TTL.
  std::chrono::milliseconds pending_2fa_ttl = 5min;
  /// get() writes lastActivity at most once per this interval (the idle TTL
  /// is refreshed on every get). SESSION_ACTIVITY_INTERVAL. 1 s: precise
  /// enough for "least recently active" eviction and the lastActivity that
  /// clients see, while a busy session still skips the script (local
  /// validation) for all but one request per second and thread.
  std::chrono::milliseconds activity_interval = 1s;

  /// Throws redis::ConfigError naming the setting when a value is unusable.
  void validate() const;

  /// Defaults overridden by the variables above (the SESSION_* name wins over
  /// its JWT_* alias). Durations: "250ms", "90s", "15m", "24h", "7d", bare
  /// seconds. Throws redis::ConfigError naming the variable.
  static Options from_env(const redis::Config::Lookup& lookup = {});
};

}  // namespace jeweler::session
