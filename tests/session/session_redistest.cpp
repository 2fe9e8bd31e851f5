// The session service against a real redis-server (tests/support harness):
// every operation of issue 3, expiry, rotation, concurrency, eviction, token
// secrecy in Redis, corrupt data and Redis failures.
#include <jeweler/core/errc.hpp>
#include <jeweler/redis/client.hpp>
#include <jeweler/session/session.hpp>
#include <jeweler/session/token.hpp>

#include "co_test.hpp"
#include "redis_server.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <map>
#include <set>

using namespace jeweler;
using namespace jeweler::session;
using namespace std::chrono_literals;
using jeweler::test::co_sleep;
using jeweler::test::RedisServer;
using jeweler::test::run_co;
namespace asio = boost::asio;

namespace {

RedisServer* g_srv = nullptr;

class SessionRedis : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_srv = new RedisServer(test::RedisServerOptions{.appendonly = false});
  }
  static void TearDownTestSuite() {
    delete g_srv;
    g_srv = nullptr;
  }
  void SetUp() override { g_srv->flushall(); }
};

TenantId T(std::string_view s) {
  return TenantId::from(s);
}
UserId U(std::string_view s) {
  return UserId::from(s);
}

NewSession login(std::string_view tenant, std::string_view user,
                 std::string ua = "Mozilla/5.0 test", std::string ip = "10.0.0.1") {
  return NewSession{T(tenant),
                    U(user),
                    std::string(user) + "@example.com",
                    "staff",
                    DeviceInfo{std::move(ua), std::move(ip), "device-1"},
                    true};  // verified (no 2FA): pending sessions are tested apart
}

std::shared_ptr<const Options> opts(std::function<void(Options&)> f = {}) {
  Options o;
  if (f) f(o);
  return std::make_shared<const Options>(o);
}

// A connected client + service for one test body.
struct Env {
  std::unique_ptr<redis::Client> client;
  std::unique_ptr<SessionService> svc;
};

asio::awaitable<Env> make_env(asio::io_context& io, std::shared_ptr<const Options> o,
                              std::shared_ptr<Stats> stats = nullptr, RedisServer* srv = nullptr) {
  Env e;
  e.client = redis::make_client(io.get_executor(), (srv ? srv : g_srv)->config());
  co_await e.client->wait_ready(5s);
  e.svc = std::make_unique<SessionService>(*e.client, std::move(o),
                                           stats ? std::move(stats) : std::make_shared<Stats>());
  co_return e;
}

std::string session_key(const SessionService& svc, const std::string& token) {
  return svc.keys().session(*parse_token(token));
}

// Every key under the prefix, with a rendering of its whole value.
asio::awaitable<std::map<std::string, std::string>> dump_all(redis::Client& c) {
  std::map<std::string, std::string> out;
  std::string cursor = "0";
  do {
    auto r = co_await c.exec(redis::Command::make("SCAN", cursor, "COUNT", "1000"));
    if (!r || !r->is_array() || r->elements.size() != 2) co_return out;
    cursor = r->elements[0].str;
    for (const auto& k : r->elements[1].elements) {
      auto ty = co_await c.exec(redis::Command::make("TYPE", k.str));
      std::string v;
      redis::Command cmd;
      if (ty && ty->str == "hash")
        cmd = redis::Command::make("HGETALL", k.str);
      else if (ty && ty->str == "zset")
        cmd = redis::Command::make("ZRANGE", k.str, "0", "-1", "WITHSCORES");
      else if (ty && ty->str == "string")
        cmd = redis::Command::make("GET", k.str);
      else if (ty && ty->str == "set")
        cmd = redis::Command::make("SMEMBERS", k.str);
      else if (ty && ty->str == "list")
        cmd = redis::Command::make("LRANGE", k.str, "0", "-1");
      if (!cmd.empty()) {
        auto val = co_await c.exec(cmd);
        if (val) {
          if (val->is_string()) v = val->str;
          for (const auto& e : val->elements) v += e.str + "\n";
        }
      }
      out[k.str] = v;
    }
  } while (cursor != "0");
  co_return out;
}

}  // namespace

TEST_F(SessionRedis, CreateThenGetReturnsTheSession) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto arg1 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto created = co_await env.svc->create(arg1);
    CO_ASSERT_TRUE(created);
    const auto& s = created->session;
    EXPECT_EQ(created->token.size(), 43u);
    EXPECT_TRUE(parse_token(created->token));
    EXPECT_EQ(s.id.size(), 22u);
    EXPECT_NE(s.id, created->token);
    EXPECT_EQ(s.login_time, s.last_activity);
    EXPECT_EQ(s.expires_at, s.login_time + std::chrono::milliseconds(24h).count());
    EXPECT_EQ(s.absolute_expiry, s.login_time + std::chrono::milliseconds(24h * 7).count());
    // Times are Unix epoch milliseconds (the Redis clock: same machine here).
    auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    EXPECT_LT(std::abs(wall - s.login_time), 60000);

    auto got = co_await env.svc->get(created->token);
    CO_ASSERT_TRUE(got);
    CO_ASSERT_TRUE(got->has_value());
    const auto& g = (*got)->session;
    EXPECT_EQ(g.id, s.id);
    EXPECT_EQ(g.tenant_id.str(), "aurum");
    EXPECT_EQ(g.user_id.str(), "alice");
    EXPECT_EQ(g.email, "alice@example.com");
    EXPECT_EQ(g.role, "staff");
    EXPECT_EQ(g.device, (DeviceInfo{"Mozilla/5.0 test", "10.0.0.1", "device-1"}));
    EXPECT_EQ(g.login_time, s.login_time);
    EXPECT_TRUE(g.two_factor_verified);
    EXPECT_GE(g.expires_at, s.expires_at);
    EXPECT_EQ(env.svc->stats()->snapshot().created, 1u);
    EXPECT_EQ(env.svc->stats()->snapshot().hits, 1u);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, UnknownMalformedAndDestroyedTokensAreNoSession) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    for (std::string tok : {generate_token(7).token, std::string("abc"), std::string(44, 'A'),
                            std::string(43, '*'), std::string()}) {
      auto r = co_await env.svc->get(tok);
      CO_ASSERT_TRUE(r);
      EXPECT_FALSE(r->has_value());
      auto arg2 =
          SessionPatch{.two_factor_verified = true};  // a local: g++ 12 co_await temporary bug
      auto u = co_await env.svc->update(tok, arg2);
      CO_ASSERT_TRUE(u);
      EXPECT_FALSE(u->has_value());
      auto e = co_await env.svc->extend(tok);
      CO_ASSERT_TRUE(e);
      EXPECT_FALSE(e->has_value());
      auto rot = co_await env.svc->rotate(tok);
      CO_ASSERT_TRUE(rot);
      EXPECT_FALSE(rot->has_value());
      auto d = co_await env.svc->destroy(tok);
      CO_ASSERT_TRUE(d);
      EXPECT_FALSE(*d);
    }
    // update on an unknown token must not create a partial hash.
    EXPECT_EQ(g_srv->cli({"DBSIZE"}), "0");
    auto arg3 = login("aurum", "bob");  // a local: g++ 12 co_await temporary bug
    auto created = co_await env.svc->create(arg3);
    CO_ASSERT_TRUE(created);
    auto d = co_await env.svc->destroy(created->token);
    CO_ASSERT_TRUE(d);
    EXPECT_TRUE(*d);
    auto again = co_await env.svc->destroy(created->token);
    CO_ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
    auto r = co_await env.svc->get(created->token);
    CO_ASSERT_TRUE(r);
    EXPECT_FALSE(r->has_value());
    auto l = co_await env.svc->list(T("aurum"), U("bob"));
    CO_ASSERT_TRUE(l);
    EXPECT_TRUE(l->empty());
    EXPECT_EQ(g_srv->cli({"EXISTS", env.svc->keys().index(T("aurum"), U("bob"))}), "0");
    co_await env.client->shutdown(1s);
  });
}

