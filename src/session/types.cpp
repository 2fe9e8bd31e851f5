#include <jeweler/session/token.hpp>
#include <jeweler/session/types.hpp>

#include <boost/json/array.hpp>

#include <algorithm>

namespace jeweler::session {

namespace {

boost::system::error_code invalid() {
  return make_error_code(errc::invalid_argument);
}

bool is_control(unsigned char c) noexcept {
  return c < 0x20 || c == 0x7f;
}

// Printable, no whitespace (emails, device ids).
bool printable_no_space(std::string_view s) noexcept {
  for (unsigned char c : s)
    if (is_control(c) || c == ' ') return false;
  return true;
}

// Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 when it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((at(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

bool valid_user_agent(std::string_view s) noexcept {
  for (unsigned char c : s)
    if (is_control(c) && c != '\t') return false;
  return true;
}

bool valid_ip(std::string_view s) noexcept {
  if (s.size() > limits::ip) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == ':' || c == '%' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool valid_role(std::string_view s) noexcept {
  if (s.empty() || s.size() > limits::role) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool valid_email(std::string_view s) noexcept {
  return !s.empty() && s.size() <= limits::email && printable_no_space(s);
}

boost::json::object device_json(const DeviceInfo& d) {
  boost::json::object o;
  o["userAgent"] = d.user_agent;
  o["ip"] = d.ip;
  o["deviceId"] = d.device_id;
  return o;
}

}  // namespace

void normalize_user_agent(std::string& ua) {
  static constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(ua.size(), limits::user_agent));
  for (std::size_t i = 0; i < ua.size();) {
    std::size_t n = utf8_sequence(ua, i);
    std::string_view piece = n ? std::string_view(ua).substr(i, n) : replacement;
    if (out.size() + piece.size() > limits::user_agent) break;  // whole characters only
    out += piece;
    i += n ? n : 1;
  }
  ua = std::move(out);
}

boost::system::error_code normalize(DeviceInfo& d) {
  normalize_user_agent(d.user_agent);
  if (!valid_user_agent(d.user_agent) || !valid_ip(d.ip) ||
      d.device_id.size() > limits::device_id || !printable_no_space(d.device_id))
    return invalid();
  return {};
}

boost::system::error_code normalize(DeviceSeen& d) {
  normalize_user_agent(d.user_agent);
  if (!valid_user_agent(d.user_agent) || !valid_ip(d.ip)) return invalid();
  return {};
}

boost::system::error_code normalize(NewSession& s) {
  if (!valid_email(s.email) || !valid_role(s.role)) return invalid();
  return normalize(s.device);
}

boost::system::error_code normalize(SessionPatch& p) {
  if (p.email && !valid_email(*p.email)) return invalid();
  if (p.role && !valid_role(*p.role)) return invalid();
  if (p.device) return normalize(*p.device);
  return {};
}

boost::json::object to_json(const Session& s) {
  boost::json::object o;
  o["id"] = s.id;
  o["userId"] = s.user_id.str();
  o["tenantId"] = s.tenant_id.str();
  o["email"] = s.email;
  o["role"] = s.role;
  o["deviceInfo"] = device_json(s.device);
  o["loginTime"] = s.login_time;
  o["lastActivity"] = s.last_activity;
  o["expiresAt"] = s.expires_at;
  o["twoFactorVerified"] = s.two_factor_verified;
  return o;
}

boost::json::object to_list_entry_json(const Session& s, bool current) {
  boost::json::object o;
  o["id"] = s.id;
  o["deviceInfo"] = device_json(s.device);
  o["loginTime"] = s.login_time;
  o["lastActivity"] = s.last_activity;
  o["expiresAt"] = s.expires_at;
  o["current"] = current;
  return o;
}

boost::json::object to_sessions_json(const std::vector<Session>& sessions,
                                     std::string_view current_id) {
  boost::json::array a;
  a.reserve(sessions.size());
  for (const auto& s : sessions)
    a.push_back(
        to_list_entry_json(s, !current_id.empty() && constant_time_equal(s.id, current_id)));
  boost::json::object o;
  o["sessions"] = std::move(a);
  return o;
}

boost::json::object to_json(const TenantStats& s) {
  boost::json::object o;
  o["liveSessions"] = s.live_sessions;
  o["usersWithSessions"] = s.users_with_sessions;
  return o;
}

}  // namespace jeweler::session
