// End-to-end test support: a private redis-server plus one or more real
// jeweler-server processes with the demo data, and small helpers to call the
// platform API (API.md) and check its conventions. Header-only; every test
// binary of tests/e2e includes it.
#pragma once

#include "http_support.hpp"

#include <jeweler/store/crypto.hpp>

#include <redis_server.hpp>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace e2e {

namespace json = boost::json;
using jeweler::test::Env;
using jeweler::test::HttpResponse;
using jeweler::test::RedisServer;
using jeweler::test::ServerProcess;
using Headers = std::map<std::string, std::string>;
using namespace std::chrono_literals;

inline const std::string kUA = "jeweler-e2e/1.0 (gtest)";

struct DemoUser {
  const char* email;
  const char* password;
};
inline constexpr DemoUser kOwner{"owner@aurum.example", "aurum-owner-pw"};
inline constexpr DemoUser kClerk{"clerk@aurum.example", "aurum-clerk-pw"};
inline constexpr DemoUser kSecure{"secure@aurum.example", "aurum-secure-pw"};
inline constexpr DemoUser kArgent{"owner@argent.example", "argent-owner-pw"};
inline constexpr const char* kTotpSecret = "JBSWY3DPEHPK3PXP";

/// Generous limits so that tests which do not test a limiter never meet one.
inline Env default_env() {
  return {{"COOKIE_SECURE", "false"},
          {"RATE_LIMIT_MAX_REQUESTS", "1000000"},
          {"RATE_LIMIT_TENANT_MAX", "10000000"},
          {"RATE_LIMIT_AUTH_MAX", "100000"},
          {"RATE_LIMIT_PASSWORD_RESET_MAX", "100000"},
          {"RATE_LIMIT_INVOICE_MAX", "100000"},
          {"RATE_LIMIT_UPLOAD_MAX", "100000"},
          {"REDIS_RETRY_BASE_MS", "50"},
          {"REDIS_RETRY_MAX_MS", "300"},
          {"REDIS_COMMAND_TIMEOUT_MS", "500"},
          {"REDIS_CONNECT_TIMEOUT_MS", "500"}};
}

/// A redis-server and jeweler-server process(es) on it, sharing one database.
/// `extra` overrides default_env(); an empty value removes the variable.
class Stack {
 public:
  explicit Stack(const Env& extra = {}, jeweler::test::RedisServerOptions redis_options = {})
      : redis(std::make_unique<RedisServer>(std::move(redis_options))) {
    dir = jeweler::test::make_temp_dir("e2e");
    env = default_env();
    env["REDIS_URL"] = redis->url();
    env["DATABASE_PATH"] = dir + "/jeweler.db";
    for (const auto& [k, v] : extra) {
      if (v.empty())
        env.erase(k);  // "" = use the server's default
      else
        env[k] = v;
    }
    start_server();
  }
  ~Stack() {
    for (auto& s : servers) {
      s->signal(SIGTERM);
      if (!s->wait_exit(10s)) s->signal(SIGKILL);
    }
    servers.clear();
    redis.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  /// Starts one more server process on the same Redis and database.
  std::uint16_t start_server() {
    auto s = std::make_unique<ServerProcess>(env, std::vector<std::string>{"--demo-data"});
    std::uint16_t p = s->wait_listening();
    if (p == 0) ADD_FAILURE() << "jeweler-server did not start:\n" << s->output();
    servers.push_back(std::move(s));
    return p;
  }
  std::uint16_t port(std::size_t i = 0) const { return servers.at(i)->port(); }
  ServerProcess& server(std::size_t i = 0) { return *servers.at(i); }

  std::unique_ptr<RedisServer> redis;
  std::string dir;
  Env env;
  std::vector<std::unique_ptr<ServerProcess>> servers;
};

/// A test suite that shares one Stack built from `Derived::settings()`:
/// started before the suite's first test (then `Derived::after_start()` runs)
/// and stopped after its last. Every test first checks that it started.
template <class Derived>
class SharedStackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack(Derived::settings());
    if (stack_->port() != 0) Derived::after_start();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  static void after_start() {}
  void SetUp() override { ASSERT_NE(port(), 0); }
  static std::uint16_t port() { return stack_->port(); }
  static inline Stack* stack_ = nullptr;
};

/// One request on a fresh connection; a default User-Agent, the Bearer token
/// when given, Content-Type: application/json when there is a body.
inline HttpResponse call(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& token = {}, const std::string& body = {},
                         Headers headers = {}) {
  if (!headers.count("User-Agent")) headers["User-Agent"] = kUA;
  if (headers["User-Agent"].empty()) headers.erase("User-Agent");
  if (!token.empty() && !headers.count("Authorization"))
    headers["Authorization"] = "Bearer " + token;
  if (!body.empty() && !headers.count("Content-Type")) headers["Content-Type"] = "application/json";
  auto r = jeweler::test::http_request(port, method, target, headers, body);
  if (!r) {
    ADD_FAILURE() << "no response to " << method << " " << target;
    return HttpResponse{};
  }
  return *r;
}

