// Rate limiting against a real redis-server started by the harness.
#include <jeweler/core/errc.hpp>
#include <jeweler/ratelimit/headers.hpp>
#include <jeweler/ratelimit/limiter.hpp>
#include <jeweler/ratelimit/middleware.hpp>

#include "co_test.hpp"
#include "redis_server.hpp"
#include "timelines.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>

using namespace jeweler;
using namespace jeweler::ratelimit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using jeweler::test::co_sleep;
using jeweler::test::RedisServer;
using jeweler::test::run_co;

namespace {

RedisServer& shared_server() {
  static RedisServer server(jeweler::test::RedisServerOptions{.appendonly = false});
  return server;
}

struct Env {
  std::unique_ptr<redis::Client> client;
  std::shared_ptr<Stats> stats = std::make_shared<Stats>();
  std::shared_ptr<Fallback> fallback = std::make_shared<Fallback>();
  std::unique_ptr<Limiter> limiter;

  static asio::awaitable<std::unique_ptr<Env>> make(asio::io_context& io, redis::Config cfg,
                                                    std::shared_ptr<Stats> stats = nullptr,
                                                    std::shared_ptr<Fallback> fallback = nullptr,
                                                    LimiterOptions options = {}) {
    auto e = std::make_unique<Env>();
    if (stats) e->stats = stats;
    if (fallback) e->fallback = fallback;
    e->client = redis::make_client(io.get_executor(), std::move(cfg));
    if (!co_await e->client->wait_ready(5s)) throw std::runtime_error("redis not ready");
    e->limiter = std::make_unique<Limiter>(*e->client, e->stats, e->fallback, options);
    co_return e;
  }
  asio::awaitable<void> close() { co_await client->shutdown(1s); }
};

Policy policy(const char* name, std::int64_t limit, std::chrono::milliseconds window,
              Algorithm a = Algorithm::sliding_log) {
  Policy p;
  p.name = name;
  p.limit = limit;
  p.window = window;
  p.algorithm = a;
  return p;
}

std::string unique_scope(const char* base) {
  static int n = 0;
  return std::string(base) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

std::string rkey(const Key& k, const Policy& p) {
  return k.redis_key("jeweler:", p);
}

// g++ 12: no braced lists of string literals inside coroutines (see client.hpp).
template <class... A>
std::string cli(const RedisServer& srv, const A&... a) {
  std::vector<std::string> args;
  (args.push_back(std::string(a)), ...);
  return srv.cli(args);
}
template <class... A>
std::vector<std::string> names(const A&... a) {
  std::vector<std::string> v;
  (v.push_back(std::string(a)), ...);
  return v;
}

/// Runs `n` copies of `body(i)` concurrently on this executor and waits for all.
asio::awaitable<void> concurrently(int n, std::function<asio::awaitable<void>(int)> body) {
  auto ex = co_await asio::this_coro::executor;
  int left = n;
  asio::steady_timer done(ex, asio::steady_timer::time_point::max());
  for (int i = 0; i < n; ++i)
    asio::co_spawn(
        ex, [&, i]() -> asio::awaitable<void> { co_await body(i); }(),
        [&](std::exception_ptr e) {
          if (e) ADD_FAILURE() << "concurrent body threw";
          if (--left == 0) done.cancel();
        });
  boost::system::error_code ec;
  co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

/// EVALSHA calls the server has run so far (INFO commandstats).
long evalsha_calls(const RedisServer& srv) {
  auto info = cli(srv, "INFO", "commandstats");
  auto at = info.find("cmdstat_evalsha:calls=");
  if (at == std::string::npos) return 0;
  return std::stol(info.substr(at + std::string("cmdstat_evalsha:calls=").size()));
}

}  // namespace

TEST(RateLimitRedis, ExactCountingAtTheLimitAndRejectedDoNotConsume) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    auto p = policy("exact", 10, 60s);
    auto key = Key::custom(unique_scope("exact"));
    for (int i = 0; i < 10; ++i) {
      auto d = co_await env->limiter->check(p, key);
      CO_ASSERT_TRUE(d);
      EXPECT_TRUE(d->allowed) << i;
      EXPECT_EQ(d->results[0].remaining, 9 - i);
      EXPECT_FALSE(d->results[0].fallback);
    }
    for (int i = 0; i < 20; ++i) {
      auto d = co_await env->limiter->check(p, key);
      CO_ASSERT_TRUE(d);
      EXPECT_FALSE(d->allowed);
      EXPECT_FALSE(d->results[0].consumed);
      EXPECT_EQ(d->results[0].remaining, 0);
      EXPECT_GT(d->results[0].retry_after.count(), 59'000);
      EXPECT_LE(d->results[0].retry_after.count(), 60'000);
    }
    EXPECT_EQ(cli(srv, "ZCARD", rkey(key, p)), "10");
    auto c = env->stats->for_policy("exact");
    EXPECT_EQ(c.allowed, 10u);
    EXPECT_EQ(c.rejected, 20u);
    co_await env->close();
  });
}

TEST(RateLimitRedis, SlidingNotFixedWindowRealTime) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    auto p = policy("slide", 3, 1000ms);
    auto key = Key::custom(unique_scope("slide"));
    auto one = [&]() -> asio::awaitable<Decision> {
      auto d = co_await env->limiter->check(p, key);
      if (!d) throw std::runtime_error("check failed");
      co_return *d;
    };
    EXPECT_TRUE((co_await one()).allowed);  // A ~0
    EXPECT_TRUE((co_await one()).allowed);  // B ~0
    co_await co_sleep(600ms);
    EXPECT_TRUE((co_await one()).allowed);  // C ~600: counts until ~1600
    auto d = co_await one();
    EXPECT_FALSE(d.allowed);
    EXPECT_GT(d.retry_after().count(), 0);
    EXPECT_LE(d.retry_after().count(), 400);     // A expires at ~1000
    co_await co_sleep(d.retry_after() + 150ms);  // ~1150: A and B gone, C still counts
    EXPECT_TRUE((co_await one()).allowed);
    EXPECT_TRUE((co_await one()).allowed);
    // A fixed window starting at 1000 would admit a third here.
    auto last = co_await one();
    EXPECT_FALSE(last.allowed);
    EXPECT_GT(last.retry_after().count(), 0);
    EXPECT_LE(last.retry_after().count(), 1000);
    co_await env->close();
  });
}

