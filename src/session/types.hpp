// What the session service takes and returns, and the JSON shapes of API.md
// section 2 (the server serialises these; the token is never part of them).
#pragma once

#include <jeweler/core/errc.hpp>
#include <jeweler/core/ids.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::session {

/// Limits applied to every input (docs/session.md, "Validation").
namespace limits {
inline constexpr std::size_t email = 254;
inline constexpr std::size_t role = 32;
inline constexpr std::size_t user_agent = 512;  // longer user agents are truncated to this
inline constexpr std::size_t ip = 64;
inline constexpr std::size_t device_id = 128;
}  // namespace limits

struct DeviceInfo {
  std::string user_agent;
  std::string ip;
  std::string device_id;
  friend bool operator==(const DeviceInfo&, const DeviceInfo&) = default;
};

/// A live session (the seed's SessionData plus id and expiresAt). Times are
/// Unix epoch milliseconds from the Redis server clock.
struct Session {
  std::string id;  // public id (22 characters), never the token
  TenantId tenant_id;
  UserId user_id;
  std::string email;
  std::string role;
  DeviceInfo device;
  std::int64_t login_time = 0;
  std::int64_t last_activity = 0;    // precise to Options::activity_interval
  std::int64_t expires_at = 0;       // when it expires unless used again (<= absolute deadline)
  std::int64_t absolute_expiry = 0;  // login_time + max lifetime at creation
  bool two_factor_verified = false;
  std::int64_t ip_changes = 0;  // times get() saw another client IP
};

/// Input of SessionService::create.
struct NewSession {
  TenantId tenant_id;
  UserId user_id;
  std::string email;
  std::string role;
  DeviceInfo device;  // fields may be empty (the seed's deviceInfo is optional)
  bool two_factor_verified = false;
};

/// A partial update: only the fields that are set change.
struct SessionPatch {
  std::optional<std::string> email;
  std::optional<std::string> role;
  std::optional<DeviceInfo> device;
  std::optional<bool> two_factor_verified;
  bool empty() const noexcept { return !email && !role && !device && !two_factor_verified; }
};

/// A new session (login) or a rotated one: the token goes to the client once.
struct IssuedSession {
  std::string token;
  Session session;
  std::vector<std::string> evicted_ids;  // sessions the per-user limit ended (create only)
};

/// What get() observed about the device of a request.
struct DeviceSeen {
  std::string user_agent;
  std::string ip;
};

/// A session found by get(), with what changed compared with the request.
struct Lookup {
  Session session;
  /// The request's user agent differs from the session's: a possible hijack
  /// (the server destroys the session and answers 401). Nothing was changed.
  bool user_agent_changed = false;
  /// The client IP differs: the new IP is recorded (session.device.ip) and
  /// counted (session.ip_changes); previous_ip holds the old one.
  bool ip_changed = false;
  std::string previous_ip;
};

/// Tenant-level figures (GET /api/admin/sessions/stats).
struct TenantStats {
  std::uint64_t live_sessions = 0;
  std::uint64_t users_with_sessions = 0;
};

/// The one normalisation of a user agent, used wherever one is stored or
/// compared (login, every later request): each invalid UTF-8 sequence is
/// replaced by U+FFFD, then the text is cut to at most limits::user_agent
/// bytes at a character boundary. Idempotent, so the same header always
/// gives the same stored value, and the result is valid UTF-8 (JSON-safe).
void normalize_user_agent(std::string& ua);

/// Checks (and normalises: the user agent with normalize_user_agent) an
/// input. errc::invalid_argument when unusable.
boost::system::error_code normalize(NewSession& s);
boost::system::error_code normalize(SessionPatch& p);
boost::system::error_code normalize(DeviceSeen& d);
boost::system::error_code normalize(DeviceInfo& d);

/// The `session` object of API.md section 2:
/// {"id","userId","tenantId","email","role","deviceInfo":{"userAgent","ip","deviceId"},
///  "loginTime","lastActivity","expiresAt","twoFactorVerified"}
boost::json::object to_json(const Session& s);
/// One entry of GET /api/auth/sessions:
/// {"id","deviceInfo","loginTime","lastActivity","expiresAt","current"}
boost::json::object to_list_entry_json(const Session& s, bool current);
/// {"sessions":[...]} in the given order; `current_id` (the caller's session)
/// is compared in constant time.
boost::json::object to_sessions_json(const std::vector<Session>& sessions,
                                     std::string_view current_id);
/// {"liveSessions","usersWithSessions"}
boost::json::object to_json(const TenantStats& s);

}  // namespace jeweler::session
