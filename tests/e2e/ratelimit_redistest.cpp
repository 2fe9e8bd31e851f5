// End-to-end: rate limiting (API.md section 3) — headers, 429s, the auth and
// password-reset limiters (failures only / per IP and per account), the
// invoice and upload limiters, the tenant budget, a budget shared by two
// server processes, and X-Forwarded-For trust.
#include "e2e_support.hpp"

#include <ctime>
#include <regex>

using namespace e2e;

namespace {

const std::regex kIsoMs(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");

int int_header(const HttpResponse& r, const std::string& name) {
  auto v = r.header(name);
  if (v.empty()) return -1;
  try {
    return std::stoi(v);
  } catch (...) {
    return -2;
  }
}

/// X-RateLimit-* and the IETF fields are present and well-formed.
void check_rate_headers(const HttpResponse& r) {
  EXPECT_GE(int_header(r, "x-ratelimit-limit"), 1) << r.header("x-ratelimit-limit");
  EXPECT_GE(int_header(r, "x-ratelimit-remaining"), 0) << r.header("x-ratelimit-remaining");
  EXPECT_TRUE(std::regex_match(r.header("x-ratelimit-reset"), kIsoMs))
      << "X-RateLimit-Reset: " << r.header("x-ratelimit-reset");
  EXPECT_GE(int_header(r, "x-ratelimit-window"), 1) << r.header("x-ratelimit-window");
  EXPECT_FALSE(r.header("ratelimit-policy").empty());
  EXPECT_FALSE(r.header("ratelimit").empty());
}
#define EXPECT_RATE_HEADERS(r)          \
  do {                                  \
    SCOPED_TRACE("rate-limit headers"); \
    check_rate_headers(r);              \
  } while (0)

/// X-RateLimit-Reset as Unix ms (-1 when not ISO 8601 UTC with ms).
std::int64_t reset_ms(const HttpResponse& r) {
  auto v = r.header("x-ratelimit-reset");
  if (!std::regex_match(v, kIsoMs)) return -1;
  std::tm tm{};
  tm.tm_year = std::stoi(v.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(v.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(v.substr(8, 2));
  tm.tm_hour = std::stoi(v.substr(11, 2));
  tm.tm_min = std::stoi(v.substr(14, 2));
  tm.tm_sec = std::stoi(v.substr(17, 2));
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + std::stoi(v.substr(20, 3));
}

/// 429 rate_limited naming `policy` (any of `policies` when several may).
void check_429(const HttpResponse& r, const std::vector<std::string>& policies) {
  EXPECT_API_ERROR(r, 429, "rate_limited");
  auto o = parse(r);
  ASSERT_TRUE(o.is_object());
  auto p = str(o.as_object(), "policy");
  EXPECT_NE(std::find(policies.begin(), policies.end(), p), policies.end()) << r.body;
  auto ra = num(o.as_object(), "retryAfter");
  EXPECT_GE(ra, 1) << r.body;
  EXPECT_GE(int_header(r, "retry-after"), 1) << r.header("retry-after");
  EXPECT_EQ(int_header(r, "retry-after"), ra) << r.body;
  EXPECT_EQ(r.header("x-ratelimit-remaining"), "0");
}
#define EXPECT_429(r, ...)         \
  do {                             \
    SCOPED_TRACE("429 check");     \
    check_429((r), {__VA_ARGS__}); \
  } while (0)

Headers from(const std::string& ip) {
  return {{"X-Forwarded-For", ip}};
}

std::string login_body(const DemoUser& u) {
  return ser(json::object{{"email", u.email}, {"password", u.password}});
}
std::string bad_login_body(const std::string& email) {
  return ser(json::object{{"email", email}, {"password", "definitely-wrong"}});
}

// --- api limiter headers and 429 ----------------------------------------------------

TEST(RateLimitE2E, HeadersOnEveryApiRouteAnd429) {
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "40"},
               {"RATE_LIMIT_TENANT_MAX", ""},
               {"RATE_LIMIT_WINDOW_MS", ""}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  auto clerk = token_of(port, kClerk);
  auto owner = token_of(port, kOwner);
  ASSERT_FALSE(clerk.empty());
  auto cust = ids_of(port, clerk, "/api/customers", 1);
  ASSERT_FALSE(cust.empty());

  std::vector<std::pair<std::string, std::string>> routes = {{"GET", "/api/auth/me"},
                                                             {"GET", "/api/auth/sessions"},
                                                             {"GET", "/api/auth/permissions"},
                                                             {"GET", "/api/dashboard/kpi"},
                                                             {"GET", "/api/gold-price"},
                                                             {"GET", "/api/customers"},
                                                             {"GET", "/api/customers/" + cust[0]},
                                                             {"GET", "/api/products"},
                                                             {"GET", "/api/invoices"},
                                                             {"GET", "/api/admin/cache/stats"},
                                                             {"POST", "/api/auth/refresh"}};
  int last_remaining = -1;
  for (auto& [m, t] : routes) {
    SCOPED_TRACE(m + " " + t);
    auto r = call(port, m, t, clerk);
    EXPECT_LT(r.status, 500) << r.body;
    EXPECT_RATE_HEADERS(r);
    EXPECT_EQ(r.header("x-ratelimit-limit"), "40");
    EXPECT_EQ(r.header("x-ratelimit-window"), "900000");
    auto pol = r.header("ratelimit-policy");
    EXPECT_NE(pol.find("\"api\";q=40;w=900"), std::string::npos) << pol;
    EXPECT_NE(pol.find("\"api-tenant\";q=400;w=900"), std::string::npos) << pol;
    auto rl = r.header("ratelimit");
    EXPECT_NE(rl.find("\"api\";r="), std::string::npos) << rl;
    EXPECT_NE(rl.find("\"api-tenant\";r="), std::string::npos) << rl;
    EXPECT_NE(rl.find(";t="), std::string::npos) << rl;
    int rem = int_header(r, "x-ratelimit-remaining");
    if (last_remaining >= 0) {
      EXPECT_EQ(rem, last_remaining - 1);
    }
    last_remaining = rem;
  }
  // Anonymous and refused requests are limited too (by IP) and say so.
  auto anon = call(port, "GET", "/api/customers");
  EXPECT_EQ(anon.status, 401);
  EXPECT_RATE_HEADERS(anon);
  auto pr = call(port, "POST", "/api/auth/password-reset", {}, R"({"email":"x@y.example"})");
  EXPECT_EQ(pr.status, 202);
  EXPECT_RATE_HEADERS(pr);
  EXPECT_NE(pr.header("ratelimit-policy").find("password-reset"), std::string::npos)
      << pr.header("ratelimit-policy");
  auto li = call(port, "POST", "/api/auth/login", {}, login_body(kClerk));
  EXPECT_EQ(li.status, 200);
  EXPECT_RATE_HEADERS(li);
  // Health and metrics are not limited.
  for (const char* t : {"/health", "/health/live", "/health/ready"}) {
    auto h = call(port, "GET", t);
    EXPECT_TRUE(h.header("x-ratelimit-limit").empty()) << t;
    EXPECT_TRUE(h.header("ratelimit-policy").empty()) << t;
  }

  // Use up the clerk's budget.
  HttpResponse r;
  int allowed = 0;
  for (int i = 0; i < 60; ++i) {
    r = call(port, "GET", "/api/auth/me", clerk);
    if (r.status == 429) break;
    ASSERT_EQ(r.status, 200) << r.body;
    ++allowed;
  }
  EXPECT_EQ(allowed, last_remaining);
  EXPECT_429(r, "api");
  EXPECT_NE(r.header("ratelimit-policy").find("\"api\""), std::string::npos);
  EXPECT_EQ(r.header("cache-control"), "no-store");
  // Still refused: refusals do not reset anything; other users are not affected.
  EXPECT_EQ(call(port, "GET", "/api/customers", clerk).status, 429);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", owner).status, 200);
}

TEST(RateLimitE2E, SlidingWindowRetryAfterIsHonest) {
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "5"}, {"RATE_LIMIT_WINDOW_MS", "3000"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  auto t = token_of(port, kClerk);  // the login counts against the IP, not the user
  for (int i = 0; i < 5; ++i) {
    auto r = call(port, "GET", "/api/auth/me", t);
    ASSERT_EQ(r.status, 200) << i << r.body;
    EXPECT_EQ(r.header("x-ratelimit-window"), "3000");
    EXPECT_EQ(int_header(r, "x-ratelimit-remaining"), 4 - i);
  }
  auto r = call(port, "GET", "/api/auth/me", t);
  EXPECT_429(r, "api");
  int ra = int_header(r, "retry-after");
  EXPECT_LE(ra, 3);
  // Reset: when the next slot frees (within one window from now).
  auto reset = reset_ms(r);
  EXPECT_GT(reset, unix_ms() - 1000) << r.header("x-ratelimit-reset");
  EXPECT_LE(reset, unix_ms() + 3000 + 1000) << r.header("x-ratelimit-reset");
  auto rl = r.header("ratelimit");
  EXPECT_NE(rl.find("\"api\";r=0;t=" + std::to_string(ra)), std::string::npos)
      << rl << " vs Retry-After " << ra;
  // Refused requests do not consume quota: hammer, then wait Retry-After.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(call(port, "GET", "/api/auth/me", t).status, 429);
  std::this_thread::sleep_for(std::chrono::seconds(std::max(ra, 1)) + 300ms);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", t).status, 200);
  // A full window later everything is free again.
  std::this_thread::sleep_for(3200ms);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(call(port, "GET", "/api/auth/me", t).status, 200) << i;
}

TEST(RateLimitE2E, TenantBudgetIsShared) {
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "100"}, {"RATE_LIMIT_TENANT_MAX", "8"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  auto clerk = token_of(port, kClerk), owner = token_of(port, kOwner),
       argent = token_of(port, kArgent);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(call(port, "GET", "/api/auth/me", clerk).status, 200);
    EXPECT_EQ(call(port, "GET", "/api/auth/me", owner).status, 200);
  }
  auto r = call(port, "GET", "/api/auth/me", clerk);
  EXPECT_429(r, "api-tenant");
  EXPECT_EQ(r.header("x-ratelimit-limit"), "8");  // the most restrictive limiter
  EXPECT_EQ(call(port, "GET", "/api/auth/me", owner).status, 429);
  // Another tenant has its own budget.
  EXPECT_EQ(call(port, "GET", "/api/auth/me", argent).status, 200);
}

TEST(RateLimitE2E, TwoServersShareOneBudget) {
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "6"}});
  auto a = st.port();
  auto b = st.start_server();
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  ASSERT_NE(a, b);
  auto t = token_of(a, kClerk);
  for (int i = 0; i < 6; ++i) {
    auto r = call(i % 2 ? b : a, "GET", "/api/auth/me", t);
    ASSERT_EQ(r.status, 200) << i << r.body;
    EXPECT_EQ(int_header(r, "x-ratelimit-remaining"), 5 - i) << "one count across processes";
  }
  EXPECT_429(call(a, "GET", "/api/auth/me", t), "api");
  EXPECT_429(call(b, "GET", "/api/auth/me", t), "api");
}