// lastActivity is written by every run of the get script (eviction must see
// each use); the quick checks of a token this service validated within the
// activity interval write nothing, and the script runs again after it.
TEST_F(SessionRedis, LastActivityWrittenByEachScriptedUse) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) { o.activity_interval = 400ms; }));
    auto arg4 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await env.svc->create(arg4);
    CO_ASSERT_TRUE(c);
    auto key = session_key(*env.svc, c->token);
    co_await co_sleep(20ms);
    auto first = co_await env.svc->get(c->token);  // the script: written at once
    CO_ASSERT_TRUE(first && first->has_value());
    const auto la1 = (*first)->session.last_activity;
    EXPECT_GT(la1, c->session.login_time);
    EXPECT_EQ(g_srv->cli({"HGET", key, "la"}), std::to_string(la1));
    for (int i = 0; i < 5; ++i) {  // quick checks within the interval
      auto g = co_await env.svc->get(c->token);
      CO_ASSERT_TRUE(g && g->has_value());
      EXPECT_EQ((*g)->session.last_activity, la1);
    }
    EXPECT_EQ(g_srv->cli({"HGET", key, "la"}), std::to_string(la1));
    co_await co_sleep(500ms);
    auto g = co_await env.svc->get(c->token);
    CO_ASSERT_TRUE(g && g->has_value());
    EXPECT_GT((*g)->session.last_activity, la1);
    EXPECT_EQ(g_srv->cli({"HGET", key, "la"}), std::to_string((*g)->session.last_activity));
    co_await env.client->shutdown(1s);
  });
}

