// Session pieces that need no Redis: tokens, ids, buckets, the hash codec,
// input validation, the JSON shapes of API.md section 2, options.
#include <jeweler/session/codec.hpp>
#include <jeweler/session/detail/keys.hpp>
#include <jeweler/session/options.hpp>
#include <jeweler/session/token.hpp>
#include <jeweler/session/types.hpp>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <map>
#include <set>

using namespace jeweler;
using namespace jeweler::session;
using namespace std::chrono_literals;

namespace {

TenantId tenant(std::string_view s) {
  return TenantId::from(s);
}
UserId user(std::string_view s) {
  return UserId::from(s);
}

}  // namespace

TEST(SessionToken, Base64UrlRoundTripAndStrictness) {
  unsigned char b[32];
  for (int i = 0; i < 32; ++i) b[i] = static_cast<unsigned char>(i * 37 + 11);
  auto s = base64url_encode(b, 32);
  EXPECT_EQ(s.size(), 43u);
  EXPECT_EQ(s.find_first_of("+/="), std::string::npos);
  unsigned char out[32];
  ASSERT_TRUE(base64url_decode(s, out, 32));
  EXPECT_EQ(0, std::memcmp(b, out, 32));
  EXPECT_FALSE(base64url_decode(s + "A", out, 32));          // too long
  EXPECT_FALSE(base64url_decode(s.substr(0, 42), out, 32));  // too short
  std::string bad = s;
  bad[5] = '+';
  EXPECT_FALSE(base64url_decode(bad, out, 32));  // standard alphabet
  bad = s;
  bad[5] = '=';
  EXPECT_FALSE(base64url_decode(bad, out, 32));
  // Non-canonical: the last character of 32 bytes carries 2 unused bits.
  std::string nc = s;
  nc.back() = nc.back() == 'A' ? 'B' : 'A';
  unsigned char tmp[32];
  bool canonical_last = base64url_decode(nc, tmp, 32);
  EXPECT_FALSE(canonical_last && (s.back() == 'A' || s.back() == 'E'));  // 'B' has a low bit set
  EXPECT_FALSE(base64url_decode(std::string(42, 'A') + "B", out, 32));
  EXPECT_TRUE(base64url_decode(std::string(42, 'A') + "E", out, 32));
}

TEST(SessionToken, GeneratedTokensLandInTheirUsersBucket) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto t = tenant("aurum");
    auto u = user("user-" + std::to_string(i));
    auto b = user_bucket(t, u);
    ASSERT_LT(b, bucket_count);
    auto nt = generate_token(b);
    EXPECT_EQ(nt.token.size(), token_chars);
    EXPECT_TRUE(seen.insert(nt.token).second);
    auto ref = parse_token(nt.token);
    ASSERT_TRUE(ref);
    EXPECT_EQ(ref->bucket, b);
    EXPECT_EQ(ref->digest_hex, nt.ref.digest_hex);
    EXPECT_EQ(ref->digest_hex.size(), 64u);
    EXPECT_EQ(ref->digest_hex.find(nt.token), std::string::npos);
  }
}

TEST(SessionToken, BucketsSpreadUsers) {
  std::set<std::uint32_t> buckets;
  for (int i = 0; i < 2000; ++i)
    buckets.insert(user_bucket(tenant("t"), user("u" + std::to_string(i))));
  EXPECT_GT(buckets.size(), 700u);  // 2000 draws over 1024 buckets: ~880 expected
  // Same input, same bucket; tenant matters.
  EXPECT_EQ(user_bucket(tenant("a"), user("x")), user_bucket(tenant("a"), user("x")));
}

TEST(SessionToken, ParseRejectsMalformed) {
  EXPECT_FALSE(parse_token(""));
  EXPECT_FALSE(parse_token("short"));
  EXPECT_FALSE(parse_token(std::string(43, '*')));
  EXPECT_FALSE(parse_token(std::string(44, 'A')));
  EXPECT_FALSE(parse_token(std::string(10000, 'A')));
  EXPECT_TRUE(parse_token(std::string(43, 'A')));
}