TEST(RateLimitE2E, OneRoundTripRequestsSeeChangesMadeElsewhere) {
  // A token a server thread has validated is checked in one Redis round trip
  // with its owner's limits and the route's read (docs/routes.md, "Round
  // trips"). What another process changes meanwhile must be seen at once.
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "60"}});
  auto a = st.port();
  auto b = st.start_server();
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  auto clerk = token_of(a, kClerk);
  auto owner = token_of(a, kOwner);
  HttpResponse r;
  for (int i = 0; i < 6; ++i) {  // every thread of server a validates both tokens
    r = call(a, "GET", "/api/dashboard/kpi", clerk);
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(call(a, "GET", "/api/auth/me", owner).status, 200);
  }
  EXPECT_EQ(r.header("x-cache"), "HIT");
  const int remaining = int_header(r, "x-ratelimit-remaining");

  // The cache cleared on server b: server a misses, then hits again.
  ASSERT_EQ(call(b, "DELETE", "/api/admin/cache", owner).status, 200);
  r = call(a, "GET", "/api/dashboard/kpi", clerk);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-cache"), "MISS");
  EXPECT_EQ(int_header(r, "x-ratelimit-remaining"), remaining - 1);
  EXPECT_EQ(call(a, "GET", "/api/dashboard/kpi", clerk).header("x-cache"), "HIT");

  // Logged out on server b: server a refuses the token at once, limits the
  // request by IP, and shows no data.
  ASSERT_EQ(call(b, "POST", "/api/auth/logout", clerk).status, 204);
  for (int i = 0; i < 3; ++i) {
    r = call(a, "GET", "/api/dashboard/kpi", clerk);
    EXPECT_API_ERROR(r, 401, "unauthorized");
    EXPECT_EQ(r.body.find("todaySales"), std::string::npos) << r.body;
    EXPECT_TRUE(r.header("x-cache").empty());
    EXPECT_RATE_HEADERS(r);
  }
  // The user's budget: the two kpi reads, the logout and this request, plus
  // at most one count per server thread (2) for the first refused request
  // (its limits were checked with the session, for the owner the thread
  // expected).
  auto again = token_of(a, kClerk);
  r = call(a, "GET", "/api/auth/me", again);
  ASSERT_EQ(r.status, 200) << r.body;
  const int now = int_header(r, "x-ratelimit-remaining");
  EXPECT_LE(now, remaining - 4);
  EXPECT_GE(now, remaining - 4 - 2);
}