TEST(RateLimitRedis, SlidingWindowDeterministicAndResetRetryValues) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    auto p = policy("reset", 2, 10s);
    auto key = Key::custom(unique_scope("reset"));
    const std::int64_t T = 1'704'110'390'000;  // 2024-01-01T11:59:50Z
    auto at = [&](std::int64_t t) -> asio::awaitable<Decision> {
      std::vector<Check> c = {{&p, key}};
      auto d = co_await env->limiter->check_at(std::move(c), t);
      if (!d) throw std::runtime_error("check failed");
      co_return *d;
    };
    auto d = co_await at(T);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.results[0].remaining, 1);
    EXPECT_EQ(d.results[0].reset_after, 10s);
    EXPECT_EQ(d.results[0].now_ms, T);
    d = co_await at(T + 3000);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.results[0].remaining, 0);
    EXPECT_EQ(d.results[0].reset_after, 7s);  // the request of T frees its slot at T+10s
    d = co_await at(T + 4000);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.results[0].retry_after, 6s);
    auto h = rate_limit_headers(d);
    CO_ASSERT_EQ(h.size(), 7u);
    EXPECT_EQ(h[0].value, "2");
    EXPECT_EQ(h[1].value, "0");
    EXPECT_EQ(h[2].value, "2024-01-01T12:00:00.000Z");
    EXPECT_EQ(h[3].value, "10000");
    EXPECT_EQ(h[6].name, "Retry-After");
    EXPECT_EQ(h[6].value, "6");
    d = co_await at(T + 9999);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.results[0].retry_after, 1ms);
    d = co_await at(T + 10'000);  // exactly one window later: the first stopped counting
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.results[0].remaining, 0);
    EXPECT_EQ(d.results[0].reset_after, 3s);
    // Members carry their admission time ("<ms>:<id>"): the reset above was
    // read from them. An entry without it (written by an older version) is
    // read from its score instead.
    auto members = cli(srv, "ZRANGE", rkey(key, p), "0", "-1");
    EXPECT_EQ(members.rfind(std::to_string(T + 3000) + ":", 0), 0u) << members;
    auto legacy = Key::custom(unique_scope("legacy"));
    cli(srv, "ZADD", rkey(legacy, p), std::to_string(T + 1000), "old-format-member");
    std::vector<Check> c = {{&p, legacy}};
    auto l = co_await env->limiter->check_at(std::move(c), T + 4000);
    CO_ASSERT_TRUE(l);
    EXPECT_EQ(l->results[0].remaining, 0);
    EXPECT_EQ(l->results[0].reset_after, 7s);  // the legacy entry of T+1000 frees at T+11s
    co_await env->close();
  });
}

