// End-to-end: authentication and sessions (API.md section 2) against the real
// jeweler-server with the demo data.
#include "e2e_support.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

using namespace e2e;

namespace {

bool is_base64url(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

/// 32 raw bytes of a base64url token.
std::string b64url_decode(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : s) {
    acc = (acc << 6) | val(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

void expect_session_shape(const json::object& s) {
  for (const char* k : {"id", "userId", "tenantId", "email", "role"}) {
    ASSERT_TRUE(s.contains(k) && s.at(k).is_string()) << k << " in " << ser(s);
    EXPECT_FALSE(s.at(k).as_string().empty()) << k;
  }
  ASSERT_TRUE(s.contains("deviceInfo") && s.at("deviceInfo").is_object()) << ser(s);
  const auto& d = s.at("deviceInfo").as_object();
  for (const char* k : {"userAgent", "ip", "deviceId"})
    EXPECT_TRUE(d.contains(k) && d.at(k).is_string()) << k << " in " << ser(d);
  for (const char* k : {"loginTime", "lastActivity", "expiresAt"})
    EXPECT_TRUE(s.contains(k) && (s.at(k).is_int64() || s.at(k).is_uint64())) << k << ser(s);
  ASSERT_TRUE(s.contains("twoFactorVerified") && s.at("twoFactorVerified").is_bool()) << ser(s);
  EXPECT_FALSE(s.contains("token")) << ser(s);
  // Epoch milliseconds, close to now.
  EXPECT_NEAR(static_cast<double>(num(s, "loginTime")), static_cast<double>(unix_ms()),
              3600.0 * 1000);
  EXPECT_LE(num(s, "loginTime"), num(s, "lastActivity"));
  EXPECT_GT(num(s, "expiresAt"), num(s, "lastActivity"));
}

class AuthE2E : public SharedStackTest<AuthE2E> {
 public:
  static Env settings() {
    return {{"TRUST_PROXY", "127.0.0.1/32"}, {"SESSION_MAX_PER_USER", "1000"}};
  }

 protected:
  void SetUp() override {
    SharedStackTest::SetUp();
    if (HasFatalFailure()) return;
    // A TOTP code is accepted once: forget the codes earlier tests used.
    forget_used_codes();
  }
  static void forget_used_codes() {
    stack_->redis->cli(
        {"EVAL", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end", "0",
         "*}:totp:*"});  // the replay markers (session key space)
  }
};

TEST_F(AuthE2E, LoginReturnsTokenSessionAndCookie) {
  auto l = login(port(), kOwner, {}, {{"deviceId", "laptop-1"}});
  ASSERT_EQ(l.status(), 200) << l.res.body;
  EXPECT_EQ(l.res.header("content-type"), "application/json; charset=utf-8");
  EXPECT_EQ(l.res.header("cache-control"), "no-store");
  EXPECT_EQ(l.token.size(), 43u) << l.token;
  EXPECT_TRUE(is_base64url(l.token)) << l.token;
  EXPECT_EQ(b64url_decode(l.token).size(), 32u);
  expect_session_shape(l.session);
  EXPECT_EQ(str(l.session, "tenantId"), "aurum");
  EXPECT_EQ(str(l.session, "email"), kOwner.email);
  EXPECT_EQ(str(l.session, "role"), "admin");
  EXPECT_TRUE(l.session.at("twoFactorVerified").as_bool());
  const auto& d = l.session.at("deviceInfo").as_object();
  EXPECT_EQ(str(d, "userAgent"), kUA);
  EXPECT_EQ(str(d, "ip"), "127.0.0.1");
  EXPECT_EQ(str(d, "deviceId"), "laptop-1");
  EXPECT_NE(str(l.session, "id"), l.token);
  EXPECT_EQ(l.res.body.find(l.token), l.res.body.rfind(l.token)) << "token once only";

  auto cookie = l.res.header("set-cookie");
  EXPECT_EQ(cookie.rfind("sid=" + l.token + ";", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("Path=/"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "COOKIE_SECURE=false: " << cookie;

  // Two logins never share a token or an id.
  auto l2 = login(port(), kOwner);
  ASSERT_EQ(l2.status(), 200);
  EXPECT_NE(l2.token, l.token);
  EXPECT_NE(str(l2.session, "id"), str(l.session, "id"));
}

TEST_F(AuthE2E, LoginIsCaseInsensitiveOnEmailAndAcceptsTenantId) {
  auto l = login(port(), DemoUser{"Clerk@AURUM.example", kClerk.password});
  EXPECT_EQ(l.status(), 200) << l.res.body;
  auto t = login(port(), kClerk, {}, {{"tenantId", "aurum"}});
  EXPECT_EQ(t.status(), 200) << t.res.body;
  // The right password in the wrong tenant is not a login.
  auto w = login(port(), kClerk, {}, {{"tenantId", "argent"}});
  EXPECT_API_ERROR(w.res, 401, "unauthorized");
}

TEST_F(AuthE2E, CookieAuthenticatesLikeBearer) {
  auto token = token_of(port(), kClerk);
  auto r = call(port(), "GET", "/api/auth/me", {}, {}, {{"Cookie", "sid=" + token}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str(obj(r).at("session").as_object(), "email"), kClerk.email);
  r = call(port(), "GET", "/api/auth/me", {}, {},
           {{"Cookie", "theme=dark; sid=" + token + "; x=1"}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = call(port(), "GET", "/api/customers?limit=1", {}, {}, {{"Cookie", "sid=" + token}});
  EXPECT_EQ(r.status, 200) << r.body;
  // A wrong cookie is not a session.
  r = call(port(), "GET", "/api/auth/me", {}, {}, {{"Cookie", "sid=" + std::string(43, 'A')}});
  EXPECT_API_ERROR(r, 401, "unauthorized");
}

TEST_F(AuthE2E, MissingOrBadTokenIs401) {
  for (std::string target : {"/api/auth/me", "/api/auth/sessions", "/api/customers",
                             "/api/dashboard/kpi", "/api/admin/cache/stats"}) {
    SCOPED_TRACE(target);
    EXPECT_API_ERROR(call(port(), "GET", target), 401, "unauthorized");
    EXPECT_API_ERROR(call(port(), "GET", target, "not-a-token"), 401, "unauthorized");
    EXPECT_API_ERROR(call(port(), "GET", target, std::string(43, 'x')), 401, "unauthorized");
    EXPECT_API_ERROR(call(port(), "GET", target, {}, {}, {{"Authorization", "Basic dXNlcjpwYXNz"}}),
                     401, "unauthorized");
  }
}

TEST_F(AuthE2E, BadPasswordAndUnknownEmailLookTheSame) {
  auto bad = login(port(), DemoUser{kOwner.email, "wrong-password"});
  auto unknown = login(port(), DemoUser{"nobody@aurum.example", "wrong-password"});
  EXPECT_API_ERROR(bad.res, 401, "unauthorized");
  EXPECT_API_ERROR(unknown.res, 401, "unauthorized");
  auto a = obj(bad.res), b = obj(unknown.res);
  a.erase("requestId");
  b.erase("requestId");
  EXPECT_EQ(ser(a), ser(b));
  EXPECT_TRUE(bad.res.header("set-cookie").empty());
  EXPECT_TRUE(unknown.res.header("set-cookie").empty());
  // Same header names apart from the per-request values.
  std::set<std::string> ha, hb;
  for (auto& [k, v] : bad.res.headers) ha.insert(k);
  for (auto& [k, v] : unknown.res.headers) hb.insert(k);
  EXPECT_EQ(ha, hb);
}

TEST_F(AuthE2E, LoginInputValidation) {
  const std::string t = "/api/auth/login";
  EXPECT_API_ERROR(call(port(), "POST", t, {}, "{\"email\":"), 400, "invalid_json");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, "not json at all"), 400, "invalid_json");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, "[1,2]"), 422, "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, "{}"), 422, "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, R"({"email":"owner@aurum.example"})"), 422,
                   "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, R"({"email":5,"password":"x"})"), 422,
                   "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, R"({"email":"a@b.c","password":["x"]})"), 422,
                   "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, R"({"email":"a@b.c","password":"x","deviceId":42})"),
                   422, "validation_failed");
  json::object huge{{"email", std::string(100000, 'a') + "@aurum.example"}, {"password", "x"}};
  auto r = call(port(), "POST", t, {}, ser(huge));
  EXPECT_TRUE(r.status == 422 || r.status == 401) << r.status;
  EXPECT_LT(r.status, 500);
  // SQL metacharacters are just a wrong credential.
  auto sql = login(port(), DemoUser{"' OR '1'='1' --@aurum.example", "' OR 1=1; --"});
  EXPECT_TRUE(sql.status() == 401 || sql.status() == 422) << sql.res.body;
  auto sql2 = login(port(), DemoUser{kOwner.email, "x' OR '1'='1"});
  EXPECT_API_ERROR(sql2.res, 401, "unauthorized");
  // Unicode passwords are only wrong passwords.
  auto uni = login(port(), DemoUser{kOwner.email, "pässwörd-🔑"});
  EXPECT_API_ERROR(uni.res, 401, "unauthorized");
}

TEST_F(AuthE2E, MeRefreshLogout) {
  auto l = login(port(), kClerk);
  ASSERT_EQ(l.status(), 200);
  auto me = call(port(), "GET", "/api/auth/me", l.token);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.header("cache-control"), "no-store");
  auto o = obj(me);
  ASSERT_TRUE(o.contains("session") && o.contains("user")) << me.body;
  expect_session_shape(o.at("session").as_object());
  EXPECT_EQ(str(o.at("session").as_object(), "id"), str(l.session, "id"));
  EXPECT_EQ(me.body.find(l.token), std::string::npos) << "me never shows the token";
  EXPECT_EQ(me.body.find("argon2"), std::string::npos) << me.body;
  EXPECT_EQ(me.body.find("JBSWY3DPEHPK3PXP"), std::string::npos);
  ASSERT_TRUE(o.at("user").is_object());
  EXPECT_EQ(str(o.at("user").as_object(), "email"), kClerk.email);

  auto r = call(port(), "POST", "/api/auth/refresh", l.token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto ro = obj(r);
  ASSERT_TRUE(ro.contains("session")) << r.body;
  expect_session_shape(ro.at("session").as_object());
  EXPECT_GE(num(ro.at("session").as_object(), "expiresAt"), num(l.session, "expiresAt"));
  EXPECT_EQ(r.body.find(l.token), std::string::npos);

  auto out = call(port(), "POST", "/api/auth/logout", l.token);
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_TRUE(out.body.empty());
  auto clear = out.header("set-cookie");
  EXPECT_EQ(clear.rfind("sid=;", 0), 0u) << clear;
  EXPECT_NE(clear.find("Max-Age=0"), std::string::npos) << clear;
  EXPECT_API_ERROR(call(port(), "GET", "/api/auth/me", l.token), 401, "unauthorized");
  EXPECT_API_ERROR(call(port(), "POST", "/api/auth/refresh", l.token), 401, "unauthorized");
  EXPECT_API_ERROR(call(port(), "POST", "/api/auth/logout", l.token), 401, "unauthorized");
  EXPECT_API_ERROR(call(port(), "GET", "/api/auth/me", {}, {}, {{"Cookie", "sid=" + l.token}}), 401,
                   "unauthorized");
}

TEST_F(AuthE2E, SessionsListNewestFirstWithCurrent) {
  auto a = login(port(), kOwner, {}, {{"deviceId", "phone"}});
  std::this_thread::sleep_for(5ms);
  auto b = login(port(), kOwner, {{"User-Agent", "Other-Browser/2"}}, {{"deviceId", "tablet"}});
  ASSERT_EQ(a.status(), 200);
  ASSERT_EQ(b.status(), 200);
  auto r =
      call(port(), "GET", "/api/auth/sessions", b.token, {}, {{"User-Agent", "Other-Browser/2"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find(a.token), std::string::npos);
  EXPECT_EQ(r.body.find(b.token), std::string::npos);
  auto o = obj(r);
  ASSERT_TRUE(o.contains("sessions") && o.at("sessions").is_array()) << r.body;
  const auto& arr = o.at("sessions").as_array();
  int current = 0;
  std::int64_t prev = INT64_MAX;
  bool saw_a = false, saw_b = false;
  std::int64_t pos_a = -1, pos_b = -1, i = 0;
  for (const auto& v : arr) {
    ASSERT_TRUE(v.is_object());
    const auto& s = v.as_object();
    for (const char* k : {"id", "deviceInfo", "loginTime", "lastActivity", "expiresAt", "current"})
      EXPECT_TRUE(s.contains(k)) << k << " in " << ser(s);
    EXPECT_LE(num(s, "loginTime"), prev) << "newest first: " << r.body;
    prev = num(s, "loginTime");
    if (s.at("current").as_bool()) ++current;
    if (str(s, "id") == str(a.session, "id")) {
      saw_a = true;
      pos_a = i;
      EXPECT_FALSE(s.at("current").as_bool());
      EXPECT_EQ(str(s.at("deviceInfo").as_object(), "deviceId"), "phone");
    }
    if (str(s, "id") == str(b.session, "id")) {
      saw_b = true;
      pos_b = i;
      EXPECT_TRUE(s.at("current").as_bool());
      EXPECT_EQ(str(s.at("deviceInfo").as_object(), "userAgent"), "Other-Browser/2");
    }
    // Only the caller's own sessions.
    ++i;
  }
  EXPECT_TRUE(saw_a && saw_b) << r.body;
  EXPECT_LT(pos_b, pos_a);
  EXPECT_EQ(current, 1);
  // Nobody else's sessions: the clerk's list does not hold the owner's.
  auto c = token_of(port(), kClerk);
  auto cr = call(port(), "GET", "/api/auth/sessions", c);
  ASSERT_EQ(cr.status, 200);
  EXPECT_EQ(cr.body.find(str(a.session, "id")), std::string::npos);
}

TEST_F(AuthE2E, DeleteOneSession) {
  auto a = login(port(), kOwner);
  auto b = login(port(), kOwner);
  auto other_user = login(port(), kClerk);
  auto other_tenant = login(port(), kArgent);
  ASSERT_EQ(a.status(), 200);
  ASSERT_EQ(b.status(), 200);
  ASSERT_EQ(other_user.status(), 200);
  ASSERT_EQ(other_tenant.status(), 200);
  const std::string base = "/api/auth/sessions/";

  // Foreign ids are 404 and untouched.
  EXPECT_API_ERROR(call(port(), "DELETE", base + str(other_user.session, "id"), b.token), 404,
                   "not_found");
  EXPECT_API_ERROR(call(port(), "DELETE", base + str(other_tenant.session, "id"), b.token), 404,
                   "not_found");
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", other_user.token).status, 200);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", other_tenant.token).status, 200);
  // Unknown and malformed ids.
  EXPECT_API_ERROR(call(port(), "DELETE", base + "does-not-exist", b.token), 404, "not_found");
  auto weird = call(port(), "DELETE", base + "%ZZ", b.token);
  EXPECT_GE(weird.status, 400);
  EXPECT_LT(weird.status, 500);
  auto longid = call(port(), "DELETE", base + std::string(200, 'a'), b.token);
  EXPECT_EQ(longid.status, 404);
  // The token itself is not a session id.
  EXPECT_API_ERROR(call(port(), "DELETE", base + a.token, b.token), 404, "not_found");
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", a.token).status, 200);

  auto r = call(port(), "DELETE", base + str(a.session, "id"), b.token);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_API_ERROR(call(port(), "GET", "/api/auth/me", a.token), 401, "unauthorized");
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", b.token).status, 200);
  EXPECT_API_ERROR(call(port(), "DELETE", base + str(a.session, "id"), b.token), 404, "not_found");
  // Ending one's own current session also works.
  EXPECT_EQ(call(port(), "DELETE", base + str(b.session, "id"), b.token).status, 204);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", b.token).status, 401);
}

TEST_F(AuthE2E, ForceLogoutEverywhere) {
  // Clean slate for the clerk.
  auto x = token_of(port(), kClerk);
  auto r = call(port(), "DELETE", "/api/auth/sessions", x);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(num(obj(r), "destroyed"), 1);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", x).status, 401);

  auto a = token_of(port(), kClerk), b = token_of(port(), kClerk), c = token_of(port(), kClerk);
  EXPECT_API_ERROR(call(port(), "DELETE", "/api/auth/sessions?keepCurrent=maybe", c), 400,
                   "bad_request");
  r = call(port(), "DELETE", "/api/auth/sessions?keepCurrent=true", c);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(num(obj(r), "destroyed"), 2) << r.body;
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", a).status, 401);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", b).status, 401);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", c).status, 200);
  auto list = obj(call(port(), "GET", "/api/auth/sessions", c));
  EXPECT_EQ(list.at("sessions").as_array().size(), 1u);

  // Other users keep their sessions.
  auto owner = token_of(port(), kOwner);
  r = call(port(), "DELETE", "/api/auth/sessions?keepCurrent=false", c);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(num(obj(r), "destroyed"), 1) << r.body;
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", c).status, 401);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", owner).status, 200);
}

TEST_F(AuthE2E, TwoFactorGatesEverythingUntilVerifiedThenRotates) {
  auto l = login(port(), kSecure);
  ASSERT_EQ(l.status(), 200) << l.res.body;
  EXPECT_FALSE(l.session.at("twoFactorVerified").as_bool());
  const std::string t = l.token;
  for (auto [m, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/api/customers"},
                                                        {"GET", "/api/dashboard/kpi"},
                                                        {"GET", "/api/auth/sessions"},
                                                        {"POST", "/api/auth/refresh"},
                                                        {"GET", "/api/auth/permissions"},
                                                        {"DELETE", "/api/auth/sessions"},
                                                        {"GET", "/api/gold-price"}}) {
    SCOPED_TRACE(m + " " + target);
    EXPECT_API_ERROR(call(port(), m, target, t), 403, "two_factor_required");
  }
  auto me = call(port(), "GET", "/api/auth/me", t);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_FALSE(obj(me).at("session").as_object().at("twoFactorVerified").as_bool());

  const std::string verify = "/api/auth/2fa/verify";
  EXPECT_API_ERROR(call(port(), "POST", verify, t, "{bad"), 400, "invalid_json");
  EXPECT_API_ERROR(call(port(), "POST", verify, t, R"({"code":"12ab56"})"), 422,
                   "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", verify, t, R"({"code":123456})"), 422, "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", verify, t, "{}"), 422, "validation_failed");
  // A wrong code: none of the accepted steps.
  std::set<std::string> valid;
  for (int d = -2; d <= 2; ++d)
    valid.insert(
        jeweler::store::crypto::totp_code(std::string_view(kTotpSecret), unix_seconds() + d * 30));
  std::string wrong = "000000";
  for (int i = 0; valid.count(wrong); ++i) wrong = std::string(6, static_cast<char>('1' + i));
  auto w = call(port(), "POST", verify, t, json::serialize(json::object{{"code", wrong}}));
  EXPECT_API_ERROR(w, 401, "unauthorized");
  // Still pending, still usable for /me.
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", t).status, 200);

  auto ok = call(port(), "POST", verify, t, json::serialize(json::object{{"code", totp_now()}}));
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto o = obj(ok);
  const std::string nt = str(o, "token");
  EXPECT_EQ(nt.size(), 43u);
  EXPECT_NE(nt, t);
  ASSERT_TRUE(o.contains("session"));
  expect_session_shape(o.at("session").as_object());
  EXPECT_TRUE(o.at("session").as_object().at("twoFactorVerified").as_bool());
  EXPECT_EQ(ok.header("set-cookie").rfind("sid=" + nt + ";", 0), 0u) << ok.header("set-cookie");
  // The old token is dead at once; the new one opens everything.
  EXPECT_API_ERROR(call(port(), "GET", "/api/auth/me", t), 401, "unauthorized");
  EXPECT_API_ERROR(call(port(), "GET", "/api/customers", t), 401, "unauthorized");
  EXPECT_EQ(call(port(), "GET", "/api/customers?limit=1", nt).status, 200);
  EXPECT_EQ(call(port(), "GET", "/api/auth/sessions", nt).status, 200);
  auto me2 = obj(call(port(), "GET", "/api/auth/me", nt));
  EXPECT_TRUE(me2.at("session").as_object().at("twoFactorVerified").as_bool());
  // A verified session is not verified (or rotated) again: 409, as for a
  // user without 2FA; the token stays valid.
  EXPECT_API_ERROR(
      call(port(), "POST", verify, nt, json::serialize(json::object{{"code", totp_now()}})), 409,
      "conflict");
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", nt).status, 200);
}