// The local validation cache (docs/session.md): `a` has validated the
// session once and then checks it with PEXPIRE + HGET ver; whatever another
// service (another thread or process: `b`) or Redis itself does to the
// session is seen by `a`'s very next get().
TEST_F(SessionRedis, LocallyValidatedSessionsSeeEveryChangeAtOnce) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto a = co_await make_env(io, opts());
    auto b = co_await make_env(io, opts());
    std::optional<DeviceSeen> seen = DeviceSeen{"Mozilla/5.0 test", "10.0.0.1"};
    auto get_a = [&](const std::string& tok) { return a.svc->get(tok, seen); };
    auto arg = login("aurum", "alice");
    auto c = co_await b.svc->create(arg);
    CO_ASSERT_TRUE(c);
    const auto key = session_key(*a.svc, c->token);
    for (int i = 0; i < 3; ++i) {
      auto g = co_await get_a(c->token);
      CO_ASSERT_TRUE(g && g->has_value());
      EXPECT_EQ((*g)->session.role, "staff");
    }
    // The quick path still slides the idle TTL.
    g_srv->cli({"PEXPIRE", key, "5000"});
    auto slid = co_await get_a(c->token);
    CO_ASSERT_TRUE(slid && slid->has_value());
    EXPECT_GT(std::stoll(g_srv->cli({"PTTL", key})), 3600 * 1000);

    // update() elsewhere: the change is read at once.
    auto patch = SessionPatch{.role = "admin"};
    auto u = co_await b.svc->update(c->token, patch);
    CO_ASSERT_TRUE(u && u->has_value());
    auto g = co_await get_a(c->token);
    CO_ASSERT_TRUE(g && g->has_value());
    EXPECT_EQ((*g)->session.role, "admin");

    // An IP change recorded elsewhere: `a` reads the new IP.
    std::optional<DeviceSeen> moved = DeviceSeen{"Mozilla/5.0 test", "10.0.0.9"};
    auto m = co_await b.svc->get(c->token, moved);
    CO_ASSERT_TRUE(m && m->has_value());
    EXPECT_TRUE((*m)->ip_changed);
    seen = moved;
    g = co_await get_a(c->token);
    CO_ASSERT_TRUE(g && g->has_value());
    EXPECT_EQ((*g)->session.device.ip, "10.0.0.9");
    EXPECT_FALSE((*g)->ip_changed);  // reported once, by `b`
    EXPECT_EQ((*g)->session.ip_changes, 1);

    // A user-agent change is reported even though the copy is cached.
    std::optional<DeviceSeen> other_ua = DeviceSeen{"curl/8", "10.0.0.9"};
    auto ua = co_await a.svc->get(c->token, other_ua);
    CO_ASSERT_TRUE(ua && ua->has_value());
    EXPECT_TRUE((*ua)->user_agent_changed);

    // Destroyed elsewhere (logout on another process): gone at once.
    auto d = co_await b.svc->destroy(c->token);
    CO_ASSERT_TRUE(d && *d);
    g = co_await get_a(c->token);
    CO_ASSERT_TRUE(g);
    EXPECT_FALSE(g->has_value());

    // Rotated elsewhere: the old token dies at once, the new one works.
    auto arg2 = login("aurum", "bob");
    auto c2 = co_await b.svc->create(arg2);
    CO_ASSERT_TRUE(c2);
    g = co_await get_a(c2->token);
    CO_ASSERT_TRUE(g && g->has_value());
    auto rot = co_await b.svc->rotate(c2->token);
    CO_ASSERT_TRUE(rot && rot->has_value());
    g = co_await get_a(c2->token);
    CO_ASSERT_TRUE(g);
    EXPECT_FALSE(g->has_value());
    g = co_await get_a((*rot)->token);
    CO_ASSERT_TRUE(g && g->has_value());

    // Expired in Redis (idle TTL): gone at once.
    g_srv->cli({"DEL", session_key(*a.svc, (*rot)->token)});
    g = co_await get_a((*rot)->token);
    CO_ASSERT_TRUE(g);
    EXPECT_FALSE(g->has_value());
    co_await a.client->shutdown(1s);
    co_await b.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, IdleExpiryWithShortTtlAndRefreshOnUse) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) {
                                   o.idle_ttl = 1500ms;
                                   o.activity_interval = 0ms;
                                 }));
    auto arg5 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await env.svc->create(arg5);
    CO_ASSERT_TRUE(c);
    auto key = session_key(*env.svc, c->token);
    auto pttl = std::stoll(g_srv->cli({"PTTL", key}));
    EXPECT_GT(pttl, 0);
    EXPECT_LE(pttl, 1500);
    // Used every 900 ms for 2.7 s: stays alive past the idle TTL.
    for (int i = 0; i < 3; ++i) {
      co_await co_sleep(900ms);
      auto g = co_await env.svc->get(c->token);
      CO_ASSERT_TRUE(g);
      CO_ASSERT_TRUE(g->has_value());
      EXPECT_GT(std::stoll(g_srv->cli({"PTTL", key})), 1000);  // refreshed
    }
    // Unused for longer than the idle TTL: gone.
    co_await co_sleep(2000ms);
    auto g = co_await env.svc->get(c->token);
    CO_ASSERT_TRUE(g);
    EXPECT_FALSE(g->has_value());
    // The index entry is cleaned on the next listing; the expiry is counted.
    auto l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    EXPECT_TRUE(l->empty());
    EXPECT_EQ(env.svc->stats()->snapshot().expired, 1u);
    EXPECT_EQ(g_srv->cli({"EXISTS", env.svc->keys().index(T("aurum"), U("alice"))}), "0");
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, AbsoluteLifetimeNotExceededByRepeatedExtension) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) {
                                   o.idle_ttl = 1000ms;
                                   o.max_lifetime = 2500ms;
                                 }));
    auto arg6 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await env.svc->create(arg6);
    CO_ASSERT_TRUE(c);
    const auto deadline = c->session.login_time + 2500;
    EXPECT_EQ(c->session.absolute_expiry, deadline);
    auto key = session_key(*env.svc, c->token);
    int alive = 0;
    bool ended = false;
    for (int i = 0; i < 40 && !ended; ++i) {
      auto e = co_await env.svc->extend(c->token);
      CO_ASSERT_TRUE(e);
      if (!e->has_value()) {
        ended = true;
        break;
      }
      ++alive;
      EXPECT_LE((*e)->expires_at, deadline);
      auto pttl = std::stoll(g_srv->cli({"PTTL", key}));
      EXPECT_LE((*e)->last_activity + pttl, deadline + 5);
      auto g = co_await env.svc->get(c->token);
      CO_ASSERT_TRUE(g);
      if (g->has_value()) {
        EXPECT_LE((*g)->session.expires_at, deadline);
      }
      co_await co_sleep(200ms);
    }
    EXPECT_TRUE(ended);
    EXPECT_GT(alive, 3);
    auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    EXPECT_GE(wall, deadline - 50);  // it ended at the deadline, not before
    auto g = co_await env.svc->get(c->token);
    CO_ASSERT_TRUE(g);
    EXPECT_FALSE(g->has_value());
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, RotationKillsTheOldTokenAtOnce) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto in = login("aurum", "alice");
    auto c = co_await env.svc->create(in);
    CO_ASSERT_TRUE(c);
    auto arg7 =
        SessionPatch{.two_factor_verified = true};  // a local: g++ 12 co_await temporary bug
    auto r = co_await env.svc->rotate(c->token, arg7);
    CO_ASSERT_TRUE(r);
    CO_ASSERT_TRUE(r->has_value());
    const auto& rot = **r;
    EXPECT_NE(rot.token, c->token);
    EXPECT_EQ(rot.token.size(), 43u);
    EXPECT_EQ(rot.session.id, c->session.id);
    EXPECT_EQ(rot.session.login_time, c->session.login_time);
    EXPECT_TRUE(rot.session.two_factor_verified);
    auto old = co_await env.svc->get(c->token);
    CO_ASSERT_TRUE(old);
    EXPECT_FALSE(old->has_value());
    auto arg8 = SessionPatch{.role = "admin"};  // a local: g++ 12 co_await temporary bug
    auto old_update = co_await env.svc->update(c->token, arg8);
    CO_ASSERT_TRUE(old_update);
    EXPECT_FALSE(old_update->has_value());
    auto now = co_await env.svc->get(rot.token);
    CO_ASSERT_TRUE(now && now->has_value());
    EXPECT_TRUE((*now)->session.two_factor_verified);
    EXPECT_EQ((*now)->session.role, "staff");
    // The user's index follows: list, destroy by id, destroy_all all work.
    auto l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    CO_ASSERT_EQ(l->size(), 1u);
    EXPECT_EQ((*l)[0].id, c->session.id);
    auto second = co_await env.svc->rotate(rot.token);
    CO_ASSERT_TRUE(second && second->has_value());
    auto d = co_await env.svc->destroy_by_id(T("aurum"), U("alice"), c->session.id);
    CO_ASSERT_TRUE(d);
    EXPECT_TRUE(*d);
    auto gone = co_await env.svc->get((*second)->token);
    CO_ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->has_value());
    EXPECT_EQ(env.svc->stats()->snapshot().rotated, 2u);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, UpdateIsPartial) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto arg9 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await env.svc->create(arg9);
    CO_ASSERT_TRUE(c);
    auto arg10 = SessionPatch{.role = "admin"};  // a local: g++ 12 co_await temporary bug
    auto u = co_await env.svc->update(c->token, arg10);
    CO_ASSERT_TRUE(u && u->has_value());
    EXPECT_EQ((*u)->role, "admin");
    EXPECT_EQ((*u)->email, "alice@example.com");
    EXPECT_EQ((*u)->device, c->session.device);
    auto arg11 =
        SessionPatch{.email = std::string(300, 'x')};  // a local: g++ 12 co_await temporary bug
    auto bad = co_await env.svc->update(c->token, arg11);
    CO_ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), make_error_code(errc::invalid_argument));
    auto arg12 = SessionPatch{};  // a local: g++ 12 co_await temporary bug
    auto noop = co_await env.svc->update(c->token, arg12);
    CO_ASSERT_TRUE(noop && noop->has_value());
    EXPECT_EQ((*noop)->role, "admin");
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, TwoHundredConcurrentUpdatesLoseNoField) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto arg13 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await env.svc->create(arg13);
    CO_ASSERT_TRUE(c);
    constexpr int n = 200;
    // Each update sets one field group to a unique value; replies come back in
    // execution order on one connection, so the last completion per field
    // must be what Redis holds at the end.
    std::map<std::string, std::string> last;  // field -> value of the last completed update
    int done = 0, failures = 0, seq = 0;
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            SessionPatch p;
            std::string field, value = std::to_string(i);
            switch (i % 4) {
              case 0:
                p.email = "e" + value + "@x.y";
                field = "email";
                value = *p.email;
                break;
              case 1:
                p.role = "r" + value;
                field = "role";
                value = *p.role;
                break;
              case 2:
                p.device =
                    DeviceInfo{"UA " + value, "10.1.0." + std::to_string(i % 250), "d" + value};
                field = "device";
                value = p.device->user_agent + "|" + p.device->ip + "|" + p.device->device_id;
                break;
              default:
                p.two_factor_verified = (i / 4) % 2 == 0;
                field = "tf";
                value = *p.two_factor_verified ? "1" : "0";
            }
            auto r = co_await env.svc->update(c->token, std::move(p));
            ++seq;
            if (!r || !r->has_value()) {
              ++failures;
            } else {
              last[field] = value;
              // Its own change is visible in its own reply (atomic read-back).
              const auto& s = **r;
              if (field == "email" && s.email != value) ++failures;
              if (field == "role" && s.role != value) ++failures;
            }
            ++done;
          },
          asio::detached);
    }
    while (done < n) co_await co_sleep(5ms);
    EXPECT_EQ(failures, 0);
    auto g = co_await env.svc->get(c->token);
    CO_ASSERT_TRUE(g && g->has_value());
    const auto& s = (*g)->session;
    EXPECT_EQ(s.email, last["email"]);
    EXPECT_EQ(s.role, last["role"]);
    EXPECT_EQ(s.device.user_agent + "|" + s.device.ip + "|" + s.device.device_id, last["device"]);
    EXPECT_EQ(s.two_factor_verified ? "1" : "0", last["tf"]);
    EXPECT_EQ(s.id, c->session.id);
    EXPECT_EQ(s.login_time, c->session.login_time);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, DestroyByIdOnlyForTheOwner) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto arg14 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto a = co_await env.svc->create(arg14);
    auto arg15 = login("aurum", "bob");  // a local: g++ 12 co_await temporary bug
    auto b = co_await env.svc->create(arg15);
    auto arg16 = login("argent", "alice");  // a local: g++ 12 co_await temporary bug
    auto x = co_await env.svc->create(arg16);
    CO_ASSERT_TRUE(a && b && x);
    // Bob, or alice of another tenant, cannot end alice's session.
    for (auto [t, u] : {std::pair{"aurum", "bob"}, std::pair{"argent", "alice"}}) {
      auto d = co_await env.svc->destroy_by_id(T(t), U(u), a->session.id);
      CO_ASSERT_TRUE(d);
      EXPECT_FALSE(*d);
    }
    auto bad = co_await env.svc->destroy_by_id(T("aurum"), U("alice"), "not-an-id");
    CO_ASSERT_TRUE(bad);
    EXPECT_FALSE(*bad);
    auto still = co_await env.svc->get(a->token);
    CO_ASSERT_TRUE(still && still->has_value());
    auto d = co_await env.svc->destroy_by_id(T("aurum"), U("alice"), a->session.id);
    CO_ASSERT_TRUE(d);
    EXPECT_TRUE(*d);
    auto gone = co_await env.svc->get(a->token);
    CO_ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->has_value());
    for (auto* other : {&b, &x}) {
      auto g = co_await env.svc->get((*other)->token);
      CO_ASSERT_TRUE(g && g->has_value());
    }
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, DestroyAllKeepsTheCurrentOneWhenAsked) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    std::vector<IssuedSession> s;
    for (int i = 0; i < 4; ++i) {
      auto arg17 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
      auto c = co_await env.svc->create(arg17);
      CO_ASSERT_TRUE(c);
      s.push_back(std::move(*c));
    }
    auto arg18 = login("aurum", "bob");  // a local: g++ 12 co_await temporary bug
    auto other = co_await env.svc->create(arg18);
    CO_ASSERT_TRUE(other);
    auto n = co_await env.svc->destroy_all(T("aurum"), U("alice"), s[2].session.id);
    CO_ASSERT_TRUE(n);
    EXPECT_EQ(*n, 3u);
    for (int i = 0; i < 4; ++i) {
      auto g = co_await env.svc->get(s[i].token);
      CO_ASSERT_TRUE(g);
      EXPECT_EQ(g->has_value(), i == 2);
    }
    auto bob = co_await env.svc->get(other->token);
    CO_ASSERT_TRUE(bob && bob->has_value());
    auto all = co_await env.svc->destroy_all(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(all);
    EXPECT_EQ(*all, 1u);
    auto none = co_await env.svc->destroy_all(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(none);
    EXPECT_EQ(*none, 0u);
    EXPECT_EQ(env.svc->stats()->snapshot().destroyed, 4u);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, DestroyAllWithConcurrentCreatesLeavesNoOrphan) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) { o.max_per_user = 1000; }));
    auto env2 =
        co_await make_env(io, opts([](Options& o) { o.max_per_user = 1000; }), env.svc->stats());
    constexpr int creates = 150;
    int done = 0, errors = 0;
    std::size_t destroyed = 0;
    std::vector<std::string> tokens;
    for (int i = 0; i < creates; ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            // Two connections, as two server threads would.
            auto& svc = i % 2 ? *env.svc : *env2.svc;
            auto arg19 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
            auto c = co_await svc.create(arg19);
            if (!c)
              ++errors;
            else
              tokens.push_back(c->token);
            ++done;
          },
          asio::detached);
      if (i % 25 == 10) {
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              auto n = co_await env2.svc->destroy_all(T("aurum"), U("alice"));
              if (!n)
                ++errors;
              else
                destroyed += *n;
            },
            asio::detached);
      }
    }
    while (done < creates) co_await co_sleep(5ms);
    co_await co_sleep(50ms);
    EXPECT_EQ(errors, 0);
    // Invariant: every session hash is in the index and every index entry
    // points at a session hash.
    auto dump = co_await dump_all(*env.client);
    const auto index_key = env.svc->keys().index(T("aurum"), U("alice"));
    const auto base = env.svc->keys().base(user_bucket(T("aurum"), U("alice")));
    std::set<std::string> session_keys, indexed;
    for (const auto& [k, v] : dump)
      if (k.rfind(base, 0) == 0 && k != index_key) session_keys.insert(k);
    auto idx = co_await env.client->exec(redis::Command::make("HGETALL", index_key));
    CO_ASSERT_TRUE(idx);
    for (std::size_t i = 1; i < idx->elements.size(); i += 2)
      indexed.insert(base + idx->elements[i].str);
    EXPECT_EQ(session_keys, indexed);
    std::size_t live = 0;
    for (const auto& t : tokens) {
      auto g = co_await env.svc->get(t);
      CO_ASSERT_TRUE(g);
      if (g->has_value()) ++live;
    }
    EXPECT_EQ(live, session_keys.size());
    EXPECT_EQ(destroyed + live, static_cast<std::size_t>(creates));
    auto n = co_await env.svc->destroy_all(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(n);
    EXPECT_EQ(*n, live);
    auto after = co_await dump_all(*env.client);
    for (const auto& [k, v] : after) EXPECT_NE(k.rfind(base, 0), 0u) << "orphan key " << k;
    co_await env.client->shutdown(1s);
    co_await env2.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, MaxSessionsEvictsTheLeastRecentlyActive) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) {
                                   o.max_per_user = 3;
                                   o.activity_interval = 0ms;
                                 }));
    std::vector<IssuedSession> s;
    for (int i = 0; i < 3; ++i) {
      auto arg20 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
      auto c = co_await env.svc->create(arg20);
      CO_ASSERT_TRUE(c);
      EXPECT_TRUE(c->evicted_ids.empty());
      s.push_back(std::move(*c));
      co_await co_sleep(5ms);
    }
    // s[0] is the oldest login but the most recently active.
    auto g = co_await env.svc->get(s[0].token);
    CO_ASSERT_TRUE(g && g->has_value());
    co_await co_sleep(5ms);
    auto arg21 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c4 = co_await env.svc->create(arg21);
    CO_ASSERT_TRUE(c4);
    CO_ASSERT_EQ(c4->evicted_ids.size(), 1u);
    EXPECT_EQ(c4->evicted_ids[0], s[1].session.id);
    auto gone = co_await env.svc->get(s[1].token);
    CO_ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->has_value());
    for (const auto* t : {&s[0].token, &s[2].token, &c4->token}) {
      auto a = co_await env.svc->get(*t);
      CO_ASSERT_TRUE(a && a->has_value());
    }
    auto l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    EXPECT_EQ(l->size(), 3u);
    // Another user is not affected by alice's limit.
    auto arg22 = login("aurum", "bob");  // a local: g++ 12 co_await temporary bug
    auto bob = co_await env.svc->create(arg22);
    CO_ASSERT_TRUE(bob);
    EXPECT_TRUE(bob->evicted_ids.empty());
    EXPECT_EQ(env.svc->stats()->snapshot().evicted, 1u);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, ListIsNewestFirstAndCleansExpiredEntries) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    std::vector<IssuedSession> s;
    for (int i = 0; i < 3; ++i) {
      auto in = login("aurum", "alice", "UA " + std::to_string(i));
      auto c = co_await env.svc->create(in);
      CO_ASSERT_TRUE(c);
      s.push_back(std::move(*c));
      co_await co_sleep(5ms);
    }
    auto l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    CO_ASSERT_EQ(l->size(), 3u);
    EXPECT_EQ((*l)[0].id, s[2].session.id);
    EXPECT_EQ((*l)[1].id, s[1].session.id);
    EXPECT_EQ((*l)[2].id, s[0].session.id);
    EXPECT_EQ((*l)[0].device.user_agent, "UA 2");
    for (const auto& x : *l) EXPECT_GT(x.expires_at, x.login_time);
    // One expires (as Redis would expire it).
    g_srv->cli({"PEXPIRE", session_key(*env.svc, s[1].token), "1"});
    co_await co_sleep(50ms);
    l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    CO_ASSERT_EQ(l->size(), 2u);
    EXPECT_EQ((*l)[0].id, s[2].session.id);
    EXPECT_EQ((*l)[1].id, s[0].session.id);
    EXPECT_EQ(g_srv->cli({"HLEN", env.svc->keys().index(T("aurum"), U("alice"))}), "2");
    EXPECT_EQ(env.svc->stats()->snapshot().expired, 1u);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, DeviceChangesAreReported) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto arg23 =
        login("aurum", "alice", "UA-1", "10.0.0.1");  // a local: g++ 12 co_await temporary bug
    auto c = co_await env.svc->create(arg23);
    CO_ASSERT_TRUE(c);
    auto arg24 = DeviceSeen{"UA-1", "10.0.0.1"};  // a local: g++ 12 co_await temporary bug
    auto same = co_await env.svc->get(c->token, arg24);
    CO_ASSERT_TRUE(same && same->has_value());
    EXPECT_FALSE((*same)->user_agent_changed);
    EXPECT_FALSE((*same)->ip_changed);
    auto arg25 = DeviceSeen{"UA-1", "192.168.1.9"};  // a local: g++ 12 co_await temporary bug
    auto moved = co_await env.svc->get(c->token, arg25);
    CO_ASSERT_TRUE(moved && moved->has_value());
    EXPECT_FALSE((*moved)->user_agent_changed);
    EXPECT_TRUE((*moved)->ip_changed);
    EXPECT_EQ((*moved)->previous_ip, "10.0.0.1");
    EXPECT_EQ((*moved)->session.device.ip, "192.168.1.9");
    EXPECT_EQ((*moved)->session.ip_changes, 1);
    auto arg26 = DeviceSeen{"UA-1", "192.168.1.9"};  // a local: g++ 12 co_await temporary bug
    auto again = co_await env.svc->get(c->token, arg26);
    CO_ASSERT_TRUE(again && again->has_value());
    EXPECT_FALSE((*again)->ip_changed);  // recorded: same IP is no change any more
    EXPECT_EQ((*again)->session.ip_changes, 1);
    auto arg27 = DeviceSeen{"curl/8", "192.168.1.9"};  // a local: g++ 12 co_await temporary bug
    auto hijack = co_await env.svc->get(c->token, arg27);
    CO_ASSERT_TRUE(hijack && hijack->has_value());
    EXPECT_TRUE((*hijack)->user_agent_changed);
    EXPECT_EQ((*hijack)->session.device.user_agent, "UA-1");  // reported, not changed
    auto arg28 = DeviceSeen{"UA-1", "not an ip!"};  // a local: g++ 12 co_await temporary bug
    auto bad = co_await env.svc->get(c->token, arg28);
    CO_ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), make_error_code(errc::invalid_argument));
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, RawTokenAppearsInNoKeyOrValue) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) { o.activity_interval = 0ms; }));
    std::vector<std::string> secrets;
    for (int i = 0; i < 5; ++i) {
      auto arg29 =
          login("aurum", "user" + std::to_string(i % 2));  // a local: g++ 12 co_await temporary bug
      auto c = co_await env.svc->create(arg29);
      CO_ASSERT_TRUE(c);
      secrets.push_back(c->token);
      auto arg30 =
          DeviceSeen{"Mozilla/5.0 test", "10.9.9.9"};  // a local: g++ 12 co_await temporary bug
      auto g = co_await env.svc->get(c->token, arg30);
      CO_ASSERT_TRUE(g && g->has_value());
      auto arg31 =
          SessionPatch{.two_factor_verified = true};  // a local: g++ 12 co_await temporary bug
      auto u = co_await env.svc->update(c->token, arg31);
      CO_ASSERT_TRUE(u);
      if (i == 0) {
        auto r = co_await env.svc->rotate(c->token);
        CO_ASSERT_TRUE(r && r->has_value());
        secrets.push_back((*r)->token);
      }
    }
    auto st = co_await env.svc->tenant_stats(T("aurum"));
    CO_ASSERT_TRUE(st);
    auto dump = co_await dump_all(*env.client);
    EXPECT_GE(dump.size(), 7u);
    for (const auto& tok : secrets) {
      TokenBytes raw;
      CO_ASSERT_TRUE(base64url_decode(tok, raw.data(), raw.size()));
      std::string raw_s(reinterpret_cast<const char*>(raw.data()), raw.size());
      std::string hex;
      for (unsigned char b : raw) {
        static constexpr char h[] = "0123456789abcdef";
        hex += h[b >> 4];
        hex += h[b & 15];
      }
      for (const auto& [k, v] : dump) {
        for (const std::string* form :
             std::initializer_list<const std::string*>{&tok, &raw_s, &hex}) {
          EXPECT_EQ(k.find(*form), std::string::npos) << "token in key " << k;
          EXPECT_EQ(v.find(*form), std::string::npos) << "token in value of " << k;
        }
        EXPECT_EQ(k.rfind("jeweler:", 0), 0u) << "key outside the prefix: " << k;
      }
    }
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, CorruptDataIsLoggedAndTreatedAsNoSession) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto fresh = [&]() -> asio::awaitable<IssuedSession> {
      auto arg32 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
      auto c = co_await env.svc->create(arg32);
      EXPECT_TRUE(c);
      co_return std::move(*c);
    };
    // Wrong type.
    auto a = co_await fresh();
    auto ka = session_key(*env.svc, a.token);
    g_srv->cli({"DEL", ka});
    g_srv->cli({"SET", ka, "garbage"});
    auto ga = co_await env.svc->get(a.token);
    CO_ASSERT_TRUE(ga);
    EXPECT_FALSE(ga->has_value());
    // Unparseable timestamp, unknown schema version, missing field, bad tenant.
    std::vector<std::vector<std::string>> breakages = {{"HSET", "", "lt", "yesterday"},
                                                       {"HSET", "", "v", "9"},
                                                       {"HDEL", "", "uid"},
                                                       {"HSET", "", "tid", "no such{tenant}"},
                                                       {"HSET", "", "la", "x"}};
    for (auto cmd : breakages) {
      auto s = co_await fresh();
      cmd[1] = session_key(*env.svc, s.token);
      g_srv->cli(cmd);
      auto g = co_await env.svc->get(s.token);
      CO_ASSERT_TRUE(g);
      EXPECT_FALSE(g->has_value()) << cmd[2];
      auto arg33 = SessionPatch{.role = "admin"};  // a local: g++ 12 co_await temporary bug
      auto u = co_await env.svc->update(s.token, arg33);
      CO_ASSERT_TRUE(u);
      EXPECT_FALSE(u->has_value()) << cmd[2];
    }
    EXPECT_GE(env.svc->stats()->snapshot().corrupt, 6u);
    // Listing skips unreadable sessions; logout still removes them.
    auto good = co_await fresh();
    auto l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    CO_ASSERT_EQ(l->size(), 1u);
    EXPECT_EQ((*l)[0].id, good.session.id);
    auto d = co_await env.svc->destroy(a.token);
    CO_ASSERT_TRUE(d);
    EXPECT_TRUE(*d);
    EXPECT_EQ(g_srv->cli({"EXISTS", ka}), "0");
    // A corrupt user index is replaced at the next login.
    g_srv->cli({"DEL", env.svc->keys().index(T("aurum"), U("carol"))});
    g_srv->cli({"SET", env.svc->keys().index(T("aurum"), U("carol")), "junk"});
    auto arg34 = login("aurum", "carol");  // a local: g++ 12 co_await temporary bug
    auto c = co_await env.svc->create(arg34);
    CO_ASSERT_TRUE(c);
    auto lc = co_await env.svc->list(T("aurum"), U("carol"));
    CO_ASSERT_TRUE(lc);
    EXPECT_EQ(lc->size(), 1u);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, TenantStatsAndActiveSessions) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto stats = std::make_shared<Stats>();
    auto env = co_await make_env(io, opts(), stats);
    std::vector<IssuedSession> aurum;
    for (auto u : {"alice", "alice", "bob"}) {
      auto arg35 = login("aurum", u);  // a local: g++ 12 co_await temporary bug
      auto c = co_await env.svc->create(arg35);
      CO_ASSERT_TRUE(c);
      aurum.push_back(std::move(*c));
    }
    auto arg36 = login("argent", "zed");  // a local: g++ 12 co_await temporary bug
    auto x = co_await env.svc->create(arg36);
    CO_ASSERT_TRUE(x);
    auto a = co_await env.svc->tenant_stats(T("aurum"));
    CO_ASSERT_TRUE(a);
    EXPECT_EQ(a->live_sessions, 3u);
    EXPECT_EQ(a->users_with_sessions, 2u);
    auto g = co_await env.svc->tenant_stats(T("argent"));
    CO_ASSERT_TRUE(g);
    EXPECT_EQ(g->live_sessions, 1u);
    EXPECT_EQ(g->users_with_sessions, 1u);
    auto live = co_await env.svc->active_sessions();
    CO_ASSERT_TRUE(live);
    EXPECT_EQ(*live, 4u);
    EXPECT_EQ(stats->last_active(), 4);
    auto d = co_await env.svc->destroy(aurum[2].token);
    CO_ASSERT_TRUE(d && *d);
    auto n = co_await env.svc->destroy_all(T("aurum"), U("alice"), aurum[0].session.id);
    CO_ASSERT_TRUE(n);
    a = co_await env.svc->tenant_stats(T("aurum"));
    CO_ASSERT_TRUE(a);
    EXPECT_EQ(a->live_sessions, 1u);
    EXPECT_EQ(a->users_with_sessions, 1u);
    live = co_await env.svc->active_sessions();
    CO_ASSERT_TRUE(live);
    EXPECT_EQ(*live, 2u);
    auto c = stats->snapshot();
    EXPECT_EQ(c.created, 4u);
    EXPECT_EQ(c.destroyed, 2u);
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, InvalidInputIsRefused) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    auto in = login("aurum", "alice");
    in.role = "admin; DROP";
    auto r = co_await env.svc->create(in);
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(errc::invalid_argument));
    EXPECT_FALSE(jeweler::is_unavailable(r.error()));
    in = login("aurum", "alice", std::string(5000, 'u'));
    auto ok = co_await env.svc->create(in);
    CO_ASSERT_TRUE(ok);
    EXPECT_EQ(ok->session.device.user_agent.size(), limits::user_agent);
    // The truncated agent still matches the same (long) agent later.
    auto arg37 =
        DeviceSeen{std::string(5000, 'u'), "10.0.0.1"};  // a local: g++ 12 co_await temporary bug
    auto g = co_await env.svc->get(ok->token, arg37);
    CO_ASSERT_TRUE(g && g->has_value());
    EXPECT_FALSE((*g)->user_agent_changed);
    EXPECT_EQ(g_srv->cli({"DBSIZE"}), "4");  // session, index, two statistics sets
    co_await env.client->shutdown(1s);
  });
}