// The sliding counter's hash expires at the end of the window after its own,
// (idx + 2) * window: set when a window starts, kept (not re-sent) by the
// requests counted later in the same window, which only add to 'c'.
TEST(RateLimitRedis, SlidingCounterExpirySetOncePerWindow) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    auto p = policy("ctr-ttl", 100, 10s, Algorithm::sliding_counter);
    auto key = Key::custom(unique_scope("ctr-ttl"));
    const std::int64_t T = 1'704'110'400'000;  // a window start (a multiple of 10 s)
    auto at = [&](std::int64_t t) -> asio::awaitable<Decision> {
      std::vector<Check> c = {{&p, key}};
      auto d = co_await env->limiter->check_at(std::move(c), t);
      if (!d) throw std::runtime_error("check failed");
      co_return *d;
    };
    auto pttl = [&] { return std::stoll(cli(srv, "PTTL", rkey(key, p))); };
    auto field = [&](const char* f) { return cli(srv, "HGET", rkey(key, p), f); };
    auto d = co_await at(T + 1000);  // 19 s before the end of the next window
    EXPECT_EQ(d.results[0].remaining, 99);
    auto first = pttl();
    EXPECT_GT(first, 17'000);
    EXPECT_LE(first, 19'000);
    d = co_await at(T + 6000);  // same window: the expiry stays T + 20 s
    EXPECT_EQ(d.results[0].remaining, 98);
    EXPECT_GT(pttl(), 17'000);
    EXPECT_EQ(field("c"), "2");
    EXPECT_EQ(field("w"), std::to_string(T / 10'000));
    d = co_await at(T + 10'500);  // the next window: c moves to p, expiry T + 30 s
    EXPECT_EQ(field("w"), std::to_string(T / 10'000 + 1));
    EXPECT_EQ(field("c"), "1");
    EXPECT_EQ(field("p"), "2");
    auto next = pttl();
    EXPECT_GT(next, 17'500);
    EXPECT_LE(next, 19'500);
    // The previous window's 2 weigh 95 % at T + 10.5 s: 1.9 + 1 = 2.9 used.
    EXPECT_EQ(d.results[0].remaining, 97);
    co_await env->close();
  });
}

TEST(RateLimitRedis, AlgorithmsAgainstScriptedTimelines) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    for (const auto& tl : jeweler::ratelimit::test::timelines()) {
      std::vector<Check> checks = {{&tl.policy, Key::custom(unique_scope(tl.name))}};
      int i = 0;
      for (const auto& s : tl.steps) {
        auto d = co_await env->limiter->check_at(checks, jeweler::ratelimit::test::kT0 + s.t);
        CO_ASSERT_TRUE(d);
        const auto& r = d->results[0];
        SCOPED_TRACE(std::string(tl.name) + " step " + std::to_string(i++));
        EXPECT_EQ(r.allowed, s.allowed);
        EXPECT_EQ(r.consumed, s.allowed);
        EXPECT_EQ(r.remaining, s.remaining);
        EXPECT_EQ(r.reset_after.count(), s.reset_after);
        EXPECT_EQ(r.retry_after.count(), s.retry_after);
      }
    }
    co_await env->close();
  });
}

TEST(RateLimitRedis, ConcurrentCoroutinesAdmitExactlyTheLimit) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    for (auto algo : {Algorithm::sliding_log, Algorithm::sliding_counter, Algorithm::gcra}) {
      auto p = policy("conc", 50, 3600s, algo);
      auto key = Key::custom(unique_scope("conc"));
      int admitted = 0, errors = 0;
      co_await concurrently(150, [&](int) -> asio::awaitable<void> {
        auto d = co_await env->limiter->check(p, key);
        if (!d)
          ++errors;
        else if (d->allowed)
          ++admitted;
      });
      EXPECT_EQ(errors, 0);
      EXPECT_EQ(admitted, 50) << to_string(algo);
    }
    co_await env->close();
  });
}

TEST(RateLimitRedis, TwoProcessesShareOneBudget) {
  auto& srv = shared_server();
  auto p = policy("procs", 100, 3600s);
  auto key = Key::custom(unique_scope("procs"));
  auto cfg = srv.config();
  int fds[2][2];
  pid_t pids[2];
  for (int k = 0; k < 2; ++k) {
    ASSERT_EQ(::pipe(fds[k]), 0);
    pids[k] = ::fork();
    ASSERT_GE(pids[k], 0);
    if (pids[k] == 0) {
      int admitted = -1;
      try {
        asio::io_context io;
        admitted = 0;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              auto env = co_await Env::make(io, cfg);
              co_await concurrently(150, [&](int) -> asio::awaitable<void> {
                auto d = co_await env->limiter->check(p, key);
                if (d && d->allowed && !d->fallback()) ++admitted;
              });
              co_await env->close();
            },
            [](std::exception_ptr) {});
        io.run();
      } catch (...) {
        admitted = -1;
      }
      auto n = ::write(fds[k][1], &admitted, sizeof admitted);
      ::_exit(n == sizeof admitted ? 0 : 1);
    }
    ::close(fds[k][1]);
  }
  int total = 0;
  for (int k = 0; k < 2; ++k) {
    int admitted = -1;
    ASSERT_EQ(::read(fds[k][0], &admitted, sizeof admitted), static_cast<ssize_t>(sizeof admitted));
    ::close(fds[k][0]);
    int status = 0;
    ::waitpid(pids[k], &status, 0);
    EXPECT_GE(admitted, 0);
    total += admitted;
  }
  EXPECT_EQ(total, 100);  // 300 attempts from two processes
  EXPECT_EQ(cli(srv, "ZCARD", rkey(key, p)), "100");
}

TEST(RateLimitRedis, SkewedClientClocksShareOneBudgetOnServerTime) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    // The second process-like instance has a local clock one hour ahead.
    auto skewed = std::make_shared<Fallback>(100'000, [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch() + 1h)
          .count();
    });
    auto a = co_await Env::make(io, srv.config());
    auto b = co_await Env::make(io, srv.config(), nullptr, skewed);
    auto p = policy("skew", 6, 60s);
    auto key = Key::custom(unique_scope("skew"));
    int admitted = 0;
    std::int64_t now_a = 0, now_b = 0;
    for (int i = 0; i < 10; ++i) {
      auto& env = (i % 2) ? b : a;
      auto d = co_await env->limiter->check(p, key);
      CO_ASSERT_TRUE(d);
      if (d->allowed) ++admitted;
      ((i % 2) ? now_b : now_a) = d->results[0].now_ms;
    }
    EXPECT_EQ(admitted, 6);
    // Both saw the server's clock, not their own.
    EXPECT_LT(std::abs(now_a - now_b), 5'000);
    auto server_time = cli(srv, "TIME");
    auto server_s = std::stoll(server_time.substr(0, server_time.find('\n')));
    EXPECT_LT(std::abs(now_b / 1000 - server_s), 60);
    co_await a->close();
    co_await b->close();
  });
}