TEST(SessionToken, IdsAndConstantTimeEqual) {
  auto id = generate_id();
  EXPECT_EQ(id.size(), id_chars);
  EXPECT_TRUE(valid_id(id));
  EXPECT_NE(id, generate_id());
  EXPECT_FALSE(valid_id(id + "A"));
  EXPECT_FALSE(valid_id("../../etc"));
  EXPECT_TRUE(constant_time_equal(id, id));
  EXPECT_FALSE(constant_time_equal(id, generate_id()));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

TEST(SessionKeys, SchemaAndHashTags) {
  session::detail::Keys k("jeweler:");
  auto t = tenant("aurum");
  auto u = user("owner@aurum.example");
  auto b = user_bucket(t, u);
  char tag[16];
  std::snprintf(tag, sizeof tag, "{b%04u}", b);
  EXPECT_EQ(k.base(b), std::string("jeweler:sess:") + tag + ":");
  EXPECT_EQ(k.index(t, u), k.base(b) + "u:aurum:owner@aurum.example");
  auto nt = generate_token(b);
  EXPECT_EQ(k.session(nt.ref), k.base(b) + nt.ref.digest_hex);
  EXPECT_EQ(k.tenant_stats(t), "jeweler:sess:tenant:aurum");
  EXPECT_EQ(k.live(), "jeweler:sess:live");
  EXPECT_THROW(session::detail::Keys("bad{prefix}:"), redis::ConfigError);
}

namespace {
std::map<std::string, std::string> good_fields() {
  return {{"v", "1"},
          {"id", generate_id()},
          {"tid", "aurum"},
          {"uid", "u1"},
          {"em", "a@b.c"},
          {"role", "admin"},
          {"ua", "UA"},
          {"ip", "10.0.0.1"},
          {"dev", "d1"},
          {"lt", "1700000000000"},
          {"la", "1700000000500"},
          {"mx", "1700604800000"},
          {"tf", "0"},
          {"ipc", "2"}};
}
codec::Fields as_fields(const std::map<std::string, std::string>& m) {
  codec::Fields f;
  for (const auto& [k, v] : m) f.emplace_back(k, v);
  return f;
}
}  // namespace

TEST(SessionCodec, DecodesGoodData) {
  auto m = good_fields();
  auto s = codec::decode(as_fields(m), 1700086400000);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->tenant_id.str(), "aurum");
  EXPECT_EQ(s->user_id.str(), "u1");
  EXPECT_EQ(s->login_time, 1700000000000);
  EXPECT_EQ(s->last_activity, 1700000000500);
  EXPECT_EQ(s->expires_at, 1700086400000);
  EXPECT_EQ(s->absolute_expiry, 1700604800000);
  EXPECT_EQ(s->ip_changes, 2);
  EXPECT_FALSE(s->two_factor_verified);
  EXPECT_EQ(s->device, (DeviceInfo{"UA", "10.0.0.1", "d1"}));
}

TEST(SessionCodec, RejectsCorruptData) {
  std::vector<std::pair<std::string, std::string>> breakages = {{"v", "2"},
                                                                {"v", ""},
                                                                {"id", "x"},
                                                                {"tid", "bad tenant"},
                                                                {"uid", ""},
                                                                {"lt", "abc"},
                                                                {"lt", "-5"},
                                                                {"la", "1"},
                                                                {"mx", "12x"},
                                                                {"tf", "yes"},
                                                                {"ipc", "-1"},
                                                                {"role", std::string(100, 'r')},
                                                                {"ua", std::string(600, 'u')}};
  for (const auto& [k, v] : breakages) {
    auto m = good_fields();
    m[k] = v;
    std::string why;
    EXPECT_FALSE(codec::decode(as_fields(m), 1, &why)) << k << "=" << v;
    EXPECT_FALSE(why.empty());
  }
  for (const char* missing :
       {"v", "id", "tid", "uid", "em", "role", "ua", "lt", "la", "mx", "tf"}) {
    auto m = good_fields();
    m.erase(missing);
    EXPECT_FALSE(codec::decode(as_fields(m), 1)) << missing;
  }
}

TEST(SessionCodec, PatchEncodesOnlySetFields) {
  SessionPatch p;
  EXPECT_TRUE(p.empty());
  EXPECT_TRUE(codec::encode_patch(p).empty());
  p.two_factor_verified = true;
  EXPECT_EQ(codec::encode_patch(p), (std::vector<std::string>{"tf", "1"}));
  p.role = "staff";
  EXPECT_EQ(codec::encode_patch(p), (std::vector<std::string>{"role", "staff", "tf", "1"}));
}