TEST_F(AuthE2E, TwoFactorCodeIsAcceptedOnce) {
  const std::string code = totp_now();
  auto first = login(port(), kSecure);
  ASSERT_EQ(first.status(), 200);
  auto ok = call(port(), "POST", "/api/auth/2fa/verify", first.token,
                 json::serialize(json::object{{"code", code}}));
  ASSERT_EQ(ok.status, 200) << ok.body;
  // Another session (an attacker who saw the code) cannot use it again.
  auto second = login(port(), kSecure);
  ASSERT_EQ(second.status(), 200);
  auto replay = call(port(), "POST", "/api/auth/2fa/verify", second.token,
                     json::serialize(json::object{{"code", code}}));
  EXPECT_API_ERROR(replay, 401, "unauthorized");
  EXPECT_API_ERROR(call(port(), "GET", "/api/customers", second.token), 403, "two_factor_required");
}

TEST_F(AuthE2E, TwoFactorPendingSessionCanLogOut) {
  auto l = login(port(), kSecure);
  ASSERT_EQ(l.status(), 200);
  EXPECT_EQ(call(port(), "POST", "/api/auth/logout", l.token).status, 204);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", l.token).status, 401);
  // Verifying a dead session is 401, not a new token.
  auto v = call(port(), "POST", "/api/auth/2fa/verify", l.token,
                json::serialize(json::object{{"code", totp_now()}}));
  EXPECT_API_ERROR(v, 401, "unauthorized");
}