TEST(RateLimitRedis, KeysCarryTtlsAndChecksLeaveNothing) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    struct Case {
      Algorithm a;
      std::int64_t max_ttl;
    };
    for (auto c : {Case{Algorithm::sliding_log, 30'000}, Case{Algorithm::sliding_counter, 60'000},
                   Case{Algorithm::gcra, 30'000}}) {
      auto p = policy("ttl", 5, 30s, c.a);
      auto key = Key::custom(unique_scope("ttl"));
      auto d = co_await env->limiter->check(p, key, Mode::check_only);
      CO_ASSERT_TRUE(d);
      EXPECT_TRUE(d->allowed);
      EXPECT_EQ(d->results[0].remaining, 5);
      EXPECT_EQ(cli(srv, "EXISTS", rkey(key, p)), "0") << to_string(c.a);
      d = co_await env->limiter->check(p, key);
      CO_ASSERT_TRUE(d);
      auto ttl = std::stoll(cli(srv, "PTTL", rkey(key, p)));
      EXPECT_GT(ttl, 0) << to_string(c.a);
      EXPECT_LE(ttl, c.max_ttl) << to_string(c.a);
    }
    // A short window: the key is gone by itself shortly after.
    auto p = policy("ttl-short", 5, 200ms);
    auto key = Key::custom(unique_scope("ttl"));
    CO_ASSERT_TRUE(co_await env->limiter->check(p, key));
    EXPECT_EQ(cli(srv, "EXISTS", rkey(key, p)), "1");
    co_await co_sleep(400ms);
    EXPECT_EQ(cli(srv, "EXISTS", rkey(key, p)), "0");
    co_await env->close();
  });
}

TEST(RateLimitRedis, CompositionSameTagAndAcrossTagsConsumesNothingOnReject) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    // Same hash tag: per-user limits and the tenant budget in one script.
    auto user = policy("api", 10, 60s);
    auto tenant = policy("api-tenant", 3, 60s);
    auto t = TenantId::from(unique_scope("tenant"));
    auto u1 = UserId::from("u1"), u2 = UserId::from("u2");
    auto req = [&](const UserId& u) -> asio::awaitable<Decision> {
      std::vector<Check> c = {{&user, Key::user(t, u)}, {&tenant, Key::tenant(t)}};
      auto d = co_await env->limiter->check(std::move(c));
      if (!d) throw std::runtime_error("check failed");
      co_return *d;
    };
    EXPECT_TRUE((co_await req(u1)).allowed);
    EXPECT_TRUE((co_await req(u1)).allowed);
    EXPECT_TRUE((co_await req(u2)).allowed);
    auto d = co_await req(u2);
    EXPECT_FALSE(d.allowed);
    EXPECT_TRUE(d.results[0].allowed);  // the user limit would have admitted
    EXPECT_FALSE(d.results[0].consumed);
    EXPECT_EQ(d.most_restrictive()->policy->name, "api-tenant");
    EXPECT_EQ(cli(srv, "ZCARD", rkey(Key::user(t, u2), user)), "1");
    EXPECT_EQ(cli(srv, "ZCARD", rkey(Key::tenant(t), tenant)), "3");

    // Across tags (two scripts, pipelined): the admitting one is refunded.
    for (auto algo : {Algorithm::sliding_log, Algorithm::sliding_counter, Algorithm::gcra}) {
      auto wide = policy("wide", 5, 60s, algo);
      auto narrow = policy("narrow", 1, 60s);
      auto ip = *Key::ip("198.51.100." + std::to_string(static_cast<int>(algo) + 1));
      auto em = Key::email(unique_scope("user") + "@example.com");
      auto both = [&]() -> asio::awaitable<Decision> {
        std::vector<Check> c = {{&wide, ip}, {&narrow, em}};
        auto d = co_await env->limiter->check(std::move(c));
        if (!d) throw std::runtime_error("check failed");
        co_return *d;
      };
      EXPECT_TRUE((co_await both()).allowed);
      for (int i = 0; i < 3; ++i) {
        auto r = co_await both();
        EXPECT_FALSE(r.allowed);
        EXPECT_FALSE(r.results[0].consumed);
      }
      std::vector<Check> only = {{&wide, ip, Mode::check_only}};
      auto w = co_await env->limiter->check(std::move(only));
      CO_ASSERT_TRUE(w);
      EXPECT_EQ(w->results[0].remaining, 4) << to_string(algo);  // only the first counted
      // A refunded limit that has nothing else counted has no slot to free.
      auto fresh = *Key::ip("192.0.2." + std::to_string(static_cast<int>(algo) + 101));
      std::vector<Check> c2 = {{&wide, fresh}, {&narrow, em}};
      auto f = co_await env->limiter->check(std::move(c2));
      CO_ASSERT_TRUE(f);
      EXPECT_FALSE(f->allowed);
      EXPECT_EQ(f->results[0].remaining, 5) << to_string(algo);
      EXPECT_EQ(f->results[0].reset_after, 0ms) << to_string(algo);
    }
    co_await env->close();
  });
}