inline json::value parse(const HttpResponse& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec) return nullptr;
  return v;
}

/// The JSON object body, or an empty object (with a test failure) when the
/// body is not a JSON object.
inline json::object obj(const HttpResponse& r) {
  auto v = parse(r);
  if (!v.is_object()) {
    ADD_FAILURE() << "not a JSON object (status " << r.status << "): " << r.body;
    return {};
  }
  return v.as_object();
}

inline std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

inline std::int64_t num(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  if (!v) return -1;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return -1;
}

inline double dbl(const json::value& v) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  return -1;
}

inline std::string ser(const json::value& v) {
  return json::serialize(v);
}

/// API.md section 1: {error, message, requestId} (requestId = X-Request-Id),
/// the status that fits and Content-Type: application/json; charset=utf-8.
inline void check_error(const HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json; charset=utf-8") << r.body;
  auto v = parse(r);
  ASSERT_TRUE(v.is_object()) << r.body;
  const auto& o = v.as_object();
  ASSERT_TRUE(o.contains("error") && o.at("error").is_string()) << r.body;
  EXPECT_EQ(o.at("error").as_string(), code) << r.body;
  ASSERT_TRUE(o.contains("message") && o.at("message").is_string()) << r.body;
  EXPECT_FALSE(o.at("message").as_string().empty());
  ASSERT_TRUE(o.contains("requestId") && o.at("requestId").is_string()) << r.body;
  EXPECT_FALSE(o.at("requestId").as_string().empty());
  EXPECT_EQ(o.at("requestId").as_string(), r.header("x-request-id")) << r.body;
}
#define EXPECT_API_ERROR(resp, status, code)      \
  do {                                            \
    SCOPED_TRACE("API error check");              \
    ::e2e::check_error((resp), (status), (code)); \
  } while (0)

struct Login {
  HttpResponse res;
  std::string token;
  json::object session;
  int status() const { return res.status; }
};

inline Login login(std::uint16_t port, const DemoUser& u, Headers headers = {},
                   json::object extra = {}) {
  json::object b = std::move(extra);
  b["email"] = u.email;
  b["password"] = u.password;
  Login l;
  l.res = call(port, "POST", "/api/auth/login", {}, ser(b), std::move(headers));
  if (l.res.status == 200) {
    auto o = obj(l.res);
    l.token = str(o, "token");
    if (auto* s = o.if_contains("session"); s && s->is_object()) l.session = s->as_object();
  }
  return l;
}

/// Logs in and fails the test unless it worked.
inline std::string token_of(std::uint16_t port, const DemoUser& u, Headers headers = {}) {
  auto l = login(port, u, std::move(headers));
  EXPECT_EQ(l.status(), 200) << u.email << ": " << l.res.body;
  return l.token;
}

inline std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string totp_now() {
  return jeweler::store::crypto::totp_code(std::string_view(kTotpSecret), unix_seconds());
}

/// The ids of the first `n` items of a listing (e.g. "/api/customers").
inline std::vector<std::string> ids_of(std::uint16_t port, const std::string& token,
                                       const std::string& listing, int n = 100) {
  auto r = call(port, "GET", listing + "?limit=" + std::to_string(n), token);
  EXPECT_EQ(r.status, 200) << r.body;
  std::vector<std::string> out;
  auto o = obj(r);
  if (auto* items = o.if_contains("items"); items && items->is_array())
    for (const auto& it : items->as_array())
      if (it.is_object()) out.push_back(str(it.as_object(), "id"));
  return out;
}

/// Polls GET `target` until it answers `status` (or the timeout passes).
inline HttpResponse wait_status(std::uint16_t port, const std::string& target, int status,
                                std::chrono::milliseconds timeout, const std::string& token = {}) {
  auto until = std::chrono::steady_clock::now() + timeout;
  HttpResponse r;
  while (std::chrono::steady_clock::now() < until) {
    auto o = jeweler::test::http_request(
        port, "GET", target,
        token.empty() ? Headers{{"User-Agent", kUA}}
                      : Headers{{"User-Agent", kUA}, {"Authorization", "Bearer " + token}});
    if (o) {
      r = *o;
      if (r.status == status) return r;
    }
    std::this_thread::sleep_for(100ms);
  }
  return r;
}

}  // namespace e2e