TEST_F(SessionRedis, KeyPrefixIsHonoured) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = g_srv->config();
    cfg.key_prefix = "other-app:";
    auto client = redis::make_client(io.get_executor(), cfg);
    co_await client->wait_ready(5s);
    SessionService svc(*client, opts(), std::make_shared<Stats>());
    auto arg38 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await svc.create(arg38);
    CO_ASSERT_TRUE(c);
    auto g = co_await svc.get(c->token);
    CO_ASSERT_TRUE(g && g->has_value());
    auto dump = co_await dump_all(*client);
    EXPECT_FALSE(dump.empty());
    for (const auto& [k, v] : dump) EXPECT_EQ(k.rfind("other-app:sess:", 0), 0u) << k;
    co_await client->shutdown(1s);
  });
}

// --- issue 14: pending 2FA sessions, TOTP replay markers, user agents ----------

NewSession pending_login(std::string_view tenant, std::string_view user) {
  auto in = login(tenant, user);
  in.two_factor_verified = false;  // waits for its second factor
  return in;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 14.8: logins with the password alone (pending sessions) never evict the
// owner's verified sessions; they evict only other pending ones.
TEST_F(SessionRedis, PendingSessionsNeverEvictVerifiedOnes) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) { o.max_per_user = 10; }));
    std::vector<IssuedSession> verified;
    for (int i = 0; i < 10; ++i) {
      auto in = login("aurum", "alice");
      auto c = co_await env.svc->create(in);
      CO_ASSERT_TRUE(c);
      verified.push_back(std::move(*c));
    }
    std::set<std::string> pending_ids, evicted;
    for (int i = 0; i < 15; ++i) {
      auto in = pending_login("aurum", "alice");
      auto c = co_await env.svc->create(in);
      CO_ASSERT_TRUE(c);
      pending_ids.insert(c->session.id);
      for (const auto& id : c->evicted_ids) evicted.insert(id);
    }
    // All ten verified sessions still live.
    for (const auto& v : verified) {
      auto g = co_await env.svc->get(v.token);
      CO_ASSERT_TRUE(g);
      EXPECT_TRUE(g->has_value()) << "verified session " << v.session.id << " was evicted";
      EXPECT_FALSE(evicted.count(v.session.id));
    }
    // Only pending sessions were evicted: the five oldest of fifteen.
    EXPECT_EQ(evicted.size(), 5u);
    for (const auto& id : evicted) EXPECT_TRUE(pending_ids.count(id)) << id;
    auto l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    EXPECT_EQ(l->size(), 20u);  // 10 verified + at most 10 pending
    // A new verified login still evicts a verified one (the limit holds).
    auto in = login("aurum", "alice");
    auto c = co_await env.svc->create(in);
    CO_ASSERT_TRUE(c);
    CO_ASSERT_EQ(c->evicted_ids.size(), 1u);
    EXPECT_FALSE(pending_ids.count(c->evicted_ids[0]));
    co_await env.client->shutdown(1s);
  });
}