TEST_F(AuthE2E, TwoFactorByCookie) {
  auto l = login(port(), kSecure);
  ASSERT_EQ(l.status(), 200);
  Headers ck{{"Cookie", "sid=" + l.token}};
  EXPECT_API_ERROR(call(port(), "GET", "/api/customers", {}, {}, ck), 403, "two_factor_required");
  auto ok = call(port(), "POST", "/api/auth/2fa/verify", {},
                 json::serialize(json::object{{"code", totp_now()}}), ck);
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto nt = str(obj(ok), "token");
  EXPECT_EQ(call(port(), "GET", "/api/customers?limit=1", {}, {}, ck).status, 401);
  EXPECT_EQ(call(port(), "GET", "/api/customers?limit=1", {}, {}, {{"Cookie", "sid=" + nt}}).status,
            200);
}

TEST_F(AuthE2E, UserAgentChangeDestroysTheSession) {
  auto l = login(port(), kClerk, {{"User-Agent", "Browser-A/1.0"}});
  ASSERT_EQ(l.status(), 200);
  EXPECT_EQ(
      call(port(), "GET", "/api/auth/me", l.token, {}, {{"User-Agent", "Browser-A/1.0"}}).status,
      200);
  auto hijack =
      call(port(), "GET", "/api/auth/me", l.token, {}, {{"User-Agent", "Evil-Browser/6.6"}});
  EXPECT_API_ERROR(hijack, 401, "unauthorized");
  // Every /api response is rate limited and says so (API.md section 3).
  EXPECT_FALSE(hijack.header("x-ratelimit-limit").empty()) << "401 after a user-agent change "
                                                              "bypassed the rate limiter";
  // The session is gone: its cookie is cleared too.
  EXPECT_EQ(hijack.header("set-cookie").rfind("sid=;", 0), 0u) << hijack.header("set-cookie");
  EXPECT_NE(hijack.header("set-cookie").find("Max-Age=0"), std::string::npos);
  // Gone for good, even with the original user agent.
  EXPECT_API_ERROR(
      call(port(), "GET", "/api/auth/me", l.token, {}, {{"User-Agent", "Browser-A/1.0"}}), 401,
      "unauthorized");

  // Same with a missing User-Agent header.
  auto m = login(port(), kClerk, {{"User-Agent", "Browser-B/1.0"}});
  ASSERT_EQ(m.status(), 200);
  EXPECT_EQ(call(port(), "GET", "/api/customers?limit=1", m.token, {}, {{"User-Agent", ""}}).status,
            401);
  EXPECT_EQ(
      call(port(), "GET", "/api/auth/me", m.token, {}, {{"User-Agent", "Browser-B/1.0"}}).status,
      401);
}

