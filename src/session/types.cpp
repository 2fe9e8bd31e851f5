#include <jeweler/session/token.hpp>
#include <jeweler/session/types.hpp>

#include <boost/json/array.hpp>

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

void truncate_utf8(std::string& s, std::size_t max) {
  if (s.size() <= max) return;
  std::size_t n = max;
  // Do not cut a multi-byte character: back off over continuation bytes.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
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

boost::system::error_code normalize(DeviceInfo& d) {
  truncate_utf8(d.user_agent, limits::user_agent);
  if (!valid_user_agent(d.user_agent) || !valid_ip(d.ip) ||
      d.device_id.size() > limits::device_id || !printable_no_space(d.device_id))
    return invalid();
  return {};
}

boost::system::error_code normalize(DeviceSeen& d) {
  truncate_utf8(d.user_agent, limits::user_agent);
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