// 14.8: a pending session lives SESSION_2FA_PENDING_TTL at most, idle and
// absolute, however often it is used; a verified one is not affected.
TEST_F(SessionRedis, PendingSessionEndsAfterItsTtlEvenWhenUsed) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) { o.pending_2fa_ttl = 2s; }));
    auto in = pending_login("aurum", "alice");
    auto p = co_await env.svc->create(in);
    CO_ASSERT_TRUE(p);
    auto vin = login("aurum", "alice");
    auto v = co_await env.svc->create(vin);
    CO_ASSERT_TRUE(v);
    const auto deadline = p->session.login_time + 2000;
    EXPECT_EQ(p->session.absolute_expiry, deadline);
    EXPECT_LE(p->session.expires_at, deadline);
    auto pttl = std::stoll(g_srv->cli({"PTTL", session_key(*env.svc, p->token)}));
    EXPECT_GT(pttl, 0);
    EXPECT_LE(pttl, 2000);
    // Used (and extended) again and again: it still ends by the deadline.
    bool ended = false;
    auto until = std::chrono::steady_clock::now() + 20s;  // generous bound
    while (!ended && std::chrono::steady_clock::now() < until) {
      auto e = co_await env.svc->extend(p->token);
      CO_ASSERT_TRUE(e);
      if (!e->has_value()) {
        ended = true;
        break;
      }
      EXPECT_LE((*e)->expires_at, deadline);
      co_await co_sleep(100ms);
    }
    EXPECT_TRUE(ended);
    EXPECT_GE(wall_ms(), deadline - 50);  // not before its deadline
    auto g = co_await env.svc->get(v->token);
    CO_ASSERT_TRUE(g);
    EXPECT_TRUE(g->has_value());
    co_await env.client->shutdown(1s);
  });
}

