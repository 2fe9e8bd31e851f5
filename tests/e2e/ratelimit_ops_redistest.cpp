// End-to-end, issue 15 (API.md section 3): the rate limiter under operations.
// - 15.1: processes with different limits and algorithms on one Redis (a
//   rolling deploy), and a restart with a new limit, never turn into errors:
//   the key names the shape of its value, so no WRONGTYPE; a limiter that
//   errors on every call shows in /health and in /metrics.
// - 15.2: after Redis returns, the first request once the client has
//   reconnected is decided by the limiter through Redis (counted there, not
//   503, not the fallback).
#include "e2e_support.hpp"

#include <iostream>
#include <regex>

using namespace e2e;

namespace {

/// The value of one sample of /metrics (0 when absent): `series` is the
/// name with its labels, e.g. jeweler_ratelimit_errors_total{policy="api"}.
double metric(std::uint16_t port, const std::string& series) {
  auto r = call(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  auto at = r.body.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(r.body.substr(at + series.size() + 2));
}

/// Sum of every sample of a family (all labels).
double metric_sum(std::uint16_t port, const std::string& family) {
  auto r = call(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  std::regex line("(^|\n)" + family + "(\\{[^}]*\\})? ([0-9.e+-]+)");
  double sum = 0;
  for (auto it = std::sregex_iterator(r.body.begin(), r.body.end(), line);
       it != std::sregex_iterator(); ++it)
    sum += std::stod((*it)[3].str());
  return sum;
}

std::string body_of(const DemoUser& u, const char* password = nullptr) {
  return ser(json::object{{"email", u.email}, {"password", password ? password : u.password}});
}

/// /health's "rateLimit" object ({} when missing).
json::object rate_limit_health(const HttpResponse& h) {
  auto o = obj(h);
  auto* rl = o.if_contains("rateLimit");
  if (!rl || !rl->is_object()) {
    ADD_FAILURE() << "no rateLimit in /health: " << h.body;
    return {};
  }
  return rl->as_object();
}

/// A mixed round of limited requests against one server; returns their
/// statuses.
std::vector<int> round_of_requests(std::uint16_t port, const std::string& token, int i) {
  const Headers ip = {{"X-Forwarded-For", "203.0.113.77"}};
  std::vector<int> s;
  s.push_back(call(port, "GET", "/api/auth/me", token, {}, ip).status);  // api per user
  s.push_back(call(port, "GET", "/api/auth/me", {}, {}, ip).status);     // api per IP, 401
  s.push_back(call(port, "POST", "/api/auth/login", {}, body_of(kClerk), ip).status);
  s.push_back(
      call(port, "POST", "/api/auth/login", {}, body_of(kArgent, "wrong-password"), ip).status);
  s.push_back(call(port, "POST", "/api/auth/password-reset", {},
                   ser(json::object{{"email", "r" + std::to_string(i % 3) + "@aurum.example"}}), ip)
                  .status);
  return s;
}

Env limits_a() {
  return {{"TRUST_PROXY", "127.0.0.1"},
          {"RATE_LIMIT_MAX_REQUESTS", "100"},  // sliding log (ZSET)
          {"RATE_LIMIT_TENANT_MAX", "1000"},
          {"RATE_LIMIT_AUTH_MAX", "5"},
          {"RATE_LIMIT_PASSWORD_RESET_MAX", "3"}};
}

/// Another configuration of the same limiters: other budgets and algorithms
/// (a sliding counter with leases, GCRA, a sliding counter).
void use_limits_b(Env& env) {
  env["RATE_LIMIT_MAX_REQUESTS"] = "2000000";  // > 10^6: sliding counter (HASH), leases
  env["RATE_LIMIT_TENANT_MAX"] = "20000000";
  env["RATE_LIMIT_AUTH_MAX"] = "7";
  env["RATE_LIMIT_AUTH_ALGORITHM"] = "gcra";  // STRING
  env["RATE_LIMIT_PASSWORD_RESET_MAX"] = "4";
  env["RATE_LIMIT_PASSWORD_RESET_ALGORITHM"] = "counter";
}

void expect_healthy_limiter(std::uint16_t port) {
  auto h = call(port, "GET", "/health");
  EXPECT_EQ(h.status, 200) << h.body;
  auto rl = rate_limit_health(h);
  EXPECT_EQ(str(rl, "status"), "ok") << h.body;
  EXPECT_EQ(num(rl, "errors"), 0) << h.body;
  EXPECT_EQ(metric_sum(port, "jeweler_ratelimit_errors_total"), 0);
  EXPECT_EQ(metric_sum(port, "jeweler_ratelimit_fallback_total"), 0);  // Redis decided
}

// 15.1: two servers with different limits and algorithms on one Redis,
// requests alternating between them on the same keys: no 5xx, no errors.
TEST(RateLimitOpsE2E, DifferentLimitsAndAlgorithmsOnOneRedisNeverError) {
  Stack st(limits_a());
  ASSERT_NE(st.port(0), 0);
  use_limits_b(st.env);
  ASSERT_NE(st.start_server(), 0);
  auto token = token_of(st.port(0), kOwner);
  ASSERT_FALSE(token.empty());
  std::map<int, int> statuses;
  for (int i = 0; i < 30; ++i)
    for (int s : round_of_requests(st.port(i % 2), token, i)) ++statuses[s];
  std::string figures;
  for (const auto& [s, n] : statuses) figures += " " + std::to_string(s) + ":" + std::to_string(n);
  std::cout << "[ratelimit-ops] two configurations, 150 requests alternating:" << figures
            << std::endl;
  for (const auto& [s, n] : statuses) EXPECT_LT(s, 500) << n << " answers " << s;
  EXPECT_GT(statuses[200], 0);
  EXPECT_GT(statuses[429], 0);  // the limits still apply
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("server " + std::to_string(i));
    expect_healthy_limiter(st.port(i));
  }
}

// 15.1: a restart with a new limit and algorithm (keys of the old one still
// in Redis, with their TTLs): the new process works at once.
TEST(RateLimitOpsE2E, RestartWithANewLimitAndAlgorithm) {
  Stack st(limits_a());
  ASSERT_NE(st.port(0), 0);
  auto token = token_of(st.port(0), kOwner);
  for (int i = 0; i < 3; ++i) round_of_requests(st.port(0), token, i);
  st.servers[0]->signal(SIGTERM);
  ASSERT_TRUE(st.servers[0]->wait_exit(20s));
  st.servers.clear();
  use_limits_b(st.env);
  ASSERT_NE(st.start_server(), 0);
  int fivexx = 0;
  for (int i = 0; i < 6; ++i)
    for (int s : round_of_requests(st.port(0), token, i))
      if (s >= 500) ++fivexx;
  EXPECT_EQ(fivexx, 0);
  EXPECT_EQ(call(st.port(0), "POST", "/api/auth/login", {}, body_of(kOwner),
                 {{"X-Forwarded-For", "203.0.113.78"}})
                .status,
            200);
  expect_healthy_limiter(st.port(0));
}

// 15.1: a limiter path that errors on every call (Redis answers, with an
// error) shows in /health (503 degraded, rateLimit "failing") and in
// jeweler_ratelimit_errors_total, and clears with the first success.
TEST(RateLimitOpsE2E, ErrorsOnEveryCallShowInHealthAndMetrics) {
  // GCRA: a script's first write (SET) is refused over maxmemory, so every
  // check fails with an error reply (OOM) while PING works.
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "100"},
               {"RATE_LIMIT_API_ALGORITHM", "gcra"},
               {"RATE_LIMIT_AUTH_ALGORITHM", "gcra"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  // Every thread's client connects just after the port opens: wait for up.
  int health = 0;
  for (int i = 0; i < 200 && health != 200; ++i) {
    health = call(port, "GET", "/health").status;
    if (health != 200) std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(health, 200);
  st.redis->cli({"CONFIG", "SET", "maxmemory", "1"});
  for (int i = 0; i < 5; ++i) {
    auto r = call(port, "GET", "/api/auth/me");  // api fails open: decided by the fallback
    EXPECT_EQ(r.status, 401) << r.body;
  }
  auto h = call(port, "GET", "/health");
  EXPECT_EQ(h.status, 503) << h.body;
  auto ho = obj(h);
  EXPECT_EQ(str(ho, "status"), "degraded");
  ASSERT_TRUE(ho.contains("redis") && ho.at("redis").is_object()) << h.body;
  EXPECT_EQ(str(ho.at("redis").as_object(), "status"), "up");
  auto rl = rate_limit_health(h);
  EXPECT_EQ(str(rl, "status"), "failing") << h.body;
  EXPECT_GE(num(rl, "errors"), 5) << h.body;
  EXPECT_EQ(h.body.find("OOM"), std::string::npos) << "no Redis reply in /health: " << h.body;
  EXPECT_GE(metric(port, "jeweler_ratelimit_errors_total{policy=\"api\"}"), 5);
  // Login fails closed (503), never an unchecked attempt.
  EXPECT_EQ(call(port, "POST", "/api/auth/login", {}, body_of(kClerk)).status, 503);

  st.redis->cli({"CONFIG", "SET", "maxmemory", "0"});
  EXPECT_EQ(call(port, "GET", "/api/auth/me").status, 401);
  h = call(port, "GET", "/health");
  EXPECT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(str(rate_limit_health(h), "status"), "ok") << h.body;
}

// 15.2: Redis killed and restarted: once the client has reconnected (health
// says up), the very next login is decided by the limiter through Redis: it
// is counted there (allowed +1), not refused as unavailable, and the api
// limiter does not use the fallback. One io thread, so /health and the login
// see the same client.
TEST(RateLimitOpsE2E, FirstRequestAfterReconnectGoesThroughRedis) {
  Stack st(Env{{"HTTP_THREADS", "1"}, {"RATE_LIMIT_AUTH_MAX", "5"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  ASSERT_EQ(call(port, "POST", "/api/auth/login", {}, body_of(kClerk)).status, 200);

  st.redis->kill9();
  auto down = wait_status(port, "/health", 503, 10s);
  ASSERT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(call(port, "POST", "/api/auth/login", {}, body_of(kClerk)).status, 503);
  EXPECT_EQ(call(port, "GET", "/api/auth/me").status, 401);  // api: the fallback

  st.redis->start();
  auto up = wait_status(port, "/health", 200, 20s);
  ASSERT_EQ(up.status, 200) << up.body;
  const std::string allowed =
      "jeweler_ratelimit_decisions_total{policy=\"auth-ip\",decision=\"allowed\"}";
  const std::string unavailable =
      "jeweler_ratelimit_decisions_total{policy=\"auth-ip\",decision=\"unavailable\"}";
  const std::string fallback = "jeweler_ratelimit_fallback_total{policy=\"api\"}";
  const double a0 = metric(port, allowed), u0 = metric(port, unavailable),
               f0 = metric(port, fallback);
  EXPECT_GE(u0, 1);
  EXPECT_GE(f0, 1);
  auto r = call(port, "POST", "/api/auth/login", {}, body_of(kClerk));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(metric(port, allowed), a0 + 1);  // through Redis
  EXPECT_EQ(metric(port, unavailable), u0);  // not failed closed
  EXPECT_EQ(metric(port, fallback), f0);     // api not on the fallback
  EXPECT_EQ(str(rate_limit_health(call(port, "GET", "/health")), "status"), "ok");
}

}  // namespace