TEST(RateLimitE2E, ForwardedForIsIgnoredFromUntrustedPeers) {
  Stack st(Env{{"RATE_LIMIT_AUTH_MAX", ""}, {"TRUST_PROXY", ""}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  for (int i = 0; i < 5; ++i) {
    auto r = call(port, "POST", "/api/auth/login", {},
                  bad_login_body("nobody" + std::to_string(i) + "@x.example"),
                  from("10.0.0." + std::to_string(i + 1)));
    EXPECT_EQ(r.status, 401) << r.body;
  }
  // A client cannot pick a fresh key by sending another X-Forwarded-For.
  auto r = call(port, "POST", "/api/auth/login", {}, login_body(kClerk), from("10.0.0.99"));
  EXPECT_429(r, "auth-ip");
}

TEST(RateLimitE2E, MalformedAuthRequestsAreStillLimited) {
  // Every /api route is rate limited (API.md section 3): a junk body is no way
  // around the api limiter, and its answer carries the headers too.
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "4"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  const std::vector<std::pair<std::string, std::string>> junk = {
      {"/api/auth/login", "{not json"},
      {"/api/auth/login", R"({"email":5})"},
      {"/api/auth/password-reset", "[]"},
      {"/api/auth/password-reset", R"({"email":"not-an-email"})"}};
  for (const auto& [t, body] : junk) {
    SCOPED_TRACE(t + " " + body);
    auto r = call(port, "POST", t, {}, body);
    EXPECT_GE(r.status, 400);
    EXPECT_LT(r.status, 500);
    EXPECT_FALSE(r.header("x-ratelimit-limit").empty()) << "no rate-limit headers";
  }
  for (const auto& [t, body] : junk) {
    SCOPED_TRACE(t + " " + body);
    EXPECT_EQ(call(port, "POST", t, {}, body).status, 429) << "api budget (4) not applied";
  }
}

TEST(RateLimitE2E, AnswersBeforeAHandlerChecksItsLimitsAreLimited) {
  // 2fa/verify checks its limits in the handler; without a session it is
  // answered 401 before the handler runs, and a login body over the limit is
  // 413 before it: both still spend the api budget and carry the headers.
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "3"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    auto r = call(port, "POST", "/api/auth/2fa/verify", {}, R"({"code":"123456"})");
    EXPECT_API_ERROR(r, 401, "unauthorized");
    EXPECT_EQ(r.header("x-ratelimit-limit"), "3");
    EXPECT_EQ(r.header("x-ratelimit-remaining"), std::to_string(2 - i));
  }
  EXPECT_API_ERROR(call(port, "POST", "/api/auth/2fa/verify", {}, R"({"code":"123456"})"), 429,
                   "rate_limited");
  Stack other(Env{{"RATE_LIMIT_MAX_REQUESTS", "3"}});
  ASSERT_NE(other.port(), 0);
  auto big = call(other.port(), "POST", "/api/auth/login", {}, std::string(2 << 20, 'x'));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.header("x-ratelimit-limit"), "3");
}