// 14.8: verification (rotate with two_factor_verified) gives the normal
// lifetimes and makes the session count among the verified ones.
TEST_F(SessionRedis, PromotionGivesNormalLifetimesAndKeepsTheLimit) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts([](Options& o) {
                                   o.max_per_user = 3;
                                   o.pending_2fa_ttl = 60s;
                                   o.activity_interval = 0ms;
                                 }));
    std::vector<IssuedSession> v;
    for (int i = 0; i < 3; ++i) {
      auto in = login("aurum", "alice");
      auto c = co_await env.svc->create(in);
      CO_ASSERT_TRUE(c);
      v.push_back(std::move(*c));
      co_await co_sleep(5ms);
    }
    auto pin = pending_login("aurum", "alice");
    auto p = co_await env.svc->create(pin);
    CO_ASSERT_TRUE(p);
    EXPECT_TRUE(p->evicted_ids.empty());
    EXPECT_EQ(p->session.absolute_expiry, p->session.login_time + 60000);
    co_await co_sleep(5ms);
    auto g0 = co_await env.svc->get(v[0].token);  // v[1] is now the least recently active
    CO_ASSERT_TRUE(g0 && g0->has_value());
    auto patch = SessionPatch{.two_factor_verified = true};
    auto r = co_await env.svc->rotate(p->token, patch);
    CO_ASSERT_TRUE(r && r->has_value());
    const auto& rot = **r;
    EXPECT_TRUE(rot.session.two_factor_verified);
    EXPECT_EQ(rot.session.login_time, p->session.login_time);
    EXPECT_EQ(rot.session.absolute_expiry,
              p->session.login_time + std::chrono::milliseconds(24h * 7).count());
    EXPECT_GT(rot.session.expires_at, p->session.login_time + 3600 * 1000);
    auto pttl = std::stoll(g_srv->cli({"PTTL", session_key(*env.svc, rot.token)}));
    EXPECT_GT(pttl, 3600 * 1000);
    CO_ASSERT_EQ(rot.evicted_ids.size(), 1u);
    EXPECT_EQ(rot.evicted_ids[0], v[1].session.id);
    auto gone = co_await env.svc->get(v[1].token);
    CO_ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->has_value());
    auto l = co_await env.svc->list(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(l);
    EXPECT_EQ(l->size(), 3u);
    // Rotating an already verified session changes no lifetime, evicts nothing.
    auto again = co_await env.svc->rotate(rot.token, patch);
    CO_ASSERT_TRUE(again && again->has_value());
    EXPECT_TRUE((*again)->evicted_ids.empty());
    EXPECT_EQ((*again)->session.absolute_expiry, rot.session.absolute_expiry);
    // Force logout also ends pending sessions.
    auto pin2 = pending_login("aurum", "alice");
    auto p2 = co_await env.svc->create(pin2);
    CO_ASSERT_TRUE(p2);
    auto d = co_await env.svc->destroy_all(T("aurum"), U("alice"));
    CO_ASSERT_TRUE(d);
    EXPECT_EQ(*d, 4u);
    auto g2 = co_await env.svc->get(p2->token);
    CO_ASSERT_TRUE(g2);
    EXPECT_FALSE(g2->has_value());
    co_await env.client->shutdown(1s);
  });
}