TEST(SessionValidation, Inputs) {
  auto ns = [] {
    return NewSession{tenant("t"), user("u"), "a@b.c", "admin", {"UA", "10.0.0.1", "dev-1"}, false};
  };
  auto ok = ns();
  EXPECT_FALSE(normalize(ok));
  auto bad = ns();
  bad.email = "";
  EXPECT_EQ(normalize(bad), make_error_code(errc::invalid_argument));
  bad = ns();
  bad.email = std::string(300, 'e');
  EXPECT_TRUE(normalize(bad));
  bad = ns();
  bad.role = "ad min";
  EXPECT_TRUE(normalize(bad));
  bad = ns();
  bad.device.ip = "1.2.3.4\r\nX: y";
  EXPECT_TRUE(normalize(bad));
  bad = ns();
  bad.device.device_id = std::string(200, 'd');
  EXPECT_TRUE(normalize(bad));
  bad = ns();
  bad.device.user_agent = "a\nb";
  EXPECT_TRUE(normalize(bad));
  // Long user agents are truncated (on a UTF-8 boundary), not refused.
  auto lng = ns();
  lng.device.user_agent = std::string(511, 'a') + "\xc3\xa9" + std::string(100, 'b');
  EXPECT_FALSE(normalize(lng));
  EXPECT_EQ(lng.device.user_agent, std::string(511, 'a'));
  SessionPatch p;
  p.role = "";
  EXPECT_TRUE(normalize(p));
  DeviceSeen d{std::string(2000, 'x'), "::1"};
  EXPECT_FALSE(normalize(d));
  EXPECT_EQ(d.user_agent.size(), limits::user_agent);
}

// 14.9: one normalisation for the login and every later request: a cut at a
// character boundary, invalid sequences replaced, valid UTF-8 out,
// idempotent (so the stored value always equals a later request's).
bool valid_utf8(std::string_view s) {
  std::string copy(s);
  normalize_user_agent(copy);  // would change invalid input
  return copy == s;
}

TEST(SessionValidation, UserAgentNormalisation) {
  // 512 bytes whose last character is multi-byte and crosses the limit.
  std::string ua = std::string(510, 'a') + "\xE2\x82\xAC";  // 513 bytes, "€" at 510..512
  std::string n = ua;
  normalize_user_agent(n);
  EXPECT_EQ(n, std::string(510, 'a'));
  // A character that ends exactly at the limit is kept.
  std::string exact = std::string(509, 'a') + "\xE2\x82\xAC";  // 512 bytes
  n = exact;
  normalize_user_agent(n);
  EXPECT_EQ(n, exact);
  // Idempotent: a normalised value normalises to itself.
  for (std::string x : {ua, exact, std::string("\xFF") + std::string(600, 'z'),
                        std::string(600, '\xC3'), std::string("ok")}) {
    std::string once = x;
    normalize_user_agent(once);
    std::string twice = once;
    normalize_user_agent(twice);
    EXPECT_EQ(once, twice);
    EXPECT_LE(once.size(), limits::user_agent);
    EXPECT_TRUE(valid_utf8(once));
  }
  // Invalid sequences (lone continuation, truncated, overlong, surrogate,
  // above U+10FFFF) each become U+FFFD; valid 2-, 3-, 4-byte characters stay.
  const std::string fffd = "\xEF\xBF\xBD";
  struct Case {
    std::string in, out;
  };
  std::vector<Case> cases = {
      {"a\x80"
       "b",
       "a" + fffd + "b"},
      {"a\xC3", "a" + fffd},
      {"\xC0\xAF", fffd + fffd},
      {"\xED\xA0\x80", fffd + fffd + fffd},
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},
      {"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x92\x8E", "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x92\x8E"},
  };
  for (const auto& c : cases) {
    std::string x = c.in;
    normalize_user_agent(x);
    EXPECT_EQ(x, c.out);
  }
  // The result is valid JSON text once serialised (no raw invalid bytes).
  Session s{
      .id = "i", .tenant_id = tenant("t"), .user_id = user("u"), .email = "a@b.c", .role = "staff"};
  s.device.user_agent = std::string(511, 'a') + "\xC3\xA9";
  normalize_user_agent(s.device.user_agent);
  auto text = boost::json::serialize(to_json(s));
  boost::system::error_code ec;
  auto back = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << ec.message();
}