TEST(RateLimitRedis, MiddlewareAuthReservesAtAdmissionAndSuccessGivesBack) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    auto cfg = std::make_shared<MiddlewareConfig>(MiddlewareConfig::standard(
        PolicySet::from_env([](std::string_view) { return std::nullopt; }),
        TrustedProxies::parse("10.0.0.0/8")));
    Middleware mw(*env->limiter, cfg);
    auto email = unique_scope("who") + "@aurum.example";
    RequestFacts f{
        .peer = "10.0.0.9", .x_forwarded_for = "6.6.6.6, 203.0.113.50", .account = email};
    EXPECT_EQ(mw.client_ip(f), "203.0.113.50");
    const auto ip_key = rkey(*Key::ip("203.0.113.50"), cfg->limiters.at("auth").rules[0].policy);
    const auto account_key = rkey(Key::email(email), cfg->limiters.at("auth").rules[1].policy);
    // Successful logins: a unit is held while the attempt is evaluated and
    // given back after: nothing stays counted.
    for (int i = 0; i < 8; ++i) {
      auto o = co_await mw.apply(f, names("auth"));
      EXPECT_TRUE(o.allowed());
      EXPECT_EQ(o.status, 200);
      EXPECT_EQ(o.decision.reserved.size(), 2u);  // auth-ip and auth-account
      EXPECT_EQ(cli(srv, "ZCARD", ip_key), "1");  // held during the evaluation
      EXPECT_EQ(cli(srv, "ZCARD", account_key), "1");
      co_await mw.release(o);
      EXPECT_TRUE(o.decision.reserved.empty());
      EXPECT_EQ(cli(srv, "ZCARD", ip_key), "0") << i;
      EXPECT_EQ(cli(srv, "ZCARD", account_key), "0") << i;
    }
    // Five failed attempts keep their units; the sixth is refused before
    // its password could be verified.
    for (int i = 0; i < 5; ++i) {
      auto attempt = co_await mw.apply(f, names("auth"));
      EXPECT_TRUE(attempt.allowed()) << i;
      std::string remaining;
      for (const auto& h : attempt.headers)
        if (h.name == "X-RateLimit-Remaining") remaining = h.value;
      EXPECT_EQ(remaining, std::to_string(4 - i));  // this attempt's unit counted
    }
    auto o = co_await mw.apply(f, names("auth"));
    EXPECT_EQ(o.verdict, Outcome::Verdict::reject);
    EXPECT_EQ(o.status, 429);
    EXPECT_TRUE(o.policy == "auth-ip" || o.policy == "auth-account") << o.policy;
    EXPECT_GE(o.retry_after, 899);
    EXPECT_LE(o.retry_after, 900);
    auto find = [&](std::string_view n) {
      for (const auto& h : o.headers)
        if (h.name == n) return h.value;
      return std::string("<none>");
    };
    EXPECT_EQ(find("Retry-After"), std::to_string(o.retry_after));
    EXPECT_EQ(find("X-RateLimit-Limit"), "5");
    EXPECT_EQ(find("X-RateLimit-Remaining"), "0");
    EXPECT_EQ(find("X-RateLimit-Window"), "900000");
    EXPECT_EQ(find("RateLimit-Policy"), "\"auth-ip\";q=5;w=900, \"auth-account\";q=5;w=900");
    auto body = o.error_body("rid");
    EXPECT_EQ(body.at("error").as_string(), "rate_limited");
    EXPECT_EQ(body.at("retryAfter").as_int64(), o.retry_after);
    // Another IP, same account: still blocked by auth-account.
    RequestFacts g{.peer = "192.0.2.7", .account = email};
    auto o2 = co_await mw.apply(g, names("auth"));
    EXPECT_EQ(o2.status, 429);
    EXPECT_EQ(o2.policy, "auth-account");

    // api: the user when authenticated plus the tenant budget, in the headers.
    RequestFacts a{.peer = "192.0.2.8",
                   .user = UserId::from("clerk"),
                   .tenant = TenantId::from(unique_scope("aurum"))};
    auto api = co_await mw.apply(a, names("api", "invoice"));
    EXPECT_TRUE(api.allowed());
    std::string pol, rl;
    for (const auto& h : api.headers) {
      if (h.name == "RateLimit-Policy") pol = h.value;
      if (h.name == "RateLimit") rl = h.value;
    }
    EXPECT_EQ(pol, "\"api\";q=100;w=900, \"api-tenant\";q=1000;w=900, \"invoice\";q=10;w=60");
    EXPECT_EQ(rl, "\"api\";r=99;t=900, \"api-tenant\";r=999;t=900, \"invoice\";r=9;t=60");
    EXPECT_EQ(api.headers[0].value, "10");  // invoice is the most restrictive
    co_await env->close();
  });
}

// API.md section 3: however many attempts arrive at the same moment, at most
// the limit are admitted (evaluated) per key; a success gives its unit back.
TEST(RateLimitRedis, ConcurrentAuthAttemptsAdmitAtMostTheLimit) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    for (auto algo : {Algorithm::sliding_log, Algorithm::sliding_counter, Algorithm::gcra}) {
      auto ps = PolicySet::from_env([](std::string_view) { return std::nullopt; });
      ps.auth_ip.algorithm = ps.auth_account.algorithm = algo;
      auto cfg = std::make_shared<MiddlewareConfig>(
          MiddlewareConfig::standard(ps, TrustedProxies::parse("10.0.0.0/8")));
      Middleware mw(*env->limiter, cfg);
      const auto email = unique_scope("conc") + "@aurum.example";
      const std::string ip_base = "198.51." + std::to_string(static_cast<int>(algo)) + ".";
      // 50 attempts at once from 50 addresses against one account; every
      // admitted one fails (keeps its unit).
      int admitted = 0, rejected = 0, errors = 0;
      std::vector<std::string> xff(50);
      for (int i = 0; i < 50; ++i) xff[i] = ip_base + std::to_string(i + 1);
      co_await concurrently(50, [&](int i) -> asio::awaitable<void> {
        RequestFacts f{.peer = "10.0.0.1", .x_forwarded_for = xff[i], .account = email};
        auto o = co_await mw.apply(f, names("auth"));
        if (o.status == 429)
          ++rejected;
        else if (o.allowed())
          ++admitted;
        else
          ++errors;
      });
      EXPECT_EQ(errors, 0) << to_string(algo);
      EXPECT_EQ(admitted, 5) << to_string(algo);
      EXPECT_EQ(rejected, 45) << to_string(algo);

      // One address, another account: the IP limit holds; successes hand
      // their units back, so a later wrong attempt is still admitted.
      const auto email2 = unique_scope("conc2") + "@aurum.example";
      const std::string one_ip = ip_base + "200";
      RequestFacts g{.peer = "10.0.0.1", .x_forwarded_for = one_ip, .account = email2};
      std::vector<Outcome> held;
      co_await concurrently(50, [&](int) -> asio::awaitable<void> {
        auto o = co_await mw.apply(g, names("auth"));
        if (o.allowed()) held.push_back(std::move(o));
      });
      EXPECT_EQ(held.size(), 5u) << to_string(algo);
      for (auto& o : held) co_await mw.release(o);  // all five succeeded
      int after = 0;
      for (int i = 0; i < 5; ++i) {
        auto o = co_await mw.apply(g, names("auth"));
        if (o.allowed()) ++after;  // failed: keeps its unit
      }
      EXPECT_EQ(after, 5) << to_string(algo);
      auto sixth = co_await mw.apply(g, names("auth"));
      EXPECT_EQ(sixth.status, 429) << to_string(algo);
    }
    co_await env->close();
  });
}

