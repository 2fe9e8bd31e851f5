#include <jeweler/session/options.hpp>

#include <string>

namespace jeweler::session {

void Options::validate() const {
  if (idle_ttl <= 0ms) throw redis::ConfigError("SESSION_TTL: must be positive");
  if (max_lifetime <= 0ms) throw redis::ConfigError("SESSION_MAX_LIFETIME: must be positive");
  if (max_per_user < 1 || max_per_user > 1000)
    throw redis::ConfigError("SESSION_MAX_PER_USER: must be between 1 and 1000");
  if (pending_2fa_ttl <= 0ms) throw redis::ConfigError("SESSION_2FA_PENDING_TTL: must be positive");
  if (activity_interval < 0ms)
    throw redis::ConfigError("SESSION_ACTIVITY_INTERVAL: must not be negative");
}

Options Options::from_env(const redis::Config::Lookup& lookup_in) {
  redis::Config::Lookup lookup =
      lookup_in ? lookup_in : redis::Config::Lookup(redis::getenv_lookup);
  Options o;
  auto duration = [&](const char* name, const char* alias, std::chrono::milliseconds& out) {
    for (const char* n : {name, alias}) {
      if (!n) continue;
      if (auto v = lookup(n)) {
        out = redis::parse_duration(*v, n);
        if (out <= 0ms) throw redis::ConfigError(std::string(n) + ": must be positive");
        return;
      }
    }
  };
  duration("SESSION_TTL", "JWT_EXPIRES_IN", o.idle_ttl);
  duration("SESSION_MAX_LIFETIME", "JWT_REFRESH_EXPIRES_IN", o.max_lifetime);
  duration("SESSION_2FA_PENDING_TTL", nullptr, o.pending_2fa_ttl);
  if (auto v = lookup("SESSION_MAX_PER_USER"))
    o.max_per_user =
        static_cast<std::size_t>(redis::parse_int(*v, "SESSION_MAX_PER_USER", 1, 1000));
  if (auto v = lookup("SESSION_ACTIVITY_INTERVAL"))
    o.activity_interval = redis::parse_duration(*v, "SESSION_ACTIVITY_INTERVAL");
  o.validate();
  return o;
}

}  // namespace jeweler::session