TEST_F(AuthE2E, IpChangeIsRecordedNotRejected) {
  auto l = login(port(), kClerk, {{"X-Forwarded-For", "10.9.8.7"}});
  ASSERT_EQ(l.status(), 200);
  EXPECT_EQ(str(l.session.at("deviceInfo").as_object(), "ip"), "10.9.8.7");
  auto r = call(port(), "GET", "/api/auth/me", l.token, {}, {{"X-Forwarded-For", "10.1.1.1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(obj(r).at("session").as_object().at("userId"), l.session.at("userId"));
  r = call(port(), "GET", "/api/auth/me", l.token);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(AuthE2E, RawTokenIsNeverInRedis) {
  std::vector<std::string> tokens;
  tokens.push_back(token_of(port(), kOwner));
  tokens.push_back(token_of(port(), kClerk));
  tokens.push_back(token_of(port(), kArgent));
  auto s = login(port(), kSecure);
  ASSERT_EQ(s.status(), 200);
  tokens.push_back(s.token);
  auto v = call(port(), "POST", "/api/auth/2fa/verify", s.token,
                json::serialize(json::object{{"code", totp_now()}}));
  ASSERT_EQ(v.status, 200);
  tokens.push_back(str(obj(v), "token"));
  // Use them a bit so activity writes happen too.
  for (auto& t : tokens) (void)call(port(), "GET", "/api/auth/permissions", t);

  auto& redis = *stack_->redis;
  auto keys = lines(redis.cli({"--raw", "KEYS", "*"}));
  ASSERT_FALSE(keys.empty());
  std::string dump;
  for (const auto& k : keys) {
    EXPECT_EQ(k.rfind("jeweler:", 0), 0u) << "key without the prefix: " << k;
    dump += k + "\n";
    auto type = redis.cli({"TYPE", k});
    if (type == "string")
      dump += redis.cli({"--raw", "GET", k});
    else if (type == "hash")
      dump += redis.cli({"--raw", "HGETALL", k});
    else if (type == "set")
      dump += redis.cli({"--raw", "SMEMBERS", k});
    else if (type == "zset")
      dump += redis.cli({"--raw", "ZRANGE", k, "0", "-1", "WITHSCORES"});
    else if (type == "list")
      dump += redis.cli({"--raw", "LRANGE", k, "0", "-1"});
    dump += "\n";
  }
  EXPECT_NE(dump.find("aurum"), std::string::npos) << "the scan saw the session data";
  for (const auto& t : tokens) {
    ASSERT_EQ(t.size(), 43u);
    EXPECT_EQ(dump.find(t), std::string::npos) << "token in clear in Redis";
    EXPECT_EQ(dump.find(t.substr(0, 20)), std::string::npos) << "token prefix in Redis";
    auto raw = b64url_decode(t);
    EXPECT_EQ(dump.find(raw), std::string::npos) << "raw token bytes in Redis";
    EXPECT_EQ(dump.find(hex(raw)), std::string::npos) << "hex token in Redis";
  }
}

TEST_F(AuthE2E, PasswordResetAlways202) {
  const std::string t = "/api/auth/password-reset";
  auto a = call(port(), "POST", t, {}, R"({"email":"owner@aurum.example"})");
  auto b = call(port(), "POST", t, {}, R"({"email":"nobody-here@aurum.example"})");
  EXPECT_EQ(a.status, 202) << a.body;
  EXPECT_EQ(b.status, 202) << b.body;
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.header("content-type"), "application/json; charset=utf-8");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, "{oops"), 400, "invalid_json");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, R"({"email":7})"), 422, "validation_failed");
  EXPECT_API_ERROR(call(port(), "POST", t, {}, "{}"), 422, "validation_failed");
}

