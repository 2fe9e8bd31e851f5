#include <jeweler/session/codec.hpp>
#include <jeweler/session/token.hpp>

#include <charconv>

namespace jeweler::session::codec {

namespace {

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<Session> decode(const Fields& fields, std::int64_t expires_at, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Session> {
    if (why) *why = reason;
    return std::nullopt;
  };
  std::optional<std::string_view> v, id, tid, uid, em, role, ua, ip, dev, lt, la, mx, tf, ipc;
  for (const auto& [k, val] : fields) {
    if (k == field::version)
      v = val;
    else if (k == field::id)
      id = val;
    else if (k == field::tenant)
      tid = val;
    else if (k == field::user)
      uid = val;
    else if (k == field::email)
      em = val;
    else if (k == field::role)
      role = val;
    else if (k == field::user_agent)
      ua = val;
    else if (k == field::ip)
      ip = val;
    else if (k == field::device_id)
      dev = val;
    else if (k == field::login_time)
      lt = val;
    else if (k == field::last_activity)
      la = val;
    else if (k == field::absolute_expiry)
      mx = val;
    else if (k == field::two_factor)
      tf = val;
    else if (k == field::ip_changes)
      ipc = val;
  }
  if (!v || *v != schema_version) return fail("unknown schema version");
  if (!id || !valid_id(*id)) return fail("bad id");
  if (!tid || !uid || !em || !role || !ua || !ip || !dev || !lt || !la || !mx || !tf)
    return fail("missing field");
  auto tenant = TenantId::parse(*tid);
  auto user = UserId::parse(*uid);
  if (!tenant || !user) return fail("bad tenant or user id");
  auto login = to_int(*lt), last = to_int(*la), max = to_int(*mx);
  if (!login || !last || !max || *login <= 0 || *last < *login || *max < *login)
    return fail("bad timestamps");
  if (*tf != "0" && *tf != "1") return fail("bad two-factor flag");
  std::int64_t ip_changes = 0;
  if (ipc) {
    auto n = to_int(*ipc);
    if (!n || *n < 0) return fail("bad ip change count");
    ip_changes = *n;
  }
  if (em->size() > limits::email || role->size() > limits::role ||
      ua->size() > limits::user_agent || ip->size() > limits::ip || dev->size() > limits::device_id)
    return fail("field too long");
  return Session{.id = std::string(*id),
                 .tenant_id = std::move(*tenant),
                 .user_id = std::move(*user),
                 .email = std::string(*em),
                 .role = std::string(*role),
                 .device = {std::string(*ua), std::string(*ip), std::string(*dev)},
                 .login_time = *login,
                 .last_activity = *last,
                 .expires_at = expires_at,
                 .absolute_expiry = *max,
                 .two_factor_verified = *tf == "1",
                 .ip_changes = ip_changes};
}

std::vector<std::string> encode_patch(const SessionPatch& p) {
  std::vector<std::string> out;
  auto put = [&](std::string_view k, std::string v) {
    out.emplace_back(k);
    out.push_back(std::move(v));
  };
  if (p.email) put(field::email, *p.email);
  if (p.role) put(field::role, *p.role);
  if (p.device) {
    put(field::user_agent, p.device->user_agent);
    put(field::ip, p.device->ip);
    put(field::device_id, p.device->device_id);
  }
  if (p.two_factor_verified) put(field::two_factor, *p.two_factor_verified ? "1" : "0");
  return out;
}

}  // namespace jeweler::session::codec
