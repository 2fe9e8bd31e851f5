// End-to-end: Redis going away under a running jeweler-server (API.md
// section 5): session routes answer 503 + Retry-After without hanging, health
// turns degraded, auth and password reset fail closed, the api limiter fails
// open onto the in-process fallback, and everything (the same token included)
// works again when Redis returns with its data, with no server restart.
#include "e2e_support.hpp"

using namespace e2e;

namespace {

/// Generous "did not hang" bound (the machine is noisy, sanitizers are slow).
constexpr auto kNoHang = 10s;

void expect_503(const HttpResponse& r) {
  EXPECT_API_ERROR(r, 503, "service_unavailable");
  EXPECT_FALSE(r.header("retry-after").empty()) << r.body;
  if (!r.header("retry-after").empty()) {
    EXPECT_GE(std::stoi(r.header("retry-after")), 1);
  }
  // No Redis internals in the answer.
  EXPECT_EQ(r.body.find("ECONNREFUSED"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("Connection refused"), std::string::npos) << r.body;
}

HttpResponse timed(std::uint16_t port, const std::string& m, const std::string& t,
                   const std::string& token = {}, const std::string& body = {}) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = call(port, m, t, token, body);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kNoHang) << m << " " << t << " hung";
  return r;
}

TEST(ResilienceE2E, RedisKilledThenRestartedWithItsData) {
  Stack st;
  auto port = st.port();
  ASSERT_NE(port, 0);
  auto owner = token_of(port, kOwner);
  auto clerk = token_of(port, kClerk);
  ASSERT_FALSE(owner.empty());
  auto cust = ids_of(port, clerk, "/api/customers", 1);
  ASSERT_FALSE(cust.empty());
  ASSERT_EQ(call(port, "GET", "/api/customers/" + cust[0], clerk).status, 200);
  ASSERT_EQ(wait_status(port, "/health", 200, 10s).status, 200);

  st.redis->kill9();
  auto h = wait_status(port, "/health", 503, kNoHang);
  ASSERT_EQ(h.status, 503) << h.body;
  auto ho = obj(h);
  EXPECT_EQ(str(ho, "status"), "degraded");
  ASSERT_TRUE(ho.contains("redis") && ho.at("redis").is_object()) << h.body;
  EXPECT_EQ(str(ho.at("redis").as_object(), "status"), "down");
  EXPECT_EQ(call(port, "GET", "/health/live").status, 200);
  EXPECT_EQ(call(port, "GET", "/health/ready").status, 503);

  for (auto [m, t] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/api/auth/me"},
                                                        {"GET", "/api/auth/sessions"},
                                                        {"POST", "/api/auth/refresh"},
                                                        {"POST", "/api/auth/logout"},
                                                        {"GET", "/api/dashboard/kpi"},
                                                        {"GET", "/api/customers"},
                                                        {"GET", "/api/customers/" + cust[0]},
                                                        {"GET", "/api/admin/cache/stats"}}) {
    SCOPED_TRACE(m + " " + t);
    auto r = timed(port, m, t, owner);
    expect_503(r);
    // Limited by IP on the in-process fallback: the headers are still there.
    EXPECT_FALSE(r.header("x-ratelimit-limit").empty()) << r.body;
    EXPECT_FALSE(r.header("ratelimit").empty()) << r.body;
    EXPECT_EQ(r.header("cache-control"), "no-store");
  }
  // auth and passwordReset fail closed.
  {
    SCOPED_TRACE("login");
    expect_503(timed(port, "POST", "/api/auth/login", {},
                     ser(json::object{{"email", kClerk.email}, {"password", kClerk.password}})));
  }
  {
    SCOPED_TRACE("password reset");
    expect_503(timed(port, "POST", "/api/auth/password-reset", {}, R"({"email":"a@b.example"})"));
  }
  EXPECT_TRUE(st.server().running());

  st.redis->start();  // same port, same data (AOF)
  auto up = wait_status(port, "/health", 200, 20s);
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(str(obj(up).at("redis").as_object(), "status"), "up");
  EXPECT_EQ(wait_status(port, "/health/ready", 200, 10s).status, 200);
  // The very same tokens work again: sessions survived in Redis.
  auto me = wait_status(port, "/api/auth/me", 200, 10s, owner);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(str(obj(me).at("session").as_object(), "email"), kOwner.email);
  EXPECT_EQ(call(port, "GET", "/api/customers/" + cust[0], clerk).status, 200);
  EXPECT_EQ(call(port, "GET", "/api/dashboard/kpi", clerk).status, 200);
  EXPECT_EQ(login(port, kArgent).status(), 200);
  // The server never restarted.
  EXPECT_TRUE(st.server().running());
}

TEST(ResilienceE2E, FrozenRedisDoesNotHangRequests) {
  Stack st;
  auto port = st.port();
  ASSERT_NE(port, 0);
  auto t = token_of(port, kClerk);
  ASSERT_EQ(call(port, "GET", "/api/auth/me", t).status, 200);
  st.redis->pause();
  auto r = timed(port, "GET", "/api/auth/me", t);
  EXPECT_EQ(r.status, 503) << r.body;
  r = timed(port, "GET", "/api/dashboard/kpi", t);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(call(port, "GET", "/health/live").status, 200);
  st.redis->resume();
  auto back = wait_status(port, "/api/auth/me", 200, 20s, t);
  EXPECT_EQ(back.status, 200) << back.body;
}

TEST(ResilienceE2E, ApiLimiterFailsOpenOntoTheFallback) {
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "5"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  st.redis->kill9();
  ASSERT_EQ(wait_status(port, "/health", 503, kNoHang).status, 503);
  // Anonymous requests need no session: the limiter decides in process.
  for (int i = 0; i < 5; ++i) {
    auto r = timed(port, "GET", "/api/customers");
    EXPECT_API_ERROR(r, 401, "unauthorized");
    EXPECT_FALSE(r.header("x-ratelimit-limit").empty());
  }
  auto r = timed(port, "GET", "/api/customers");
  EXPECT_API_ERROR(r, 429, "rate_limited");
  EXPECT_EQ(str(obj(r), "policy"), "api");
  EXPECT_FALSE(r.header("retry-after").empty());
}

}  // namespace