TEST_F(AuthE2E, MethodNotAllowedAndUnknownRoute) {
  auto t = token_of(port(), kClerk);
  auto r = call(port(), "PUT", "/api/auth/login", {}, "{}");
  EXPECT_API_ERROR(r, 405, "method_not_allowed");
  EXPECT_API_ERROR(call(port(), "GET", "/api/auth/logout", t), 405, "method_not_allowed");
  EXPECT_API_ERROR(call(port(), "GET", "/api/no-such-route", t), 404, "not_found");
}

// --- short sessions: idle timeout, absolute lifetime, eviction -----------------

class ShortSessionsE2E : public SharedStackTest<ShortSessionsE2E> {
 public:
  static Env settings() {
    return {{"SESSION_TTL", "3s"},
            {"SESSION_MAX_LIFETIME", "6s"},
            {"SESSION_MAX_PER_USER", "3"},
            {"SESSION_ACTIVITY_INTERVAL", "0s"}};
  }
};

TEST_F(ShortSessionsE2E, IdleSessionExpiresUseKeepsItAlive) {
  auto used = login(port(), kOwner);
  auto idle = login(port(), kClerk);
  ASSERT_EQ(used.status(), 200);
  ASSERT_EQ(idle.status(), 200);
  EXPECT_LE(num(idle.session, "expiresAt") - num(idle.session, "loginTime"), 3000 + 500);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= 3; ++i) {
    std::this_thread::sleep_until(t0 + i * 1500ms);
    EXPECT_EQ(call(port(), "GET", "/api/auth/me", used.token).status, 200) << "use " << i;
  }
  // 4.5 s after login: past the idle TTL for the unused session only.
  EXPECT_API_ERROR(call(port(), "GET", "/api/auth/me", idle.token), 401, "unauthorized");
}