// 14.7: a TOTP step is accepted once, atomically (many concurrent claims:
// exactly one wins), by any service instance; the marker lives in the
// session key space (never under the cache's keys) with a bounded TTL.
TEST_F(SessionRedis, TotpStepIsClaimedExactlyOnce) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto a = co_await make_env(io, opts());
    auto b = co_await make_env(io, opts());
    // Named locals: g++ 12 and temporaries inside co_await (README).
    const TenantId aurum = T("aurum");
    const UserId alice = U("alice"), bob = U("bob"), carol = U("carol");
    auto first = co_await a.svc->claim_totp_step(aurum, alice, 1000, 120s);
    CO_ASSERT_TRUE(first);
    EXPECT_TRUE(*first);
    auto replay = co_await b.svc->claim_totp_step(aurum, alice, 1000, 120s);
    CO_ASSERT_TRUE(replay);
    EXPECT_FALSE(*replay);
    // Another step, another user: independent.
    auto other_step = co_await b.svc->claim_totp_step(aurum, alice, 1001, 120s);
    auto other_user = co_await b.svc->claim_totp_step(aurum, bob, 1000, 120s);
    CO_ASSERT_TRUE(other_step && other_user);
    EXPECT_TRUE(*other_step);
    EXPECT_TRUE(*other_user);
    const auto key = a.svc->keys().totp_used(T("aurum"), U("alice"), 1000);
    EXPECT_EQ(key.rfind(a.svc->keys().prefix() + "sess:", 0), 0u) << key;
    EXPECT_EQ(key.find("cache"), std::string::npos) << key;
    auto pttl = std::stoll(g_srv->cli({"PTTL", key}));
    EXPECT_GT(pttl, 0);
    EXPECT_LE(pttl, 120000);
    // 50 concurrent claims of one step over two connections: one winner.
    int done = 0, wins = 0, losses = 0, errors = 0;
    for (int i = 0; i < 50; ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            auto& svc = i % 2 ? *a.svc : *b.svc;
            auto r = co_await svc.claim_totp_step(aurum, carol, 77, 120s);
            if (!r)
              ++errors;
            else if (*r)
              ++wins;
            else
              ++losses;
            ++done;
          },
          asio::detached);
    }
    while (done < 50) co_await co_sleep(5ms);
    EXPECT_EQ(wins, 1);
    EXPECT_EQ(losses, 49);
    EXPECT_EQ(errors, 0);
    co_await a.client->shutdown(1s);
    co_await b.client->shutdown(1s);
  });
}