TEST(SessionJson, ShapesOfApiSection2) {
  Session s{.id = "abc",
            .tenant_id = tenant("aurum"),
            .user_id = user("u1"),
            .email = "a@b.c",
            .role = "admin",
            .device = {"UA", "10.0.0.1", "d1"},
            .login_time = 1,
            .last_activity = 2,
            .expires_at = 3,
            .absolute_expiry = 4,
            .two_factor_verified = true,
            .ip_changes = 0};
  auto j = boost::json::serialize(to_json(s));
  EXPECT_EQ(j, R"({"id":"abc","userId":"u1","tenantId":"aurum","email":"a@b.c","role":"admin",)"
               R"("deviceInfo":{"userAgent":"UA","ip":"10.0.0.1","deviceId":"d1"},"loginTime":1,)"
               R"("lastActivity":2,"expiresAt":3,"twoFactorVerified":true})");
  auto s2 = s;
  s2.id = "other";
  auto list = boost::json::serialize(to_sessions_json({s, s2}, "abc"));
  EXPECT_EQ(
      list,
      R"({"sessions":[{"id":"abc","deviceInfo":{"userAgent":"UA","ip":"10.0.0.1","deviceId":"d1"},)"
      R"("loginTime":1,"lastActivity":2,"expiresAt":3,"current":true},)"
      R"({"id":"other","deviceInfo":{"userAgent":"UA","ip":"10.0.0.1","deviceId":"d1"},)"
      R"("loginTime":1,"lastActivity":2,"expiresAt":3,"current":false}]})");
  EXPECT_EQ(boost::json::serialize(to_json(TenantStats{5, 2})),
            R"({"liveSessions":5,"usersWithSessions":2})");
}

TEST(SessionOptions, FromEnv) {
  auto env = [](std::map<std::string, std::string> m) {
    return [m](std::string_view n) -> std::optional<std::string> {
      auto it = m.find(std::string(n));
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  };
  auto d = Options::from_env(env({}));
  EXPECT_EQ(d.idle_ttl, 24h);
  EXPECT_EQ(d.max_lifetime, 24h * 7);
  EXPECT_EQ(d.max_per_user, 10u);
  EXPECT_EQ(d.activity_interval, 1s);
  EXPECT_EQ(d.pending_2fa_ttl, 5min);
  EXPECT_EQ(Options::from_env(env({{"SESSION_2FA_PENDING_TTL", "2s"}})).pending_2fa_ttl, 2s);
  EXPECT_THROW(Options::from_env(env({{"SESSION_2FA_PENDING_TTL", "0"}})), redis::ConfigError);
  EXPECT_THROW(Options::from_env(env({{"SESSION_2FA_PENDING_TTL", "later"}})), redis::ConfigError);
  auto a = Options::from_env(env({{"JWT_EXPIRES_IN", "15m"}, {"JWT_REFRESH_EXPIRES_IN", "1d"}}));
  EXPECT_EQ(a.idle_ttl, 15min);
  EXPECT_EQ(a.max_lifetime, 24h);
  auto b = Options::from_env(env({{"SESSION_TTL", "90s"},
                                  {"JWT_EXPIRES_IN", "15m"},
                                  {"SESSION_MAX_LIFETIME", "2h"},
                                  {"SESSION_MAX_PER_USER", "3"},
                                  {"SESSION_ACTIVITY_INTERVAL", "5s"}}));
  EXPECT_EQ(b.idle_ttl, 90s);
  EXPECT_EQ(b.max_lifetime, 2h);
  EXPECT_EQ(b.max_per_user, 3u);
  EXPECT_EQ(b.activity_interval, 5s);
  EXPECT_THROW(Options::from_env(env({{"SESSION_TTL", "soon"}})), redis::ConfigError);
  EXPECT_THROW(Options::from_env(env({{"SESSION_TTL", "0"}})), redis::ConfigError);
  EXPECT_THROW(Options::from_env(env({{"SESSION_MAX_PER_USER", "0"}})), redis::ConfigError);
  try {
    Options::from_env(env({{"SESSION_MAX_PER_USER", "x"}}));
    FAIL();
  } catch (const redis::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("SESSION_MAX_PER_USER"), std::string::npos);
  }
}