TEST_F(ShortSessionsE2E, RefreshNeverPassesTheAbsoluteLifetime) {
  auto l = login(port(), kArgent);
  ASSERT_EQ(l.status(), 200);
  const std::int64_t limit = num(l.session, "loginTime") + 6000;
  EXPECT_LE(num(l.session, "expiresAt"), limit);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= 3; ++i) {
    std::this_thread::sleep_until(t0 + i * 1500ms);
    auto r = call(port(), "POST", "/api/auth/refresh", l.token);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LE(num(obj(r).at("session").as_object(), "expiresAt"), limit) << r.body;
  }
  std::this_thread::sleep_until(t0 + 4500ms);
  auto r = call(port(), "POST", "/api/auth/refresh", l.token);
  if (r.status == 200) {
    EXPECT_LE(num(obj(r).at("session").as_object(), "expiresAt"), limit);
  }
  while (unix_ms() < limit + 700) std::this_thread::sleep_for(100ms);
  EXPECT_API_ERROR(call(port(), "GET", "/api/auth/me", l.token), 401, "unauthorized");
  EXPECT_API_ERROR(call(port(), "POST", "/api/auth/refresh", l.token), 401, "unauthorized");
}

TEST_F(ShortSessionsE2E, LoginBeyondTheMaximumEvictsTheLeastRecentlyActive) {
  auto s1 = login(port(), kOwner);
  std::this_thread::sleep_for(20ms);
  auto s2 = login(port(), kOwner);
  std::this_thread::sleep_for(20ms);
  auto s3 = login(port(), kOwner);
  ASSERT_EQ(s1.status(), 200);
  ASSERT_EQ(s2.status(), 200);
  ASSERT_EQ(s3.status(), 200);
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(call(port(), "POST", "/api/auth/refresh", s1.token).status, 200);  // s2 is now LRU
  std::this_thread::sleep_for(20ms);
  auto s4 = login(port(), kOwner);
  ASSERT_EQ(s4.status(), 200);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", s2.token).status, 401);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", s1.token).status, 200);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", s3.token).status, 200);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", s4.token).status, 200);
  auto list = obj(call(port(), "GET", "/api/auth/sessions", s4.token));
  EXPECT_EQ(list.at("sessions").as_array().size(), 3u) << ser(list);
}