TEST(RateLimitE2E, UnknownApiPathsAreLimitedByIp) {
  // Every /api/** request spends the api budget (API.md section 3), also one
  // that matches no route: 404, 405 and a malformed path carry the headers
  // and are refused once the budget is spent. Paths outside /api are not.
  Stack st(Env{{"RATE_LIMIT_MAX_REQUESTS", "4"}});
  auto port = st.port();
  ASSERT_NE(port, 0);
  const std::vector<std::tuple<std::string, std::string, int>> probes = {
      {"GET", "/api/no-such-route", 404},
      {"POST", "/api/dashboard/kpi", 405},
      {"GET", "/api/customers/%zz", 400},
      {"GET", "/api", 404}};
  for (const auto& [method, target, status] : probes) {
    SCOPED_TRACE(method + " " + target);
    auto r = call(port, method, target);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("x-ratelimit-limit"), "4");
    EXPECT_FALSE(r.header("ratelimit").empty());
  }
  auto r = call(port, "GET", "/api/another-unknown-route");
  EXPECT_API_ERROR(r, 429, "rate_limited");
  EXPECT_FALSE(r.header("retry-after").empty());
  auto outside = call(port, "GET", "/no-such-page");
  EXPECT_EQ(outside.status, 404);
  EXPECT_TRUE(outside.header("x-ratelimit-limit").empty());
}