// Issue 15.1: a key written with another algorithm's shape (another
// configuration, or an older version) is never read with the wrong type.
TEST(RateLimitRedis, OtherAlgorithmsAndForeignValuesNeverError) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    auto key = Key::custom(unique_scope("shape"));
    auto log = policy("shape", 5, 60s, Algorithm::sliding_log);
    auto counter = policy("shape", 5, 60s, Algorithm::sliding_counter);
    auto gcra = policy("shape", 5, 60s, Algorithm::gcra);
    auto big = policy("shape", 2'000'000'000, 60s, Algorithm::sliding_counter);
    big.lease = 64;
    EXPECT_NE(rkey(key, log), rkey(key, counter));
    EXPECT_NE(rkey(key, counter), rkey(key, gcra));
    // Alternating writers of one policy name with different algorithms/limits.
    for (int i = 0; i < 12; ++i) {
      const Policy* p = i % 4 == 0 ? &log : i % 4 == 1 ? &counter : i % 4 == 2 ? &gcra : &big;
      auto d = co_await env->limiter->check(*p, key);
      EXPECT_TRUE(d) << i << ": " << d.error().message();
      if (!d) co_return;
    }
    // A value of the wrong type under the key itself (written by hand or by
    // an older layout) is a fresh window, not an error.
    for (const Policy* p : {&log, &counter, &gcra}) {
      cli(srv, "DEL", rkey(key, *p));
      if (p == &log)
        cli(srv, "SET", rkey(key, *p), "x");
      else
        cli(srv, "ZADD", rkey(key, *p), "1", "m");
      auto d = co_await env->limiter->check(*p, key);
      EXPECT_TRUE(d) << to_string(p->algorithm) << ": " << d.error().message();
      if (!d) co_return;
      EXPECT_TRUE(d->allowed);
      EXPECT_EQ(d->results[0].remaining, 4) << to_string(p->algorithm);
    }
    EXPECT_EQ(env->stats->for_policy("shape").errors, 0u);
    EXPECT_EQ(env->stats->health().status, "ok");
    co_await env->close();
  });
}

// A limiter whose checks fail with an error reply on every call shows it:
// errors counted per policy, health "failing", and back to "ok" after a
// check succeeds.
TEST(RateLimitRedis, ErrorsShowInStatsAndHealth) {
  RedisServer own(jeweler::test::RedisServerOptions{.appendonly = false});
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, own.config());
    // GCRA: its first write (SET) is refused over maxmemory. (A script whose
    // first write is allowed may write on: a sliding log's first write is
    // ZREMRANGEBYSCORE, which frees memory.)
    auto closed = policy("erring", 5, 60s, Algorithm::gcra);
    closed.fail_open = false;
    auto key = Key::custom(unique_scope("err"));
    // Scripts refused by the server: every check gets an error reply (OOM).
    cli(own, "CONFIG", "SET", "maxmemory", "1");
    cli(own, "CONFIG", "SET", "maxmemory-policy", "noeviction");
    for (int i = 0; i < 4; ++i) {
      auto d = co_await env->limiter->check(closed, key);
      CO_ASSERT_FALSE(d);
      EXPECT_FALSE(jeweler::is_unavailable(d.error()));
    }
    EXPECT_EQ(env->stats->for_policy("erring").errors, 4u);
    EXPECT_EQ(env->stats->health().status, "failing");
    EXPECT_FALSE(env->stats->health().healthy());
    EXPECT_NE(env->stats->prometheus().find("jeweler_ratelimit_errors_total{policy=\"erring\"} 4"),
              std::string::npos);
    cli(own, "CONFIG", "SET", "maxmemory", "0");
    auto d = co_await env->limiter->check(closed, key);
    CO_ASSERT_TRUE(d);
    EXPECT_EQ(env->stats->health().status, "ok");
    co_await env->close();
  });
}

