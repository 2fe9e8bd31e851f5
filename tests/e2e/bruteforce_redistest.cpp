// End-to-end, issue 14.1 (API.md section 3): the limits that count failures
// hold under concurrency. Two jeweler-server processes share one Redis; 50
// attempts are sent at the same moment (half to each process), from one
// address or from 50 addresses (X-Forwarded-For from a trusted proxy), and
// the credentials the servers actually evaluated are counted black-box on
// /metrics (jeweler_auth_evaluations_total{kind}), summed over both
// processes: never more than the limit per window and key. The figures are
// printed ("[bruteforce] ...") for docs/SECURITY.md.
#include "e2e_support.hpp"

#include <iostream>
#include <latch>
#include <regex>
#include <set>
#include <thread>

using namespace e2e;

namespace {

constexpr int kAttempts = 50;
constexpr int kAuthMax = 5;
constexpr int kResetMax = 3;

Env settings() {
  return {{"TRUST_PROXY", "127.0.0.1"},
          {"RATE_LIMIT_AUTH_MAX", std::to_string(kAuthMax)},
          {"RATE_LIMIT_PASSWORD_RESET_MAX", std::to_string(kResetMax)}};
}

/// jeweler_auth_evaluations_total{kind="<kind>"} of one server.
std::int64_t evaluations(std::uint16_t port, const std::string& kind) {
  auto r = call(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  std::regex line("(^|\n)jeweler_auth_evaluations_total\\{kind=\"" + kind + "\"\\} ([0-9.e+]+)");
  std::smatch m;
  if (!std::regex_search(r.body, m, line)) {
    ADD_FAILURE() << "no jeweler_auth_evaluations_total{kind=\"" << kind << "\"} in /metrics";
    return 0;
  }
  return static_cast<std::int64_t>(std::stod(m[2].str()));
}

/// Summed over every server process of the stack.
std::int64_t evaluations(Stack& st, const std::string& kind) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < st.servers.size(); ++i) n += evaluations(st.port(i), kind);
  return n;
}

struct Attempt {
  std::string target;
  std::string body;
  Headers headers;
};

/// Sends every attempt at the same moment (one thread each, released
/// together), alternating between the servers; the answers in order.
std::vector<HttpResponse> burst(Stack& st, const std::vector<Attempt>& attempts) {
  std::vector<HttpResponse> out(attempts.size());
  std::latch go(static_cast<std::ptrdiff_t>(attempts.size()));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < attempts.size(); ++i)
    threads.emplace_back([&, i] {
      Headers h = attempts[i].headers;
      h["User-Agent"] = kUA;
      h["Content-Type"] = "application/json";
      const std::uint16_t port = st.port(i % st.servers.size());
      go.arrive_and_wait();
      auto r = jeweler::test::http_request(port, "POST", attempts[i].target, h, attempts[i].body);
      if (r) out[i] = *r;
    });
  for (auto& t : threads) t.join();
  return out;
}

struct Figures {
  std::string name;
  int sent = 0;
  std::int64_t evaluated = 0;
  std::map<int, int> statuses;
};

void report(const Figures& f) {
  std::string s;
  for (const auto& [status, n] : f.statuses)
    s += (s.empty() ? "" : ", ") + std::to_string(status) + ": " + std::to_string(n);
  std::cout << "[bruteforce] " << f.name << ": sent=" << f.sent << " evaluated=" << f.evaluated
            << " statuses={" << s << "}" << std::endl;
}

/// Every answer is the failure status or a 429 with correct headers; the
/// number of failures equals the evaluations counted by the servers.
Figures check_burst(const std::string& name, const std::vector<HttpResponse>& rs, int fail_status,
                    std::int64_t evaluated, int limit, const std::vector<std::string>& policies) {
  Figures f;
  f.name = name;
  f.sent = static_cast<int>(rs.size());
  f.evaluated = evaluated;
  int failures = 0;
  for (const auto& r : rs) {
    ++f.statuses[r.status];
    if (r.status == fail_status) {
      ++failures;
      continue;
    }
    if (r.status == 503) {  // overload (a limiter or store deadline): refused, not evaluated
      EXPECT_EQ(str(obj(r), "error"), "service_unavailable") << r.body;
      EXPECT_FALSE(r.header("retry-after").empty());
      continue;
    }
    EXPECT_EQ(r.status, 429) << name << ": " << r.body;
    if (r.status != 429) continue;
    auto o = obj(r);
    auto p = str(o, "policy");
    EXPECT_NE(std::find(policies.begin(), policies.end(), p), policies.end()) << r.body;
    EXPECT_EQ(str(o, "error"), "rate_limited");
    EXPECT_GE(num(o, "retryAfter"), 1);
    EXPECT_EQ(r.header("retry-after"), std::to_string(num(o, "retryAfter")));
    EXPECT_EQ(r.header("x-ratelimit-remaining"), "0") << name;
    EXPECT_EQ(r.header("x-ratelimit-limit"), std::to_string(limit)) << name;
    EXPECT_FALSE(r.header("ratelimit-policy").empty());
  }
  report(f);
  EXPECT_LE(evaluated, limit) << name;
  EXPECT_GE(evaluated, 1) << name;  // the limit admits attempts at all
  if (fail_status != 202) {
    EXPECT_EQ(failures, evaluated) << name;
  }
  return f;
}