// --- handler-applied and route limiters with their seed defaults --------------------

class LimitsE2E : public SharedStackTest<LimitsE2E> {
 public:
  static Env settings() {
    return {{"TRUST_PROXY", "127.0.0.1/32"},
            {"RATE_LIMIT_AUTH_MAX", ""},
            {"RATE_LIMIT_PASSWORD_RESET_MAX", ""},
            {"RATE_LIMIT_INVOICE_MAX", ""},
            {"RATE_LIMIT_UPLOAD_MAX", ""}};
  }
};

TEST_F(LimitsE2E, SuccessfulLoginsNeverConsumeTheAuthLimit) {
  for (int i = 0; i < 8; ++i) {
    auto r = call(port(), "POST", "/api/auth/login", {}, login_body(kClerk), from("10.1.0.1"));
    ASSERT_EQ(r.status, 200) << i << r.body;
    EXPECT_RATE_HEADERS(r);
  }
}

TEST_F(LimitsE2E, FiveFailuresThenEvenTheRightPasswordIs429) {
  const auto ip = from("10.2.0.1");
  for (int i = 0; i < 5; ++i) {
    auto r = call(port(), "POST", "/api/auth/login", {}, bad_login_body(kSecure.email), ip);
    EXPECT_API_ERROR(r, 401, "unauthorized");
    EXPECT_RATE_HEADERS(r);
    auto pol = r.header("ratelimit-policy");
    EXPECT_NE(pol.find("\"auth-ip\";q=5;w=900"), std::string::npos) << pol;
    EXPECT_NE(pol.find("\"auth-account\";q=5;w=900"), std::string::npos) << pol;
    EXPECT_EQ(int_header(r, "x-ratelimit-remaining"), 4 - i) << i;
  }
  auto r = call(port(), "POST", "/api/auth/login", {}, login_body(kSecure), ip);
  EXPECT_429(r, "auth-ip", "auth-account");
  EXPECT_TRUE(r.header("set-cookie").empty());
  EXPECT_EQ(obj(r).count("token"), 0u);
}

TEST_F(LimitsE2E, AccountLimitHoldsAcrossIps) {
  for (int i = 0; i < 5; ++i) {
    auto r = call(port(), "POST", "/api/auth/login", {}, bad_login_body(kArgent.email),
                  from("10.3.0." + std::to_string(i + 1)));
    EXPECT_EQ(r.status, 401) << r.body;
  }
  auto r = call(port(), "POST", "/api/auth/login", {}, login_body(kArgent), from("10.3.1.1"));
  EXPECT_429(r, "auth-account");
  // Case does not make another account.
  r = call(port(), "POST", "/api/auth/login", {},
           ser(json::object{{"email", "OWNER@Argent.Example"}, {"password", kArgent.password}}),
           from("10.3.1.2"));
  EXPECT_429(r, "auth-account");
}