TEST(RateLimitRedis, FailOpenFailClosedAndRecovery) {
  RedisServer own(jeweler::test::RedisServerOptions{.appendonly = false});
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, own.config());
    auto open = policy("open", 3, 60s);
    auto closed = policy("closed", 3, 60s);
    closed.fail_open = false;
    auto key = Key::custom(unique_scope("outage"));
    CO_ASSERT_TRUE(co_await env->limiter->check(open, key));
    own.kill9();
    // Fail open: the in-process fallback applies the same policy.
    int admitted = 0;
    for (int i = 0; i < 5; ++i) {
      auto d = co_await env->limiter->check(open, key);
      CO_ASSERT_TRUE(d);
      EXPECT_TRUE(d->fallback());
      if (d->allowed) ++admitted;
    }
    EXPECT_EQ(admitted, 3);
    // Fail closed: an error that means "unavailable", never a decision.
    for (int i = 0; i < 3; ++i) {
      auto d = co_await env->limiter->check(closed, key);
      CO_ASSERT_FALSE(d);
      EXPECT_TRUE(jeweler::is_unavailable(d.error())) << d.error().message();
    }
    // Mixed: one closed policy makes the request fail closed.
    std::vector<Check> mixed = {{&open, key}, {&closed, key}};
    EXPECT_FALSE(co_await env->limiter->check(std::move(mixed)));
    EXPECT_TRUE(env->stats->degraded());
    EXPECT_EQ(env->stats->outages(), 1u);  // one outage, logged once
    EXPECT_EQ(env->stats->for_policy("open").fallback, 5u);
    EXPECT_EQ(env->stats->for_policy("closed").unavailable, 4u);

    own.start();
    bool ready = co_await env->client->wait_ready(10s);
    CO_ASSERT_TRUE(ready);
    auto d = co_await env->limiter->check(closed, key);
    CO_ASSERT_TRUE(d);
    EXPECT_TRUE(d->allowed);
    EXPECT_FALSE(d->fallback());
    EXPECT_FALSE(env->stats->degraded());
    d = co_await env->limiter->check(open, key);
    CO_ASSERT_TRUE(d);
    EXPECT_FALSE(d->fallback());
    EXPECT_NE(
        env->stats->prometheus().find(
            "jeweler_ratelimit_decisions_total{policy=\"closed\",decision=\"unavailable\"} 4"),
        std::string::npos);
    co_await env->close();
  });
}

TEST(RateLimitRedis, NoscriptAfterScriptFlushIsHandled) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await Env::make(io, srv.config());
    auto p = policy("flush", 5, 60s);
    auto a = Key::custom(unique_scope("flush"));
    auto b = Key::custom(unique_scope("flush"));
    CO_ASSERT_TRUE(co_await env->limiter->check(p, a));
    cli(srv, "SCRIPT", "FLUSH");
    auto d = co_await env->limiter->check(p, a);
    CO_ASSERT_TRUE(d);
    EXPECT_EQ(d->results[0].remaining, 3);
    cli(srv, "SCRIPT", "FLUSH");
    std::vector<Check> two = {{&p, a}, {&p, b}};  // pipelined path
    d = co_await env->limiter->check(std::move(two));
    CO_ASSERT_TRUE(d);
    EXPECT_EQ(d->results[0].remaining, 2);
    EXPECT_EQ(d->results[1].remaining, 4);
    co_await env->close();
  });
}

// Policy::lease: units reserved in one script run are admitted by the
// Limiter that holds them without Redis; two holders still share one budget
// exactly, and far fewer scripts run than requests are admitted.
TEST(RateLimitRedis, LeasesShareOneBudgetExactlyWithFewerScriptRuns) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    LimiterOptions slow_ci;
    slow_ci.lease_ttl = 60s;  // no lease may expire mid-test on a slow (sanitizer) run
    auto a = co_await Env::make(io, srv.config(), nullptr, nullptr, slow_ci);
    auto b = co_await Env::make(io, srv.config(), nullptr, nullptr, slow_ci);
    auto p = policy("lease", 3000, 3600s, Algorithm::sliding_counter);
    p.lease = 64;
    p.validate();
    auto key = Key::custom(unique_scope("lease"));
    const long runs_before = evalsha_calls(srv);
    int admitted = 0, rejected_a = 0, rejected_b = 0;
    std::int64_t last_remaining_a = p.limit;
    for (int i = 0; i < 4000; ++i) {
      auto da = co_await a->limiter->check(p, key);
      auto db = co_await b->limiter->check(p, key);
      CO_ASSERT_TRUE(da);
      CO_ASSERT_TRUE(db);
      if (da->allowed) {
        ++admitted;
        // One holder's own requests count down one by one.
        EXPECT_LT(da->results[0].remaining, last_remaining_a);
        last_remaining_a = da->results[0].remaining;
      } else {
        ++rejected_a;
      }
      db->allowed ? ++admitted : ++rejected_b;
      if (!da->allowed && !db->allowed) break;  // spent: every reserved unit used
    }
    EXPECT_EQ(admitted, 3000);  // never more, and no reserved unit is lost
    EXPECT_GT(rejected_a, 0);
    EXPECT_GT(rejected_b, 0);
    EXPECT_EQ(cli(srv, "HGET", rkey(key, p), "c"), "3000");
    const long runs = evalsha_calls(srv) - runs_before;
    EXPECT_LT(runs, 3000 / 4) << "script runs for 3000 admitted requests";
    auto late = co_await a->limiter->check(p, key);  // and nothing is admitted past it
    CO_ASSERT_TRUE(late);
    EXPECT_FALSE(late->allowed);
    EXPECT_EQ(a->stats->policy("lease").allowed.load() + b->stats->policy("lease").allowed.load(),
              3000u);
    co_await a->close();
    co_await b->close();
  });
}