std::string wrong_login(const std::string& email) {
  return ser(json::object{{"email", email}, {"password", "wrong-password"}});
}

/// A 6-digit code that is none of the codes accepted around now.
std::string wrong_code() {
  std::set<std::string> valid;
  for (int d = -90; d <= 120; d += 30)
    valid.insert(
        jeweler::store::crypto::totp_code(std::string_view(kTotpSecret), unix_seconds() + d));
  for (int c = 0;; ++c) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06d", c);
    if (!valid.count(buf)) return buf;
  }
}

class BruteForce : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack(settings());
    if (stack_->port() != 0) stack_->start_server();  // a second process on the same Redis
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(stack_->port(0), 0);
    ASSERT_EQ(stack_->servers.size(), 2u);
    ASSERT_NE(stack_->port(1), 0);
    stack_->redis->flushall();  // every case starts with fresh budgets
  }
  static inline Stack* stack_ = nullptr;
};

TEST_F(BruteForce, ConcurrentWrongPasswordsFromOneAddress) {
  Stack& st = *stack_;
  std::vector<Attempt> a(
      kAttempts,
      Attempt{"/api/auth/login", wrong_login(kClerk.email), {{"X-Forwarded-For", "203.0.113.10"}}});
  auto before = evaluations(st, "password");
  auto rs = burst(st, a);
  auto ev = evaluations(st, "password") - before;
  check_burst("login, 50 wrong passwords, one address, 2 processes", rs, 401, ev, kAuthMax,
              {"auth-ip", "auth-account"});
  // Every evaluated attempt failed and keeps its unit. When the burst used
  // the whole limit, even the right password is refused now; when fewer were
  // admitted (two scopes under contention: an attempt one scope admitted and
  // the other refused hands its unit back only after the others were
  // refused), the right password is still admitted.
  auto r = call(st.port(), "POST", "/api/auth/login", {},
                ser(json::object{{"email", kClerk.email}, {"password", kClerk.password}}),
                {{"X-Forwarded-For", "203.0.113.10"}});
  EXPECT_EQ(r.status, ev == kAuthMax ? 429 : 200) << r.body;
}

TEST_F(BruteForce, ConcurrentWrongPasswordsFromManyAddresses) {
  Stack& st = *stack_;
  std::vector<Attempt> a;
  for (int i = 0; i < kAttempts; ++i)
    a.push_back({"/api/auth/login",
                 wrong_login(kArgent.email),
                 {{"X-Forwarded-For", "198.51.100." + std::to_string(i + 1)}}});
  auto before = evaluations(st, "password");
  auto rs = burst(st, a);
  auto ev = evaluations(st, "password") - before;
  check_burst("login, 50 wrong passwords, 50 addresses, one account, 2 processes", rs, 401, ev,
              kAuthMax, {"auth-account"});
}

TEST_F(BruteForce, ConcurrentWrongTotpCodesOnOnePendingSession) {
  Stack& st = *stack_;
  for (int spread = 0; spread < 2; ++spread) {
    if (spread) st.redis->flushall();
    auto l = login(st.port(), kSecure, {{"X-Forwarded-For", "192.0.2.1"}});
    ASSERT_EQ(l.status(), 200) << l.res.body;
    ASSERT_FALSE(l.token.empty());
    const std::string body = ser(json::object{{"code", wrong_code()}});
    std::vector<Attempt> a;
    for (int i = 0; i < kAttempts; ++i)
      a.push_back({"/api/auth/2fa/verify",
                   body,
                   {{"Authorization", "Bearer " + l.token},
                    {"X-Forwarded-For",
                     spread ? "198.51.100." + std::to_string(i + 1) : std::string("192.0.2.1")}}});
    auto before = evaluations(st, "totp");
    auto rs = burst(st, a);
    auto ev = evaluations(st, "totp") - before;
    check_burst(spread ? "2fa, 50 wrong codes, 50 addresses, one pending session, 2 processes"
                       : "2fa, 50 wrong codes, one address, one pending session, 2 processes",
                rs, 401, ev, kAuthMax, {"auth-ip", "auth-account"});
  }
}