// 14.7: when Redis cannot store the marker (maxmemory reached under
// noeviction: -OOM), the claim is an unavailability error, never a success.
TEST_F(SessionRedis, TotpClaimFailsClosedWhenRedisCannotStoreTheMarker) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    g_srv->cli({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
    g_srv->cli({"CONFIG", "SET", "maxmemory", "1"});
    const TenantId aurum = T("aurum");
    const UserId alice = U("alice");
    auto r = co_await env.svc->claim_totp_step(aurum, alice, 5, 120s);
    g_srv->cli({"CONFIG", "SET", "maxmemory", "0"});
    CO_ASSERT_FALSE(r);
    EXPECT_TRUE(jeweler::is_unavailable(r.error())) << r.error().message();
    EXPECT_EQ(g_srv->cli({"EXISTS", env.svc->keys().totp_used(T("aurum"), U("alice"), 5)}), "0");
    // Once Redis can store it again, the step is claimable (it was never used).
    auto ok = co_await env.svc->claim_totp_step(aurum, alice, 5, 120s);
    CO_ASSERT_TRUE(ok);
    EXPECT_TRUE(*ok);
    co_await env.client->shutdown(1s);
  });
}

// 14.9: a user agent longer than the limit that ends in a multi-byte
// character: login stores it cut at a character boundary, and the same
// header later matches it (no "user agent changed", no invalid UTF-8).
TEST_F(SessionRedis, LongMultiByteUserAgentMatchesItselfLater) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto env = co_await make_env(io, opts());
    // 511 ASCII bytes + "é" (2 bytes): 513 bytes, the limit (512) falls inside "é".
    const std::string ua = std::string(511, 'a') + "\xC3\xA9";
    auto in = login("aurum", "alice", ua);
    auto c = co_await env.svc->create(in);
    CO_ASSERT_TRUE(c);
    EXPECT_EQ(c->session.device.user_agent, std::string(511, 'a'));
    for (int i = 0; i < 2; ++i) {  // the script path, then the quick path
      auto seen = DeviceSeen{ua, "10.0.0.1"};
      auto g = co_await env.svc->get(c->token, seen);
      CO_ASSERT_TRUE(g && g->has_value());
      EXPECT_FALSE((*g)->user_agent_changed);
    }
    // Invalid bytes are stored as U+FFFD, never as they came.
    auto bad = login("aurum", "bob", "agent \xFF\xFE/1.0");
    auto b = co_await env.svc->create(bad);
    CO_ASSERT_TRUE(b);
    EXPECT_EQ(b->session.device.user_agent, "agent \xEF\xBF\xBD\xEF\xBF\xBD/1.0");
    auto seen = DeviceSeen{"agent \xFF\xFE/1.0", "10.0.0.1"};
    auto g = co_await env.svc->get(b->token, seen);
    CO_ASSERT_TRUE(g && g->has_value());
    EXPECT_FALSE((*g)->user_agent_changed);
    co_await env.client->shutdown(1s);
  });
}

// Redis down must be a clear "unavailable" error, never "no session".
TEST(SessionRedisDown, KilledRedisIsUnavailableNeverNoSession) {
  RedisServer srv;  // appendonly: the data survives the restart
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.command_timeout = 300ms;
    auto client = redis::make_client(io.get_executor(), cfg);
    co_await client->wait_ready(5s);
    auto stats = std::make_shared<Stats>();
    SessionService svc(*client, opts(), stats);
    auto arg39 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await svc.create(arg39);
    CO_ASSERT_TRUE(c);
    srv.kill9();
    auto expect_unavailable = [](const boost::system::error_code& ec, const char* what) {
      EXPECT_TRUE(jeweler::is_unavailable(ec)) << what << ": " << ec.message();
    };
    auto g = co_await svc.get(c->token);
    CO_ASSERT_FALSE(g);
    expect_unavailable(g.error(), "get");
    auto arg40 =
        DeviceSeen{"Mozilla/5.0 test", "10.0.0.1"};  // a local: g++ 12 co_await temporary bug
    auto g2 = co_await svc.get(c->token, arg40);
    CO_ASSERT_FALSE(g2);
    expect_unavailable(g2.error(), "get+device");
    auto e = co_await svc.extend(c->token);
    CO_ASSERT_FALSE(e);
    expect_unavailable(e.error(), "extend");
    auto arg41 = SessionPatch{.role = "admin"};  // a local: g++ 12 co_await temporary bug
    auto u = co_await svc.update(c->token, arg41);
    CO_ASSERT_FALSE(u);
    expect_unavailable(u.error(), "update");
    auto arg42 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto n = co_await svc.create(arg42);
    CO_ASSERT_FALSE(n);
    expect_unavailable(n.error(), "create");
    auto r = co_await svc.rotate(c->token);
    CO_ASSERT_FALSE(r);
    expect_unavailable(r.error(), "rotate");
    auto d = co_await svc.destroy(c->token);
    CO_ASSERT_FALSE(d);
    expect_unavailable(d.error(), "destroy");
    auto di = co_await svc.destroy_by_id(T("aurum"), U("alice"), c->session.id);
    CO_ASSERT_FALSE(di);
    expect_unavailable(di.error(), "destroy_by_id");
    auto da = co_await svc.destroy_all(T("aurum"), U("alice"));
    CO_ASSERT_FALSE(da);
    expect_unavailable(da.error(), "destroy_all");
    auto l = co_await svc.list(T("aurum"), U("alice"));
    CO_ASSERT_FALSE(l);
    expect_unavailable(l.error(), "list");
    auto ts = co_await svc.tenant_stats(T("aurum"));
    CO_ASSERT_FALSE(ts);
    expect_unavailable(ts.error(), "tenant_stats");
    auto as = co_await svc.active_sessions();
    CO_ASSERT_FALSE(as);
    expect_unavailable(as.error(), "active_sessions");
    EXPECT_GE(stats->snapshot().errors, 10u);
    EXPECT_EQ(stats->snapshot().misses, 0u);  // never counted as "no session"
    // Back up: the same session works again, no restart of the service.
    srv.start();
    EXPECT_TRUE(co_await client->wait_ready(10s));
    auto back = co_await svc.get(c->token);
    CO_ASSERT_TRUE(back);
    EXPECT_TRUE(back->has_value());
    co_await client->shutdown(1s);
  });
}

// A stalled server (SIGSTOP) gives a timeout that is also "unavailable".
TEST(SessionRedisDown, StalledRedisIsUnavailable) {
  RedisServer srv;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.command_timeout = 300ms;
    cfg.health_interval = 60s;
    auto client = redis::make_client(io.get_executor(), cfg);
    co_await client->wait_ready(5s);
    SessionService svc(*client, opts(), std::make_shared<Stats>());
    auto arg43 = login("aurum", "alice");  // a local: g++ 12 co_await temporary bug
    auto c = co_await svc.create(arg43);
    CO_ASSERT_TRUE(c);
    srv.pause();
    auto g = co_await svc.get(c->token);
    srv.resume();
    CO_ASSERT_FALSE(g);
    EXPECT_TRUE(jeweler::is_unavailable(g.error())) << g.error().message();
    EXPECT_TRUE(co_await client->wait_ready(10s));
    co_await client->shutdown(1s);
  });
}