/// Waits, if needed, until the Redis clock is at least `margin` before the end
/// of its current `window` (a lease is not granted near a window's end).
asio::awaitable<void> away_from_window_end(const RedisServer& srv, std::chrono::milliseconds window,
                                           std::chrono::milliseconds margin) {
  auto t = cli(srv, "TIME");  // "seconds\nmicroseconds"
  auto nl = t.find('\n');
  std::int64_t ms = std::stoll(t.substr(0, nl)) * 1000 + std::stoll(t.substr(nl + 1)) / 1000;
  std::int64_t left = window.count() - ms % window.count();
  if (left < margin.count()) co_await co_sleep(std::chrono::milliseconds(left + 20));
}

// A request another scope rejects takes nothing from a lease; the units a
// lease reserved show as remaining to the thread holding them; the ask
// doubles while leases are used up, and what an expired lease did not use is
// given back.
TEST(RateLimitRedis, LeasesConsumeNothingOnRejectAndGiveBackWhatExpired) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    LimiterOptions long_ttl;
    long_ttl.lease_ttl = 60s;
    auto env = co_await Env::make(io, srv.config(), nullptr, nullptr, long_ttl);
    auto wide = policy("lease-wide", 1000, 60s, Algorithm::sliding_counter);
    wide.lease = 16;
    auto narrow = policy("lease-narrow", 1, 60s);
    auto ip = *Key::ip("203.0.113.77");
    auto em = Key::email(unique_scope("lease") + "@example.com");
    cli(srv, "DEL", rkey(ip, wide));
    auto counted = [&] { return cli(srv, "HGET", rkey(ip, wide), "c"); };
    co_await away_from_window_end(srv, 60s, 10s);
    auto both = [&]() -> asio::awaitable<Decision> {
      std::vector<Check> c = {{&wide, ip}, {&narrow, em}};
      auto d = co_await env->limiter->check(std::move(c));
      if (!d) throw std::runtime_error("check failed");
      co_return *d;
    };
    auto first = co_await both();  // a new key: counts this request only
    EXPECT_TRUE(first.allowed);
    EXPECT_EQ(first.results[0].remaining, 999);
    EXPECT_EQ(counted(), "1");
    auto second = co_await both();  // asks for 2: granted, then narrow rejects
    EXPECT_FALSE(second.allowed);
    EXPECT_FALSE(second.results[0].consumed);
    EXPECT_EQ(second.results[0].remaining, 999);
    EXPECT_EQ(counted(), "3");     // 1 + the lease of 2, all unused
    for (int i = 0; i < 3; ++i) {  // taken from the lease, given back on reject
      auto r = co_await both();
      EXPECT_FALSE(r.allowed);
      EXPECT_FALSE(r.results[0].consumed);
      EXPECT_EQ(r.results[0].remaining, 999);
    }
    EXPECT_EQ(counted(), "3");
    std::vector<Check> only = {{&wide, ip, Mode::check_only}};
    auto w = co_await env->limiter->check(std::move(only));
    CO_ASSERT_TRUE(w);
    EXPECT_TRUE(w->results[0].allowed);
    EXPECT_EQ(w->results[0].remaining, 999);  // 1000 - 3 counted + 2 reserved here
    for (int i = 0; i < 2; ++i) {             // the two reserved units, no script
      auto d = co_await env->limiter->check(wide, ip);
      CO_ASSERT_TRUE(d);
      EXPECT_TRUE(d->allowed);
      EXPECT_EQ(d->results[0].remaining, 998 - i);
    }
    EXPECT_EQ(counted(), "3");
    auto next = co_await env->limiter->check(wide, ip);  // used up in time: asks for 4
    CO_ASSERT_TRUE(next);
    EXPECT_EQ(next->results[0].remaining, 996);
    EXPECT_EQ(counted(), "7");

    // Expired leases give back what they did not use.
    LimiterOptions short_ttl;
    short_ttl.lease_ttl = 300ms;
    auto quick = co_await Env::make(io, srv.config(), nullptr, nullptr, short_ttl);
    auto back = policy("lease-back", 1000, 60s, Algorithm::sliding_counter);
    back.lease = 64;
    auto k = Key::custom(unique_scope("lease-back"));
    auto counted_k = [&] { return std::stoll(cli(srv, "HGET", rkey(k, back), "c")); };
    co_await away_from_window_end(srv, 60s, 10s);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) CO_ASSERT_TRUE(co_await quick->limiter->check(back, k));
    const bool in_time = std::chrono::steady_clock::now() - t0 < 250ms;
    if (in_time) {
      EXPECT_EQ(counted_k(), 7);  // 1, then 2 (one used), then 4: 3 reserved
    }
    co_await co_sleep(400ms);  // the lease expires
    auto fifth = co_await quick->limiter->check(back, k);
    CO_ASSERT_TRUE(fifth);
    EXPECT_TRUE(fifth->allowed);
    if (in_time) {
      EXPECT_EQ(counted_k(), 5);  // 3 given back, then this request alone
    }
    std::vector<Check> peek = {{&back, k, Mode::check_only}};
    auto pk = co_await quick->limiter->check(std::move(peek));
    CO_ASSERT_TRUE(pk);
    EXPECT_EQ(pk->results[0].remaining, 995);  // 5 admitted, whatever is reserved
    EXPECT_LE(counted_k(), 5 + 63);
    co_await quick->close();
    co_await env->close();
  });
}