TEST_F(BruteForce, ConcurrentPasswordResetsCountEveryRequest) {
  Stack& st = *stack_;
  struct Case {
    const char* name;
    bool many_ips, many_emails;
    std::vector<std::string> policies;
  };
  const std::vector<Case> cases = {
      {"password reset, 50 requests, one address, one email, 2 processes",
       false,
       false,
       {"password-reset-ip", "password-reset-email"}},
      {"password reset, 50 requests, 50 addresses, one email, 2 processes",
       true,
       false,
       {"password-reset-email"}},
      {"password reset, 50 requests, one address, 50 emails, 2 processes",
       false,
       true,
       {"password-reset-ip"}}};
  for (const auto& c : cases) {
    st.redis->flushall();
    std::vector<Attempt> a;
    for (int i = 0; i < kAttempts; ++i) {
      std::string email =
          c.many_emails ? "who" + std::to_string(i) + "@aurum.example" : kClerk.email;
      std::string ip = c.many_ips ? "198.51.100." + std::to_string(i + 1) : "203.0.113.20";
      a.push_back({"/api/auth/password-reset",
                   ser(json::object{{"email", email}}),
                   {{"X-Forwarded-For", ip}}});
    }
    auto before = evaluations(st, "password_reset");
    auto rs = burst(st, a);
    auto ev = evaluations(st, "password_reset") - before;
    auto f = check_burst(c.name, rs, 202, ev, kResetMax, c.policies);
    EXPECT_EQ(f.statuses[202], ev) << c.name;  // each accepted request is one evaluation
  }
}

TEST_F(BruteForce, RightPasswordWithinTheLimitWorksAndSuccessGivesItsUnitBack) {
  Stack& st = *stack_;
  const Headers ip = {{"X-Forwarded-For", "203.0.113.30"}};
  const std::string right =
      ser(json::object{{"email", kClerk.email}, {"password", kClerk.password}});
  // Four wrong passwords at once: all evaluated (within the limit of 5).
  std::vector<Attempt> a(kAuthMax - 1, Attempt{"/api/auth/login", wrong_login(kClerk.email), ip});
  auto before = evaluations(st, "password");
  auto rs = burst(st, a);
  for (const auto& r : rs) EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(evaluations(st, "password") - before, kAuthMax - 1);
  // The right password still works, on either process, as often as wanted:
  // a success gives its unit back.
  for (int i = 0; i < 6; ++i) {
    auto r = call(st.port(i % 2), "POST", "/api/auth/login", {}, right, ip);
    ASSERT_EQ(r.status, 200) << i << ": " << r.body;
    EXPECT_EQ(r.header("x-ratelimit-remaining"), "1") << i;  // 4 failures held, none by successes
  }
  // One more wrong attempt is still admitted (evaluated, 401) ...
  auto r = call(st.port(1), "POST", "/api/auth/login", {}, wrong_login(kClerk.email), ip);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.header("x-ratelimit-remaining"), "0");
  // ... and then the limit holds, even for the right password.
  r = call(st.port(0), "POST", "/api/auth/login", {}, right, ip);
  EXPECT_EQ(r.status, 429) << r.body;
  std::cout << "[bruteforce] login, 4 wrong then 6 right then 1 wrong then right: evaluated="
            << evaluations(st, "password") - before << " (4 + 6 + 1; the last refused)"
            << std::endl;
  EXPECT_EQ(evaluations(st, "password") - before, kAuthMax - 1 + 6 + 1);

  // Concurrent successful logins hold a unit only while they are evaluated:
  // afterwards nothing stays counted.
  st.redis->flushall();
  const Headers ip2 = {{"X-Forwarded-For", "203.0.113.31"}};
  std::vector<Attempt> ok(kAuthMax, Attempt{"/api/auth/login", right, ip2});
  for (const auto& x : burst(st, ok)) EXPECT_EQ(x.status, 200) << x.body;
  for (int i = 0; i < kAuthMax; ++i)
    EXPECT_EQ(
        call(st.port(i % 2), "POST", "/api/auth/login", {}, wrong_login(kClerk.email), ip2).status,
        401)
        << i;
  EXPECT_EQ(call(st.port(0), "POST", "/api/auth/login", {}, wrong_login(kClerk.email), ip2).status,
            429);
}

TEST_F(BruteForce, MetricsExposeEvaluationsInPrometheusFormat) {
  call(stack_->port(), "POST", "/api/auth/password-reset", {},
       ser(json::object{{"email", kClerk.email}}));  // a limiter has run
  auto r = call(stack_->port(), "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("# HELP jeweler_auth_evaluations_total "), std::string::npos);
  EXPECT_NE(r.body.find("# TYPE jeweler_auth_evaluations_total counter\n"), std::string::npos);
  for (const char* kind : {"password", "totp", "password_reset"})
    EXPECT_NE(r.body.find(std::string("jeweler_auth_evaluations_total{kind=\"") + kind + "\"} "),
              std::string::npos)
        << kind;
  EXPECT_NE(r.body.find("# TYPE jeweler_ratelimit_errors_total counter\n"), std::string::npos);
}

}  // namespace
