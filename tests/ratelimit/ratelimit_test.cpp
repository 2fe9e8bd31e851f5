// Rate limiting without Redis: policies from env, keys, TRUST_PROXY, the
// in-process fallback against the scripted timelines, and header formatting.
#include <jeweler/ratelimit/fallback.hpp>
#include <jeweler/ratelimit/headers.hpp>
#include <jeweler/ratelimit/key.hpp>
#include <jeweler/ratelimit/middleware.hpp>
#include <jeweler/ratelimit/policy.hpp>
#include <jeweler/ratelimit/proxy.hpp>
#include <jeweler/redis/error.hpp>

#include "timelines.hpp"

#include <gtest/gtest.h>

#include <map>
#include <thread>

using namespace jeweler;
using namespace jeweler::ratelimit;
using namespace std::chrono_literals;

namespace {

PolicySet::Lookup env(std::map<std::string, std::string> m) {
  return [m](std::string_view name) -> std::optional<std::string> {
    auto it = m.find(std::string(name));
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

std::string config_error(const std::map<std::string, std::string>& m) {
  try {
    PolicySet::from_env(env(m));
  } catch (const redis::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Policy, SeedDefaults) {
  auto s = PolicySet::from_env(env({}));
  EXPECT_EQ(s.api.name, "api");
  EXPECT_EQ(s.api.limit, 100);
  EXPECT_EQ(s.api.window, 900'000ms);
  EXPECT_EQ(s.api_tenant.name, "api-tenant");
  EXPECT_EQ(s.api_tenant.limit, 1000);
  EXPECT_EQ(s.auth_ip.name, "auth-ip");
  EXPECT_EQ(s.auth_account.name, "auth-account");
  EXPECT_EQ(s.auth_ip.limit, 5);
  EXPECT_EQ(s.auth_ip.window, 900'000ms);
  EXPECT_EQ(s.auth_ip.consume, Consume::on_failure);
  EXPECT_FALSE(s.auth_ip.fail_open);
  EXPECT_EQ(s.reset_ip.name, "password-reset-ip");
  EXPECT_EQ(s.reset_email.name, "password-reset-email");
  EXPECT_EQ(s.reset_ip.limit, 3);
  EXPECT_EQ(s.reset_ip.window, 3'600'000ms);
  EXPECT_FALSE(s.reset_email.fail_open);
  EXPECT_EQ(s.invoice.limit, 10);
  EXPECT_EQ(s.invoice.window, 60'000ms);
  EXPECT_TRUE(s.invoice.fail_open);
  EXPECT_EQ(s.upload.limit, 20);
  EXPECT_EQ(s.upload.window, 60'000ms);
  for (auto* p : s.all()) EXPECT_EQ(p->algorithm, Algorithm::sliding_log) << p->name;
}

TEST(Policy, EnvOverrides) {
  auto s = PolicySet::from_env(env({{"RATE_LIMIT_MAX_REQUESTS", "50"},
                                    {"RATE_LIMIT_WINDOW_MS", "60000"},
                                    {"RATE_LIMIT_AUTH_MAX", "7"},
                                    {"RATE_LIMIT_AUTH_FAIL_OPEN", "true"},
                                    {"RATE_LIMIT_PASSWORD_RESET_WINDOW_MS", "1000"},
                                    {"RATE_LIMIT_UPLOAD_ALGORITHM", "gcra"},
                                    {"RATE_LIMIT_INVOICE_FAIL_OPEN", "false"}}));
  EXPECT_EQ(s.api.limit, 50);
  EXPECT_EQ(s.api.window, 60'000ms);
  EXPECT_EQ(s.api_tenant.limit, 500);  // 10 x the user limit
  EXPECT_EQ(s.api_tenant.window, 60'000ms);
  EXPECT_EQ(s.auth_ip.limit, 7);
  EXPECT_EQ(s.auth_account.limit, 7);
  EXPECT_TRUE(s.auth_ip.fail_open);
  EXPECT_TRUE(s.auth_account.fail_open);
  EXPECT_EQ(s.reset_ip.window, 1000ms);
  EXPECT_EQ(s.reset_email.window, 1000ms);
  EXPECT_EQ(s.upload.algorithm, Algorithm::gcra);
  EXPECT_FALSE(s.invoice.fail_open);
  auto t = PolicySet::from_env(env({{"RATE_LIMIT_TENANT_MAX", "12345"}}));
  EXPECT_EQ(t.api_tenant.limit, 12345);
}

TEST(Policy, LimitsBeyondASlidingLogSelectTheCounterUnlessTheLogIsAsked) {
  // http-bench.sh's advice for load tests: the server must start with it.
  auto s = PolicySet::from_env(env({{"RATE_LIMIT_MAX_REQUESTS", "1000000000"},
                                    {"RATE_LIMIT_TENANT_MAX", "1000000000"},
                                    {"RATE_LIMIT_AUTH_MAX", "2000000"}}));
  EXPECT_EQ(s.api.limit, 1'000'000'000);
  EXPECT_EQ(s.api.algorithm, Algorithm::sliding_counter);
  EXPECT_EQ(s.api_tenant.algorithm, Algorithm::sliding_counter);
  EXPECT_EQ(s.auth_ip.algorithm, Algorithm::sliding_counter);
  EXPECT_EQ(s.auth_account.algorithm, Algorithm::sliding_counter);
  EXPECT_EQ(s.invoice.algorithm, Algorithm::sliding_log);
  // Counters of such budgets lease units per thread (docs/ratelimit.md).
  EXPECT_EQ(s.api.lease, kDefaultLease);
  EXPECT_EQ(s.api_tenant.lease, kDefaultLease);
  EXPECT_EQ(s.invoice.lease, 0);
  auto at_max = PolicySet::from_env(env({{"RATE_LIMIT_MAX_REQUESTS", "1000000"}}));
  EXPECT_EQ(at_max.api.algorithm, Algorithm::sliding_log);
  EXPECT_EQ(at_max.api.lease, 0);
  EXPECT_EQ(at_max.api_tenant.algorithm, Algorithm::sliding_counter);  // 10 x 1e6
  EXPECT_EQ(at_max.api_tenant.lease, kDefaultLease);
  // A counter asked for below the threshold, or over a window under 1 s, counts
  // every request in Redis.
  auto asked = PolicySet::from_env(
      env({{"RATE_LIMIT_MAX_REQUESTS", "100"}, {"RATE_LIMIT_API_ALGORITHM", "counter"}}));
  EXPECT_EQ(asked.api.algorithm, Algorithm::sliding_counter);
  EXPECT_EQ(asked.api.lease, 0);
  auto short_window = PolicySet::from_env(
      env({{"RATE_LIMIT_MAX_REQUESTS", "1000000000"}, {"RATE_LIMIT_WINDOW_MS", "999"}}));
  EXPECT_EQ(short_window.api.lease, 0);
  const auto defaults = PolicySet::defaults();
  for (auto* p : defaults.all()) EXPECT_EQ(p->lease, 0) << p->name;
  EXPECT_EQ(s.auth_ip.lease, 0);  // failures only: counted one by one
  Policy bad = s.invoice;
  bad.lease = 8;  // a sliding log cannot lease
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  bad = s.api;
  bad.lease = kMaxLease + 1;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  EXPECT_NE(
      config_error({{"RATE_LIMIT_MAX_REQUESTS", "2000000"}, {"RATE_LIMIT_API_ALGORITHM", "log"}})
          .find("RATE_LIMIT_MAX_REQUESTS"),
      std::string::npos);
}

TEST(Policy, BadValuesNameTheVariable) {
  EXPECT_NE(config_error({{"RATE_LIMIT_MAX_REQUESTS", "abc"}}).find("RATE_LIMIT_MAX_REQUESTS"),
            std::string::npos);
  EXPECT_NE(config_error({{"RATE_LIMIT_MAX_REQUESTS", "0"}}).find("RATE_LIMIT_MAX_REQUESTS"),
            std::string::npos);
  EXPECT_NE(config_error({{"RATE_LIMIT_WINDOW_MS", "-5"}}).find("RATE_LIMIT_WINDOW_MS"),
            std::string::npos);
  EXPECT_NE(config_error({{"RATE_LIMIT_AUTH_MAX", "many"}}).find("RATE_LIMIT_AUTH_MAX"),
            std::string::npos);
  EXPECT_NE(config_error({{"RATE_LIMIT_UPLOAD_FAIL_OPEN", "perhaps"}})
                .find("RATE_LIMIT_UPLOAD_FAIL_OPEN"),
            std::string::npos);
  EXPECT_NE(
      config_error({{"RATE_LIMIT_INVOICE_WINDOW_MS", "10s"}}).find("RATE_LIMIT_INVOICE_WINDOW_MS"),
      std::string::npos);
  EXPECT_NE(config_error({{"RATE_LIMIT_PASSWORD_RESET_ALGORITHM", "leaky"}})
                .find("RATE_LIMIT_PASSWORD_RESET_ALGORITHM"),
            std::string::npos);
  EXPECT_EQ(config_error({{"RATE_LIMIT_AUTH_MAX", ""}}), "");  // empty = unset
}

TEST(Key, Schema) {
  auto t = TenantId::from("aurum");
  auto u = UserId::from("u-1");
  EXPECT_EQ(Key::user(t, u).redis_key("jeweler:", "api"), "jeweler:rl:{t:aurum}:api:u:u-1");
  EXPECT_EQ(Key::tenant(t).redis_key("jeweler:", "api-tenant"), "jeweler:rl:{t:aurum}:api-tenant");
  EXPECT_EQ(Key::ip("10.1.2.3")->redis_key("p:", "auth-ip"), "p:rl:{ip:10.1.2.3}:auth-ip");
  EXPECT_EQ(Key::ip("::ffff:10.1.2.3")->scope(), "ip:10.1.2.3");
  EXPECT_EQ(Key::ip("[2001:db8:1:2:3:4:5:6]:443")->scope(), "ip:2001:db8:1:2::");
  EXPECT_EQ(Key::ip("2001:db8:1:2:ffff::1", 128)->scope(), "ip:2001:db8:1:2:ffff::1");
  EXPECT_FALSE(Key::ip("not-an-ip"));
  EXPECT_FALSE(Key::ip("1.2.3.4}{x"));
  // Emails are hashed, case- and blank-insensitive; no user text in the key.
  auto e = Key::email(" Owner@Aurum.Example ");
  EXPECT_EQ(e, Key::email("owner@aurum.example"));
  EXPECT_EQ(e.scope().size(), 3u + 32u);
  EXPECT_EQ(e.scope().find("aurum"), std::string::npos);
  auto evil = Key::custom("a}{b:*", "x y");
  auto k = evil.redis_key("jeweler:", "c");
  EXPECT_EQ(k.find_first_of(" *"), std::string::npos);
  EXPECT_EQ(std::count(k.begin(), k.end(), '{'), 1);
  EXPECT_EQ(std::count(k.begin(), k.end(), '}'), 1);
  EXPECT_EQ(Key::custom("ok", "fine").redis_key("j:", "p"), "j:rl:{c:ok}:p:fine");
}

// Issue 15.1: the key a Limiter uses names the shape of its value, so two
// configurations of one policy never read each other's values.
TEST(Key, ShapeTagInLimiterKeys) {
  auto t = TenantId::from("aurum");
  auto u = UserId::from("u-1");
  Policy p;
  p.name = "api";
  EXPECT_EQ(Key::user(t, u).redis_key("jeweler:", p), "jeweler:rl:{t:aurum}:api.l:u:u-1");
  p.algorithm = Algorithm::sliding_counter;
  EXPECT_EQ(Key::user(t, u).redis_key("jeweler:", p), "jeweler:rl:{t:aurum}:api.c:u:u-1");
  p.name = "auth-ip";
  p.algorithm = Algorithm::gcra;
  EXPECT_EQ(Key::ip("10.1.2.3")->redis_key("p:", p), "p:rl:{ip:10.1.2.3}:auth-ip.g");
  EXPECT_EQ(shape_tag(Algorithm::sliding_log), "l");
  EXPECT_EQ(shape_tag(Algorithm::sliding_counter), "c");
  EXPECT_EQ(shape_tag(Algorithm::gcra), "g");
}

TEST(Proxy, CidrParsing) {
  auto c = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains("10.255.1.2"));
  EXPECT_TRUE(c->contains("::ffff:10.0.0.1"));
  EXPECT_FALSE(c->contains("11.0.0.1"));
  EXPECT_FALSE(c->contains("::1"));
  auto v6 = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("2001:db8:ffff::1"));
  EXPECT_FALSE(v6->contains("2001:db9::1"));
  EXPECT_FALSE(v6->contains("10.0.0.1"));
  EXPECT_EQ(v6->to_string(), "2001:db8::/32");
  auto host = Cidr::parse("192.168.1.10");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix, 32);
  EXPECT_TRUE(host->contains("192.168.1.10"));
  EXPECT_FALSE(host->contains("192.168.1.11"));
  EXPECT_EQ(Cidr::parse("::1")->prefix, 128);
  EXPECT_EQ(Cidr::parse("0.0.0.0/0")->prefix, 0);
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains("8.8.8.8"));
  EXPECT_EQ(Cidr::parse("10.1.2.3/8")->to_string(), "10.0.0.0/8");  // host bits cleared
  EXPECT_TRUE(Cidr::parse("::ffff:10.0.0.0/104")->contains("10.9.9.9"));
  for (auto bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0/8", "abc", "10.0.0.0/8x",
                   "[::1]/128", "", "1.2.3.4:80", "10.0.0.0/-1"})
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
}

TEST(Proxy, TrustProxyList) {
  auto t = TrustedProxies::parse("10.0.0.0/8, 2001:db8::/32 loopback");
  EXPECT_TRUE(t.trusts("10.1.1.1"));
  EXPECT_TRUE(t.trusts("127.0.0.1"));
  EXPECT_TRUE(t.trusts("::1"));
  EXPECT_TRUE(t.trusts("2001:db8::5"));
  EXPECT_FALSE(t.trusts("192.168.0.1"));
  try {
    TrustedProxies::parse("10.0.0.0/8,nonsense");
    FAIL() << "no error";
  } catch (const redis::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("TRUST_PROXY"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("nonsense"), std::string::npos);
  }
  EXPECT_TRUE(TrustedProxies::from_env([](std::string_view) { return std::nullopt; }).empty());
}

TEST(Proxy, ClientIp) {
  TrustedProxies none;
  // Nobody trusted: X-Forwarded-For is ignored, a client cannot pick its key.
  EXPECT_EQ(none.client_ip("203.0.113.9", "1.1.1.1"), "203.0.113.9");
  auto t = TrustedProxies::parse("10.0.0.0/8,fd00::/8");
  // Untrusted peer: its own address.
  EXPECT_EQ(t.client_ip("203.0.113.9", "1.1.1.1"), "203.0.113.9");
  // Trusted peer: right-most untrusted address.
  EXPECT_EQ(t.client_ip("10.0.0.1", "1.1.1.1, 198.51.100.7"), "198.51.100.7");
  EXPECT_EQ(t.client_ip("10.0.0.1", "1.1.1.1, 198.51.100.7, 10.0.0.2"), "198.51.100.7");
  // A spoofed left part is never used while an untrusted hop is to its right.
  EXPECT_EQ(t.client_ip("10.0.0.1", "6.6.6.6,198.51.100.7,10.9.9.9"), "198.51.100.7");
  // Every hop trusted: the left-most.
  EXPECT_EQ(t.client_ip("10.0.0.1", "10.0.0.5, 10.0.0.6"), "10.0.0.5");
  // No header: the proxy itself.
  EXPECT_EQ(t.client_ip("10.0.0.1", ""), "10.0.0.1");
  // Garbage stops at the last valid hop.
  EXPECT_EQ(t.client_ip("10.0.0.1", "1.2.3.4, garbage, 10.0.0.3"), "10.0.0.3");
  // IPv6, brackets, ports, mapped addresses, blanks.
  EXPECT_EQ(t.client_ip("fd00::1", "[2001:db8::7]:5555"), "2001:db8::7");
  EXPECT_EQ(t.client_ip("::ffff:10.0.0.1", "198.51.100.7:1234,,"), "198.51.100.7");
  EXPECT_EQ(t.client_ip("::ffff:203.0.113.1", ""), "203.0.113.1");
}

TEST(Fallback, ScriptedTimelines) {
  for (const auto& tl : test::timelines()) {
    Fallback fb;
    std::vector<Check> checks = {{&tl.policy, Key::custom("timeline", tl.name)}};
    int i = 0;
    for (const auto& s : tl.steps) {
      auto d = fb.evaluate(checks, test::kT0 + s.t);
      ASSERT_EQ(d.results.size(), 1u);
      const auto& r = d.results[0];
      SCOPED_TRACE(std::string(tl.name) + " step " + std::to_string(i++) +
                   " t=" + std::to_string(s.t));
      EXPECT_EQ(r.allowed, s.allowed);
      EXPECT_EQ(d.allowed, s.allowed);
      EXPECT_EQ(r.consumed, s.allowed);
      EXPECT_EQ(r.remaining, s.remaining);
      EXPECT_EQ(r.reset_after.count(), s.reset_after);
      EXPECT_EQ(r.retry_after.count(), s.retry_after);
      EXPECT_TRUE(r.fallback);
    }
  }
}

TEST(Fallback, CompositeConsumesNothingWhenOneRejects) {
  Policy a = test::timeline_policy("a", Algorithm::sliding_log, 5);
  Policy b = test::timeline_policy("b", Algorithm::sliding_log, 2);
  Fallback fb;
  std::vector<Check> both = {{&a, Key::custom("k")}, {&b, Key::custom("k")}};
  EXPECT_TRUE(fb.evaluate(both, 1000).allowed);
  EXPECT_TRUE(fb.evaluate(both, 1000).allowed);
  auto d = fb.evaluate(both, 1000);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.results[0].allowed);
  EXPECT_FALSE(d.results[0].consumed);
  EXPECT_EQ(d.results[0].remaining, 3);
  std::vector<Check> only_a = {{&a, Key::custom("k")}};
  EXPECT_EQ(fb.evaluate(only_a, 1000).results[0].remaining, 2);  // 5 - 3 consumed
}

// A unit reserved by an on-failure policy in the fallback (a fail-open auth
// limit during an outage) is given back by release(): a success does not
// consume there either.
TEST(Fallback, ReleaseGivesBackAReservedUnit) {
  for (auto algo : {Algorithm::sliding_log, Algorithm::sliding_counter, Algorithm::gcra}) {
    Policy p = test::timeline_policy("auth-x", algo, 3);
    Fallback fb;
    std::vector<Check> c = {{&p, Key::custom("k")}};
    std::int64_t now = 100'000;
    std::vector<Decision> held;
    for (int i = 0; i < 3; ++i) held.push_back(fb.evaluate(c, now));
    for (const auto& d : held) EXPECT_TRUE(d.allowed) << to_string(algo);
    EXPECT_FALSE(fb.evaluate(c, now).allowed) << to_string(algo);
    Reservation r;
    r.policy = &p;
    r.key = Fallback::key_of(c[0]);
    r.at_ms = held[1].results[0].now_ms;
    r.fallback = true;
    fb.release(r);
    EXPECT_TRUE(fb.evaluate(c, now).allowed) << to_string(algo);
    EXPECT_FALSE(fb.evaluate(c, now).allowed) << to_string(algo);
  }
}

TEST(Fallback, CheckOnlyCountsNothing) {
  Policy p = test::timeline_policy("p", Algorithm::sliding_log, 2);
  Fallback fb;
  std::vector<Check> check = {{&p, Key::custom("k"), Mode::check_only}};
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(fb.evaluate(check, 1000).allowed);
  EXPECT_EQ(fb.evaluate(check, 1000).results[0].remaining, 2);
}

TEST(Fallback, MemoryBounded) {
  Policy p = test::timeline_policy("p", Algorithm::sliding_log, 2);
  Fallback fb(100);
  for (int i = 0; i < 1000; ++i) {
    std::vector<Check> c = {{&p, Key::custom("k", std::to_string(i))}};
    fb.evaluate(c, 1000);
  }
  EXPECT_LE(fb.size(), 100u);
}

TEST(Fallback, ThreadSafeSharedBudget) {
  Policy p = test::timeline_policy("p", Algorithm::sliding_log, 500);
  p.window = 3600s;
  Fallback fb;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::vector<Check> c = {{&p, Key::custom("shared")}};
      for (int i = 0; i < 400; ++i)
        if (fb.evaluate(c).allowed) ++admitted;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 500);
}

namespace {
LimitResult result(const Policy& p, bool allowed, std::int64_t remaining, std::int64_t reset,
                   std::int64_t retry = 0) {
  LimitResult r;
  r.policy = &p;
  r.allowed = allowed;
  r.consumed = allowed;
  r.limit = p.limit;
  r.window = p.window;
  r.remaining = remaining;
  r.reset_after = std::chrono::milliseconds(reset);
  r.retry_after = std::chrono::milliseconds(retry);
  r.now_ms = 1704110100000;  // 2024-01-01T12:00:00.000Z minus 300 s
  return r;
}
}  // namespace

TEST(Headers, Iso8601) {
  EXPECT_EQ(format_iso8601_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_iso8601_ms(1704110400000), "2024-01-01T12:00:00.000Z");
  EXPECT_EQ(format_iso8601_ms(1704110400007), "2024-01-01T12:00:00.007Z");
  EXPECT_EQ(format_iso8601_ms(951782399999), "2000-02-28T23:59:59.999Z");
  EXPECT_EQ(format_iso8601_ms(951868800000), "2000-03-01T00:00:00.000Z");
  EXPECT_EQ(format_iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_iso8601_ms(253402300800000), "10000-01-01T00:00:00.000Z");
}

TEST(Headers, ApiExampleOfTheContract) {
  auto ps = PolicySet::defaults();
  Decision d;
  d.results = {result(ps.api, true, 95, 300'000), result(ps.api_tenant, true, 990, 300'000)};
  auto h = rate_limit_headers(d);
  std::vector<Header> want = {
      {"X-RateLimit-Limit", "100"},
      {"X-RateLimit-Remaining", "95"},
      {"X-RateLimit-Reset", "2024-01-01T12:00:00.000Z"},
      {"X-RateLimit-Window", "900000"},
      {"RateLimit-Policy", "\"api\";q=100;w=900, \"api-tenant\";q=1000;w=900"},
      {"RateLimit", "\"api\";r=95;t=300, \"api-tenant\";r=990;t=300"},
  };
  EXPECT_EQ(h, want);
}

TEST(Headers, MostRestrictiveAndRetryAfter) {
  auto ps = PolicySet::defaults();
  Decision d;
  // Lowest remaining wins even when listed second.
  d.results = {result(ps.api, true, 50, 1000), result(ps.invoice, true, 2, 59'001)};
  auto h = rate_limit_headers(d);
  EXPECT_EQ(h[0].value, "10");
  EXPECT_EQ(h[1].value, "2");
  EXPECT_EQ(h[3].value, "60000");
  EXPECT_EQ(h[5].value, "\"api\";r=50;t=1, \"invoice\";r=2;t=60");
  // Ties on remaining: the latest reset.
  d.results = {result(ps.api, true, 0, 1000), result(ps.invoice, true, 0, 5000)};
  EXPECT_EQ(d.most_restrictive()->policy->name, "invoice");
  // Rejected: the rejecting limit with the longest wait; Retry-After rounds up, >= 1.
  d.allowed = false;
  d.results = {result(ps.api, true, 40, 1000), result(ps.invoice, false, 0, 19'200, 19'200),
               result(ps.upload, false, 0, 300, 300)};
  EXPECT_EQ(d.most_restrictive()->policy->name, "invoice");
  h = rate_limit_headers(d);
  EXPECT_EQ(h[0].value, "10");
  EXPECT_EQ(h[1].value, "0");
  EXPECT_EQ(h[2].value, format_iso8601_ms(1704110100000 + 19'200));
  ASSERT_EQ(h.size(), 7u);
  EXPECT_EQ(h[6].name, "Retry-After");
  EXPECT_EQ(h[6].value, "20");
  d.results = {result(ps.upload, false, 0, 3, 3)};
  EXPECT_EQ(retry_after_seconds(d), 1);
  d.results = {result(ps.upload, false, 0, 0, 0)};
  EXPECT_EQ(retry_after_seconds(d), 1);
}

TEST(Middleware, ErrorBody) {
  Outcome o;
  o.verdict = Outcome::Verdict::reject;
  o.status = 429;
  o.policy = "api";
  o.retry_after = 20;
  o.message = "Too many requests, retry in 20 s";
  auto b = o.error_body("req-1");
  EXPECT_EQ(b.at("error").as_string(), "rate_limited");
  EXPECT_EQ(b.at("policy").as_string(), "api");
  EXPECT_EQ(b.at("retryAfter").as_int64(), 20);
  EXPECT_EQ(b.at("requestId").as_string(), "req-1");
  EXPECT_EQ(b.at("message").as_string(), "Too many requests, retry in 20 s");
}

TEST(Middleware, CreateRateLimiterValidates) {
  auto spec = create_rate_limiter("custom", 60s, 10, key_by_ip());
  EXPECT_EQ(spec.rules.size(), 1u);
  EXPECT_EQ(spec.rules[0].policy.limit, 10);
  EXPECT_THROW(create_rate_limiter("Bad Name", 60s, 10, key_by_ip()), std::invalid_argument);
  EXPECT_THROW(create_rate_limiter("x", 60s, 0, key_by_ip()), std::invalid_argument);
}