TEST(SessionActivityE2E, UseIsActivityForEvictionWithDefaultSettings) {
  Stack st;  // SESSION_MAX_PER_USER 10, lastActivity kept to the second
  auto port = st.port();
  ASSERT_NE(port, 0);
  std::vector<Login> s;
  for (int i = 0; i < 10; ++i) {
    s.push_back(login(port, kClerk));
    ASSERT_EQ(s.back().status(), 200) << i;
  }
  std::this_thread::sleep_for(1200ms);
  auto me = call(port, "GET", "/api/auth/me", s[0].token);  // the oldest login, used now
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_GE(num(obj(me).at("session").as_object(), "lastActivity"),
            num(s[0].session, "loginTime") + 1000)
      << me.body;
  auto extra = login(port, kClerk);
  ASSERT_EQ(extra.status(), 200);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", s[1].token).status, 401) << "least recently active";
  EXPECT_EQ(call(port, "GET", "/api/auth/me", s[0].token).status, 200);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", extra.token).status, 200);
}

// GET /api/auth/me keeps a user's public profile for a second per server
// thread (docs/routes.md): a user removed from the database by other means
// (no route removes users) is refused once that second has passed.
// The default settings (SESSION_ACTIVITY_INTERVAL 1 s) and uses closer
// together than that: a session used after the others were created is not
// the least recently active one.
TEST(SessionActivityE2E, EvictionSeesAUseWithinTheSameSecond) {
  Stack st(Env{{"SESSION_MAX_PER_USER", "2"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  auto s1 = login(port, kClerk);
  auto s2 = login(port, kClerk);
  ASSERT_EQ(s1.status(), 200);
  ASSERT_EQ(s2.status(), 200);
  ASSERT_EQ(call(port, "GET", "/api/auth/me", s1.token).status, 200);  // s2 is now the LRU
  auto s3 = login(port, kClerk);
  ASSERT_EQ(s3.status(), 200);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", s2.token).status, 401);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", s1.token).status, 200);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", s3.token).status, 200);
}

TEST(MeProfileE2E, UserRemovedFromTheDatabaseIsRefusedAfterASecond) {
  Stack st;
  auto port = st.port();
  ASSERT_NE(port, 0);
  auto l = login(port, kClerk);
  ASSERT_EQ(l.status(), 200);
  for (int i = 0; i < 4; ++i) {  // both server threads have seen the profile
    auto me = call(port, "GET", "/api/auth/me", l.token);
    ASSERT_EQ(me.status, 200) << me.body;
    EXPECT_EQ(str(obj(me).at("user").as_object(), "email"), kClerk.email);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((st.dir + "/jeweler.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  std::string del = std::string("DELETE FROM users WHERE email = '") + kClerk.email + "'";
  int rc = sqlite3_exec(db, del.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_close(db);
  std::this_thread::sleep_for(1100ms);
  EXPECT_API_ERROR(call(port, "GET", "/api/auth/me", l.token), 401, "unauthorized");
}

// --- Secure cookie by default, aliases, demo data -----------------------------------

TEST(CookieSecureE2E, CookieIsSecureUnlessToldOtherwise) {
  // Also: JWT_EXPIRES_IN / JWT_REFRESH_EXPIRES_IN are aliases of the session durations.
  Stack stack(
      Env{{"COOKIE_SECURE", "true"}, {"JWT_EXPIRES_IN", "90s"}, {"JWT_REFRESH_EXPIRES_IN", "2h"}});
  ASSERT_NE(stack.port(), 0);
  auto l = login(stack.port(), kClerk);
  ASSERT_EQ(l.status(), 200);
  auto c = l.res.header("set-cookie");
  EXPECT_NE(c.find("; Secure"), std::string::npos) << c;
  EXPECT_NE(c.find("HttpOnly"), std::string::npos) << c;
  EXPECT_NE(c.find("SameSite=Strict"), std::string::npos) << c;
  EXPECT_NE(c.find("Path=/"), std::string::npos) << c;
  EXPECT_NEAR(static_cast<double>(num(l.session, "expiresAt") - num(l.session, "lastActivity")),
              90000.0, 2000.0)
      << ser(l.session);
  auto me = obj(call(stack.port(), "GET", "/api/auth/me", l.token));
  EXPECT_NEAR(static_cast<double>(num(me.at("session").as_object(), "expiresAt") -
                                  num(l.session, "loginTime")),
              90000.0, 5000.0);
  auto out = call(stack.port(), "POST", "/api/auth/logout", l.token);
  EXPECT_EQ(out.status, 204);
  EXPECT_NE(out.header("set-cookie").find("Secure"), std::string::npos);

  // Passwords are stored only as strong hashes: no plain password in the database files.
  std::string db;
  for (const auto& e : std::filesystem::recursive_directory_iterator(stack.dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    db += std::string(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(db.empty());
  for (const auto& u : {kOwner, kClerk, kSecure, kArgent})
    EXPECT_EQ(db.find(u.password), std::string::npos) << u.email;
  EXPECT_NE(db.find("$argon2id$"), std::string::npos) << "Argon2id hashes expected";
}

TEST(DemoDataE2E, CreatedOnlyWhenAskedFor) {
  RedisServer redis;
  auto dir = jeweler::test::make_temp_dir("e2e-nodemo");
  Env env = default_env();
  env["REDIS_URL"] = redis.url();
  env["DATABASE_PATH"] = dir + "/jeweler.db";
  {
    ServerProcess server(env);  // no --demo-data: a production start
    auto port = server.wait_listening();
    ASSERT_NE(port, 0) << server.output();
    EXPECT_API_ERROR(login(port, kOwner).res, 401, "unauthorized");
    EXPECT_API_ERROR(login(port, kArgent).res, 401, "unauthorized");
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(15s), 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