TEST_F(LimitsE2E, IpLimitHoldsAcrossAccounts) {
  const auto ip = from("10.4.0.1");
  for (int i = 0; i < 5; ++i) {
    auto r = call(port(), "POST", "/api/auth/login", {},
                  bad_login_body("ghost" + std::to_string(i) + "@aurum.example"), ip);
    EXPECT_EQ(r.status, 401) << r.body;
  }
  EXPECT_429(call(port(), "POST", "/api/auth/login", {}, login_body(kOwner), ip), "auth-ip");
  // The owner account itself is fine from elsewhere.
  EXPECT_EQ(
      call(port(), "POST", "/api/auth/login", {}, login_body(kOwner), from("10.4.0.2")).status,
      200);
}

TEST_F(LimitsE2E, PasswordResetLimitedPerIpAndPerEmail) {
  const std::string t = "/api/auth/password-reset";
  auto body = [](const std::string& e) { return ser(json::object{{"email", e}}); };
  for (int i = 0; i < 3; ++i) {
    auto r = call(port(), "POST", t, {}, body("r" + std::to_string(i) + "@aurum.example"),
                  from("10.5.0.1"));
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_RATE_HEADERS(r);
  }
  auto r = call(port(), "POST", t, {}, body("r9@aurum.example"), from("10.5.0.1"));
  EXPECT_429(r, "password-reset-ip");

  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(
        call(port(), "POST", t, {}, body(kClerk.email), from("10.6.0." + std::to_string(i + 1)))
            .status,
        202);
  r = call(port(), "POST", t, {}, body(kClerk.email), from("10.6.1.1"));
  EXPECT_429(r, "password-reset-email");
  // Not an enumeration oracle: an unknown address is limited the same way.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(call(port(), "POST", t, {}, body("nobody@nowhere.example"),
                   from("10.7.0." + std::to_string(i + 1)))
                  .status,
              202);
  EXPECT_429(call(port(), "POST", t, {}, body("nobody@nowhere.example"), from("10.7.1.1")),
             "password-reset-email");
}

TEST_F(LimitsE2E, InvoiceLimiterOnPostInvoices) {
  auto t = token_of(port(), kClerk, from("10.8.0.1"));
  auto other = token_of(port(), kOwner, from("10.8.0.2"));
  // Refused bodies still count (the limiter admits before the handler reads).
  const std::string body = R"({"customerId":"cus_doesnotexist","items":[]})";
  for (int i = 0; i < 10; ++i) {
    auto r = call(port(), "POST", "/api/invoices", t, body, from("10.8.0.1"));
    EXPECT_EQ(r.status / 100, 4) << r.body;
    EXPECT_NE(r.status, 429) << i;
    auto pol = r.header("ratelimit-policy");
    EXPECT_NE(pol.find("\"invoice\";q=10;w=60"), std::string::npos) << pol;
    EXPECT_NE(pol.find("\"api\""), std::string::npos) << pol;
  }
  auto r = call(port(), "POST", "/api/invoices", t, body, from("10.8.0.1"));
  EXPECT_429(r, "invoice");
  EXPECT_EQ(r.header("x-ratelimit-limit"), "10");
  // Reads are not invoice-limited; other users have their own budget.
  EXPECT_EQ(call(port(), "GET", "/api/invoices?limit=1", t, {}, from("10.8.0.1")).status, 200);
  EXPECT_NE(call(port(), "POST", "/api/invoices", other, body, from("10.8.0.2")).status, 429);
}

TEST_F(LimitsE2E, UploadLimiterOnPostUploads) {
  auto t = token_of(port(), kClerk, from("10.9.0.1"));
  Headers h = from("10.9.0.1");
  h["X-Filename"] = "note.txt";
  h["Content-Type"] = "text/plain";
  for (int i = 0; i < 20; ++i) {
    auto r = call(port(), "POST", "/api/uploads", t, "file " + std::to_string(i), h);
    ASSERT_EQ(r.status, 201) << i << r.body;
    auto pol = r.header("ratelimit-policy");
    EXPECT_NE(pol.find("\"upload\";q=20;w=60"), std::string::npos) << pol;
  }
  EXPECT_429(call(port(), "POST", "/api/uploads", t, "one too many", h), "upload");
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", t, {}, from("10.9.0.1")).status, 200);
}

}  // namespace
