// The cache service against a real redis-server started by the harness.
#include <jeweler/cache/cache.hpp>

#include "co_test.hpp"
#include "redis_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>

using namespace jeweler;
using namespace jeweler::cache;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
using test::co_sleep;
using test::RedisServer;
using test::run_co;

namespace {

RedisServer& shared_server() {
  static RedisServer server;
  return server;
}

const TenantId kA = TenantId::from("aurum");
const TenantId kB = TenantId::from("argent");

/// A client + service on the current io_context.
struct Env {
  std::unique_ptr<redis::Client> client;
  std::shared_ptr<Stats> stats = std::make_shared<Stats>();
  std::shared_ptr<Options> options = std::make_shared<Options>();
  std::unique_ptr<CacheService> cache;

  static asio::awaitable<std::unique_ptr<Env>> make(asio::io_context& io, redis::Config cfg,
                                                    std::shared_ptr<Stats> stats = nullptr,
                                                    std::shared_ptr<Options> options = nullptr) {
    auto e = std::make_unique<Env>();
    if (stats) e->stats = stats;
    if (options) e->options = options;
    e->client = redis::make_client(io.get_executor(), std::move(cfg));
    if (!co_await e->client->wait_ready(5s)) throw std::runtime_error("redis not ready");
    e->cache = std::make_unique<CacheService>(*e->client, e->options, e->stats);
    co_return e;
  }
  asio::awaitable<void> close() { co_await client->shutdown(1s); }
};

/// Runs `n` copies of `body(i)` concurrently and waits for all.
asio::awaitable<void> concurrently(int n, std::function<asio::awaitable<void>(int)> body) {
  auto ex = co_await asio::this_coro::executor;
  int left = n;
  asio::steady_timer done(ex, asio::steady_timer::time_point::max());
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(ex, body(i), [&](std::exception_ptr e) {
      if (e) ADD_FAILURE() << "concurrent body threw";
      if (--left == 0) done.cancel();
    });
  }
  boost::system::error_code ec;
  co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

Loader value_loader(std::string v, int* runs, std::chrono::milliseconds delay = 0ms) {
  return [v, runs, delay]() -> asio::awaitable<Result<std::string>> {
    ++*runs;
    if (delay.count() > 0) co_await co_sleep(delay);
    co_return v;
  };
}

class Cache : public ::testing::Test {
 protected:
  void SetUp() override { shared_server().flushall(); }
  RedisServer& srv() { return shared_server(); }
};

}  // namespace

TEST_F(Cache, RawRoundTripAndKeyLayout) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    EXPECT_FALSE((co_await c.get(kA, "customer", "42")).value().has_value());
    EXPECT_TRUE(co_await c.set(kA, "customer", "42", "hello"));
    EXPECT_EQ((co_await c.get(kA, "customer", "42")).value(), "hello");
    EXPECT_EQ(c.redis_key(kA, "customer", "42"), "jeweler:cache:{aurum}:customer:42");
    EXPECT_EQ(srv().cli({"GET", "jeweler:cache:{aurum}:customer:42"}), "hello");
    EXPECT_TRUE((co_await c.exists(kA, "customer", "42")).value());

    std::string bin("a\0b\r\n\xff", 6);
    EXPECT_TRUE(co_await c.set(kA, "blob", "bin", bin));
    EXPECT_EQ((co_await c.get(kA, "blob", "bin")).value(), bin);

    EXPECT_TRUE((co_await c.del(kA, "customer", "42")).value());
    EXPECT_FALSE((co_await c.del(kA, "customer", "42")).value());
    EXPECT_FALSE((co_await c.exists(kA, "customer", "42")).value());

    std::vector<std::pair<std::string, std::string>> entries = {{"1", "one"}, {"2", "two"}};
    EXPECT_TRUE(co_await c.mset(kA, "product", entries));
    std::vector<std::string> want{"1", "x", "2"};
    auto m = (co_await c.mget(kA, "product", want)).value();
    CO_ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[0], "one");
    EXPECT_FALSE(m[1].has_value());
    EXPECT_EQ(m[2], "two");
    EXPECT_TRUE((co_await c.mget(kA, "product", std::vector<std::string>{})).value().empty());
    co_await e->close();
  });
}

TEST_F(Cache, TypedRoundTripsWithNamespaceDefaultTtls) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    KpiData k{15000, 3000, 5, 250.5, 3, 2, 8, 1700000000000};
    EXPECT_FALSE((co_await c.get_kpi(kA)).value().has_value());
    EXPECT_TRUE(co_await c.set_kpi(kA, k));
    EXPECT_EQ((co_await c.get_kpi(kA)).value(), k);

    GoldPrice g{"USD", {{"24k", 64.0}, {"22k", 58.67}}, 1700000000001};
    EXPECT_TRUE(co_await c.set_gold_price(kA, g));
    EXPECT_EQ((co_await c.get_gold_price(kA)).value(), g);

    auto cust = json::parse(R"({"id":"c1","name":"Ann","email":"a@x.io"})");
    auto prod = json::parse(R"({"id":"p1","sku":"R-1","karat":22,"stock":4})");
    auto inv = json::parse(R"({"id":"i1","total":99.5,"status":"due"})");
    EXPECT_TRUE(co_await c.set_customer(kA, "c1", cust));
    EXPECT_TRUE(co_await c.set_product(kA, "p1", prod));
    EXPECT_TRUE(co_await c.set_invoice(kA, "i1", inv));
    EXPECT_EQ((co_await c.get_customer(kA, "c1")).value(), cust);
    EXPECT_EQ((co_await c.get_product(kA, "p1")).value(), prod);
    EXPECT_EQ((co_await c.get_invoice(kA, "i1")).value(), inv);

    auto user = UserId::from("owner@aurum.example");
    Permissions p{"invoice:create", "admin"};
    EXPECT_TRUE(co_await c.set_permissions(kA, user, p));
    EXPECT_EQ((co_await c.get_permissions(kA, user)).value(), p);

    struct Want {
      std::string_view ns, key;
      std::chrono::milliseconds ttl;
    };
    std::vector<Want> wants{
        Want{ns::kpi, "dashboard", 5min}, Want{ns::gold_price, "current", 60s},
        Want{ns::customer, "c1", 1h},     Want{ns::product, "p1", 30min},
        Want{ns::invoice, "i1", 10min},   Want{ns::permissions, "owner@aurum.example", 15min}};
    for (const auto& w : wants) {
      auto t = (co_await c.ttl(kA, w.ns, w.key)).value();
      CO_ASSERT_TRUE(t.has_value());
      EXPECT_LE(*t, w.ttl) << w.ns;
      EXPECT_GT(*t, w.ttl - 10s) << w.ns;
    }
    // A JSON get of something that is not JSON is a miss, counted as an error.
    EXPECT_TRUE(co_await c.set(kA, ns::customer, "bad", "{not json"));
    auto before = e->stats->by_namespace()["customer"].errors;
    EXPECT_FALSE((co_await c.get_customer(kA, "bad")).value().has_value());
    EXPECT_EQ(e->stats->by_namespace()["customer"].errors, before + 1);
    co_await e->close();
  });
}

TEST_F(Cache, TtlExpiryAndManagement) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto opts = std::make_shared<Options>();
    opts->namespace_ttl["short"] = 200ms;
    auto e = co_await Env::make(io, srv().config(), nullptr, opts);
    auto& c = *e->cache;
    EXPECT_TRUE(co_await c.set(kA, "x", "explicit", "v", 150ms));
    EXPECT_TRUE(co_await c.set(kA, "short", "default", "v"));
    EXPECT_TRUE(co_await c.set(kA, "x", "forever", "v", Ttl::persistent()));
    EXPECT_TRUE(co_await c.set(kA, "x", "long", "v", 1h));
    auto t = (co_await c.ttl(kA, "x", "explicit")).value();
    CO_ASSERT_TRUE(t);
    EXPECT_LE(*t, 150ms);
    EXPECT_EQ((co_await c.ttl(kA, "x", "forever")).value(), std::chrono::milliseconds::max());
    EXPECT_FALSE((co_await c.ttl(kA, "x", "nothing")).value().has_value());
    // Unknown namespaces get Options::default_ttl, never "no expiry".
    EXPECT_TRUE(co_await c.set(kA, "other", "k", "v"));
    auto dt = (co_await c.ttl(kA, "other", "k")).value();
    CO_ASSERT_TRUE(dt);
    EXPECT_LE(*dt, opts->default_ttl);
    EXPECT_GT(*dt, opts->default_ttl - 10s);

    co_await co_sleep(450ms);
    EXPECT_FALSE((co_await c.get(kA, "x", "explicit")).value().has_value());
    EXPECT_FALSE((co_await c.get(kA, "short", "default")).value().has_value());
    EXPECT_TRUE((co_await c.get(kA, "x", "forever")).value().has_value());

    // expire / touch
    EXPECT_TRUE((co_await c.expire(kA, "x", "long", 5s)).value());
    auto t2 = (co_await c.ttl(kA, "x", "long")).value();
    CO_ASSERT_TRUE(t2);
    EXPECT_LE(*t2, 5s);
    EXPECT_TRUE((co_await c.touch(kA, "x", "long")).value());
    auto t3 = (co_await c.ttl(kA, "x", "long")).value();
    CO_ASSERT_TRUE(t3);
    EXPECT_GT(*t3, opts->default_ttl - 10s);
    EXPECT_TRUE((co_await c.expire(kA, "x", "long", Ttl::persistent())).value());
    EXPECT_EQ((co_await c.ttl(kA, "x", "long")).value(), std::chrono::milliseconds::max());
    EXPECT_FALSE((co_await c.expire(kA, "x", "nothing", 5s)).value());
    EXPECT_FALSE((co_await c.touch(kA, "x", "nothing")).value());
    co_await e->close();
  });
}

TEST_F(Cache, RejectsInvalidArguments) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto opts = std::make_shared<Options>();
    opts->max_value_bytes = 10;
    auto e = co_await Env::make(io, srv().config(), nullptr, opts);
    auto& c = *e->cache;
    auto inv = make_error_code(errc::invalid_argument);
    EXPECT_EQ((co_await c.get(kA, "Bad NS", "k")).error(), inv);
    EXPECT_EQ((co_await c.get(kA, "ns", "k*")).error(), inv);
    EXPECT_EQ((co_await c.set(kA, "ns", "k", "01234567890")).error(), inv);
    EXPECT_EQ((co_await c.del(kA, "ns", "")).error(), inv);
    EXPECT_EQ((co_await c.invalidate_pattern(kA, "*}*")).error(), inv);
    EXPECT_EQ((co_await c.increment(kA, "ns", "a b")).error(), inv);
    std::vector<std::string> bad_keys{"ok", "not ok"};
    EXPECT_EQ((co_await c.mget(kA, "ns", bad_keys)).error(), inv);
    EXPECT_EQ((co_await c.get_or_set(kA, "ns", "k", Loader{})).error(), inv);
    EXPECT_EQ(srv().cli({"DBSIZE"}), "0");
    co_await e->close();
  });
}

TEST_F(Cache, TenantIsolationAndGlobEscapes) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    auto ab = TenantId::from("ab"), abc = TenantId::from("abc");
    std::vector<const TenantId*> all{&kA, &kB, &ab, &abc}, others{&kA, &kB, &abc}, rest{&kB, &abc};
    for (const auto* t : all) {
      EXPECT_TRUE(co_await c.set(*t, "customer", "1", t->str()));
      EXPECT_TRUE(co_await c.set(*t, "kpi", "dashboard", t->str()));
    }
    // Same namespace and key, separate values.
    EXPECT_EQ((co_await c.get(kA, "customer", "1")).value(), "aurum");
    EXPECT_EQ((co_await c.get(kB, "customer", "1")).value(), "argent");

    // Patterns with glob metacharacters stay inside the tenant.
    std::vector<std::string> patterns{"*", "*:*", "?*",     "[a-z]*",   "*\\",   "\\*",
                                      "[", "*]*", "*[^x]*", "*argent*", "*abc*", "**"};
    for (const auto& pat : patterns) {
      auto r = co_await c.invalidate_pattern(ab, pat);
      EXPECT_TRUE(r) << pat;
      for (const auto* t : others)
        EXPECT_TRUE((co_await c.exists(*t, "customer", "1")).value()) << pat << " " << t->str();
      EXPECT_TRUE(co_await c.set(ab, "customer", "1", "ab"));
      EXPECT_TRUE(co_await c.set(ab, "kpi", "dashboard", "ab"));
    }
    // A namespace pattern removes that namespace only.
    EXPECT_EQ((co_await c.invalidate_pattern(kA, "customer:*")).value(), 1u);
    EXPECT_FALSE((co_await c.exists(kA, "customer", "1")).value());
    EXPECT_TRUE((co_await c.exists(kA, "kpi", "dashboard")).value());
    // Tenant invalidation removes all of the tenant, nothing else.
    EXPECT_EQ((co_await c.invalidate_tenant(ab)).value(), 2u);
    EXPECT_FALSE((co_await c.exists(ab, "kpi", "dashboard")).value());
    for (const auto* t : rest)
      EXPECT_TRUE((co_await c.exists(*t, "customer", "1")).value()) << t->str();
    EXPECT_EQ((co_await c.keys_held(kB)).value(), 2u);
    EXPECT_EQ((co_await c.keys_held(ab)).value(), 0u);
    co_await e->close();
  });
}

TEST_F(Cache, KeyPrefixWithGlobCharactersIsMatchedLiterally) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv().config();
    cfg.key_prefix = "j*[?]:";
    auto e = co_await Env::make(io, cfg);
    auto& c = *e->cache;
    EXPECT_TRUE(co_await c.set(kA, "customer", "1", "mine"));
    // Keys the unescaped glob "j*[?]:cache:{aurum}:*" would match.
    srv().cli({"SET", "jx?:cache:{aurum}:customer:1", "foreign"});
    srv().cli({"SET", "jeweler?:cache:{aurum}:customer:2", "foreign"});
    EXPECT_EQ((co_await c.invalidate_tenant(kA)).value(), 1u);
    EXPECT_EQ(srv().cli({"GET", "jx?:cache:{aurum}:customer:1"}), "foreign");
    EXPECT_EQ(srv().cli({"GET", "jeweler?:cache:{aurum}:customer:2"}), "foreign");
    EXPECT_EQ(srv().cli({"EXISTS", "j*[?]:cache:{aurum}:customer:1"}), "0");
    co_await e->close();
  });
}

TEST_F(Cache, GetOrSetHundredConcurrentCallersRunTheLoaderOnce) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    int runs = 0;
    std::map<Source, int> sources;
    int same = 0;
    co_await concurrently(100, [&](int) -> asio::awaitable<void> {
      auto r = co_await c.get_or_set(kA, "kpi", "dashboard", value_loader("v1", &runs, 100ms));
      if (r) {
        sources[r->source]++;
        if (r->value == "v1") ++same;
      }
    });
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(same, 100);
    EXPECT_EQ(sources[Source::loaded], 1);
    EXPECT_EQ(sources[Source::coalesced], 99);
    // Now a hit, and the loader does not run.
    auto r = co_await c.get_or_set(kA, "kpi", "dashboard", value_loader("v2", &runs));
    CO_ASSERT_TRUE(r);
    EXPECT_TRUE(r->hit());
    EXPECT_EQ(r->value, "v1");
    EXPECT_EQ(runs, 1);
    auto t = (co_await c.ttl(kA, "kpi", "dashboard")).value();
    CO_ASSERT_TRUE(t);
    EXPECT_LE(*t, 5min);
    // Per-call TTL.
    auto r2 = co_await c.get_or_set(kA, "kpi", "other", value_loader("v", &runs), 30s);
    CO_ASSERT_TRUE(r2);
    EXPECT_LE((co_await c.ttl(kA, "kpi", "other")).value().value(), 30s);
    // No lock left behind.
    EXPECT_EQ(srv().cli({"EXISTS", "jeweler:cachelock:{aurum}:kpi:dashboard"}), "0");
    co_await e->close();
  });
}

TEST_F(Cache, GetOrSetAcrossInstancesWaitsForTheLockHolder) {
  // Two services on two connections behave like two processes: the Redis lock
  // is their only coordination.
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto a = co_await Env::make(io, srv().config());
    auto b = co_await Env::make(io, srv().config());
    int runs = 0;
    std::vector<Source> got;
    std::vector<std::string> values;
    co_await concurrently(20, [&](int i) -> asio::awaitable<void> {
      auto& svc = (i % 2) ? *a->cache : *b->cache;
      if (i >= 2) co_await co_sleep(20ms);  // let the two leaders race first
      auto r = co_await svc.get_or_set(kA, "customer", "7", value_loader("c7", &runs, 400ms));
      if (r) {
        got.push_back(r->source);
        values.push_back(r->value);
      }
    });
    EXPECT_EQ(runs, 1);
    CO_ASSERT_EQ(values.size(), 20u);
    for (auto& v : values) EXPECT_EQ(v, "c7");
    EXPECT_EQ(std::count(got.begin(), got.end(), Source::loaded), 1);
    EXPECT_GE(std::count(got.begin(), got.end(), Source::waited), 1);
    co_await a->close();
    co_await b->close();
  });
}

TEST_F(Cache, LoaderFailureCachesNothingAndReachesEveryWaiter) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto a = co_await Env::make(io, srv().config());
    auto b = co_await Env::make(io, srv().config());
    int runs = 0;
    Loader failing = [&]() -> asio::awaitable<Result<std::string>> {
      ++runs;
      co_await co_sleep(300ms);
      co_return make_error_code(errc::not_found);
    };
    int errors = 0;
    co_await concurrently(10, [&](int i) -> asio::awaitable<void> {
      auto& svc = (i % 2) ? *a->cache : *b->cache;
      if (i >= 2) co_await co_sleep(20ms);
      auto r = co_await svc.get_or_set(kA, "customer", "9", failing);
      if (!r && r.error() == make_error_code(errc::not_found)) ++errors;
    });
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(errors, 10);
    EXPECT_FALSE((co_await a->cache->exists(kA, "customer", "9")).value());
    // A later call runs the loader again (nothing negative was cached).
    int ok_runs = 0;
    auto r = co_await b->cache->get_or_set(kA, "customer", "9", value_loader("v", &ok_runs));
    CO_ASSERT_TRUE(r);
    EXPECT_EQ(r->source, Source::loaded);
    EXPECT_EQ(ok_runs, 1);

    // A loader that throws is an internal error, not a crash.
    Loader throwing = []() -> asio::awaitable<Result<std::string>> {
      throw std::runtime_error("database exploded");
      co_return std::string();
    };
    auto t = co_await a->cache->get_or_set(kA, "customer", "10", throwing);
    CO_ASSERT_FALSE(t);
    EXPECT_EQ(t.error(), make_error_code(errc::internal));
    EXPECT_FALSE((co_await a->cache->exists(kA, "customer", "10")).value());
    co_await a->close();
    co_await b->close();
  });
}

TEST_F(Cache, InvalidationDuringALoadPreventsStoringTheStaleValue) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    int runs = 0;
    // del while the loader runs
    co_await concurrently(2, [&](int i) -> asio::awaitable<void> {
      if (i == 0) {
        auto r = co_await c.get_or_set(kA, "customer", "1", value_loader("old", &runs, 200ms));
        EXPECT_TRUE(r);
        if (r) {
          EXPECT_EQ(r->value, "old");  // the caller still gets its value
        }
      } else {
        co_await co_sleep(50ms);
        EXPECT_TRUE(co_await c.del(kA, "customer", "1"));
      }
    });
    EXPECT_FALSE((co_await c.exists(kA, "customer", "1")).value());
    // pattern invalidation while the loader runs
    co_await concurrently(2, [&](int i) -> asio::awaitable<void> {
      if (i == 0) {
        EXPECT_TRUE(co_await c.get_or_set(kA, "customer", "2", value_loader("old", &runs, 200ms)));
      } else {
        co_await co_sleep(50ms);
        EXPECT_TRUE(co_await c.invalidate_pattern(kA, "customer:*"));
      }
    });
    EXPECT_FALSE((co_await c.exists(kA, "customer", "2")).value());
    // a write-through set while the loader runs wins over the loader's value
    co_await concurrently(2, [&](int i) -> asio::awaitable<void> {
      if (i == 0) {
        EXPECT_TRUE(co_await c.get_or_set(kA, "customer", "3", value_loader("old", &runs, 200ms)));
      } else {
        co_await co_sleep(50ms);
        EXPECT_TRUE(co_await c.set(kA, "customer", "3", "new"));
      }
    });
    EXPECT_EQ((co_await c.get(kA, "customer", "3")).value(), "new");
    // a caller arriving after a write does not join the load begun before it
    co_await concurrently(2, [&](int i) -> asio::awaitable<void> {
      if (i == 0) {
        auto r = co_await c.get_or_set(kA, "customer", "5", value_loader("old", &runs, 200ms));
        EXPECT_TRUE(r);
      } else {
        co_await co_sleep(50ms);
        EXPECT_TRUE(co_await c.del(kA, "customer", "5"));
        auto r = co_await c.get_or_set(kA, "customer", "5", value_loader("new", &runs, 10ms));
        EXPECT_TRUE(r);
        if (r) {
          EXPECT_EQ(r->value, "new");
          EXPECT_EQ(r->source, Source::loaded);
        }
      }
    });
    EXPECT_EQ((co_await c.get(kA, "customer", "5")).value(), "new");
    // without interference the value is stored
    EXPECT_TRUE(co_await c.get_or_set(kA, "customer", "4", value_loader("v", &runs)));
    EXPECT_TRUE((co_await c.exists(kA, "customer", "4")).value());
    co_await e->close();
  });
}

TEST_F(Cache, TypedGetOrSet) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    int runs = 0;
    KpiData k{1, 2, 3, 4, 5, 6, 7, 8};
    KpiLoader kl = [&]() -> asio::awaitable<Result<KpiData>> {
      ++runs;
      co_return k;
    };
    auto r1 = co_await c.get_or_set_kpi(kA, kl);
    CO_ASSERT_TRUE(r1);
    EXPECT_FALSE(r1->hit());
    auto r2 = co_await c.get_or_set_kpi(kA, kl);
    CO_ASSERT_TRUE(r2);
    EXPECT_TRUE(r2->hit());
    EXPECT_EQ(r2->value, k);
    EXPECT_EQ(runs, 1);
    EXPECT_TRUE((co_await c.invalidate_kpi(kA)).value());
    EXPECT_FALSE((co_await c.get_or_set_kpi(kA, kl)).value().hit());
    EXPECT_EQ(runs, 2);

    // A corrupt cached entry is dropped and reloaded.
    EXPECT_TRUE(co_await c.set(kA, ns::kpi, "dashboard", R"({"todaySales":"oops"})"));
    auto r3 = co_await c.get_or_set_kpi(kA, kl);
    CO_ASSERT_TRUE(r3);
    EXPECT_EQ(r3->value, k);
    EXPECT_EQ(runs, 3);

    GoldPriceLoader gl = []() -> asio::awaitable<Result<GoldPrice>> {
      co_return GoldPrice{"EUR", {{"24k", 60.0}}, 5};
    };
    EXPECT_EQ((co_await c.get_or_set_gold_price(kA, gl)).value().value.currency, "EUR");
    EXPECT_TRUE((co_await c.get_or_set_gold_price(kA, gl)).value().hit());

    auto user = UserId::from("u1");
    PermissionsLoader pl = []() -> asio::awaitable<Result<Permissions>> {
      co_return Permissions{"a", "b"};
    };
    EXPECT_EQ((co_await c.get_or_set_permissions(kA, user, pl)).value().value.size(), 2u);
    EXPECT_TRUE((co_await c.get_or_set_permissions(kA, user, pl)).value().hit());

    JsonLoader jl = []() -> asio::awaitable<Result<json::value>> {
      co_return json::parse(R"({"id":"p9"})");
    };
    auto j = co_await c.get_or_set_json(kA, ns::product, "p9", jl);
    CO_ASSERT_TRUE(j);
    EXPECT_EQ(j->value.as_object().at("id").as_string(), "p9");
    co_await e->close();
  });
}

// The prefetched KPI read (kpi_read sent in the caller's pipeline, kpi_hit
// on its reply): every hit counts, new bytes give the new value, bytes that
// do not parse are a miss even after a good hit, tenants do not mix.
TEST_F(Cache, PrefetchedKpiHitsFollowTheStoredBytes) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    auto read = [&](const TenantId& t) -> asio::awaitable<std::optional<KpiData>> {
      auto r = co_await e->client->exec(c.kpi_read(t));
      if (!r) co_return std::nullopt;
      auto hit = c.kpi_hit(t, *r);
      if (!hit) co_return std::nullopt;
      EXPECT_TRUE(hit->hit());
      co_return hit->value;
    };
    KpiData a{1, 2, 3, 4, 5, 6, 7, 8}, b{9, 2, 3, 4, 5, 6, 7, 8};
    EXPECT_FALSE(co_await read(kA));  // nothing cached
    EXPECT_TRUE(co_await c.set_kpi(kA, a));
    EXPECT_TRUE(co_await c.set_kpi(kB, b));
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(co_await read(kA), a);
      EXPECT_EQ(co_await read(kB), b);
    }
    EXPECT_TRUE(co_await c.set_kpi(kA, b));
    EXPECT_EQ(co_await read(kA), b);
    EXPECT_TRUE(co_await c.set(kA, ns::kpi, "dashboard", R"({"todaySales":"oops"})"));
    EXPECT_FALSE(co_await read(kA));
    EXPECT_EQ((co_await c.tenant_stats(kA)).value().total.hits, 4u);
    EXPECT_EQ((co_await c.tenant_stats(kB)).value().total.hits, 3u);
    co_await e->close();
  });
}

TEST_F(Cache, CountersAreExactUnderConcurrencyAndTtlIsSetOnCreation) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    std::vector<std::unique_ptr<Env>> envs;
    for (int i = 0; i < 4; ++i) envs.push_back(co_await Env::make(io, srv().config()));
    int ok = 0;
    co_await concurrently(1000, [&](int i) -> asio::awaitable<void> {
      auto r = co_await envs[i % 4]->cache->increment(kA, "counter", "views", 1, 60s);
      if (r) ++ok;
    });
    EXPECT_EQ(ok, 1000);
    auto& c = *envs[0]->cache;
    EXPECT_EQ((co_await c.counter(kA, "counter", "views")).value(), 1000);
    auto t = (co_await c.ttl(kA, "counter", "views")).value();
    CO_ASSERT_TRUE(t);
    EXPECT_LE(*t, 60s);
    // Later increments leave the TTL alone, whatever they pass.
    EXPECT_EQ((co_await c.increment(kA, "counter", "views", 5, 1h)).value(), 1005);
    EXPECT_LE((co_await c.ttl(kA, "counter", "views")).value().value(), 60s);
    EXPECT_EQ((co_await c.decrement(kA, "counter", "views", 10)).value(), 995);
    EXPECT_EQ((co_await c.decrement(kA, "counter", "fresh", 2)).value(), -2);
    EXPECT_EQ((co_await c.counter(kA, "counter", "none")).value(), 0);
    // Counters of another tenant are separate.
    EXPECT_EQ((co_await c.counter(kB, "counter", "views")).value(), 0);
    // Not a number: refused, value untouched.
    EXPECT_TRUE(co_await c.set(kA, "counter", "text", "abc"));
    EXPECT_EQ((co_await c.increment(kA, "counter", "text")).error(),
              make_error_code(errc::invalid_argument));
    EXPECT_EQ((co_await c.get(kA, "counter", "text")).value(), "abc");
    for (auto& e : envs) co_await e->close();
  });
}

TEST_F(Cache, StatisticsMove) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    int runs = 0;
    (void)co_await c.get(kA, "customer", "1");                              // miss
    EXPECT_TRUE(co_await c.set(kA, "customer", "1", "v"));                  // set
    (void)co_await c.get(kA, "customer", "1");                              // hit
    (void)co_await c.get(kA, "customer", "1");                              // hit
    (void)co_await c.get_or_set(kA, "kpi", "d", value_loader("k", &runs));  // miss + load + set
    (void)co_await c.get_or_set(kA, "kpi", "d", value_loader("k", &runs));  // hit
    EXPECT_TRUE(co_await c.del(kA, "customer", "1"));                       // delete
    EXPECT_TRUE(co_await c.set(kA, "product", "1", "v"));
    EXPECT_TRUE(co_await c.set(kA, "product", "2", "v"));
    EXPECT_EQ((co_await c.invalidate_tenant(kA)).value(), 3u);  // kpi:d, product:1, product:2
    (void)co_await c.get(kB, "customer", "1");                  // B miss

    auto by = e->stats->by_namespace();
    EXPECT_EQ(by["customer"].hits, 2u);
    EXPECT_EQ(by["customer"].misses, 2u);
    EXPECT_EQ(by["customer"].sets, 1u);
    EXPECT_EQ(by["customer"].deletes, 1u);
    EXPECT_DOUBLE_EQ(by["customer"].hit_ratio(), 0.5);
    EXPECT_EQ(by["kpi"].hits, 1u);
    EXPECT_EQ(by["kpi"].misses, 1u);
    EXPECT_EQ(by["kpi"].sets, 1u);
    EXPECT_EQ(by["kpi"].loads, 1u);
    EXPECT_EQ(by["kpi"].invalidations, 1u);
    EXPECT_EQ(by["product"].invalidations, 2u);
    // The tenant's view, from Redis (this instance's deltas written first).
    auto a = (co_await c.tenant_stats(kA)).value();
    EXPECT_EQ(a.total.hits, 3u);
    EXPECT_EQ(a.total.misses, 2u);
    EXPECT_EQ(a.total.sets, 4u);
    EXPECT_EQ(a.total.deletes, 1u);
    EXPECT_EQ(a.total.invalidations, 3u);
    EXPECT_EQ(a.total.loads, 1u);
    EXPECT_EQ(a.by_namespace["customer"].hits, 2u);
    EXPECT_EQ(a.by_namespace["product"].invalidations, 2u);
    EXPECT_EQ(a.keys_held, 0u);
    auto b = (co_await c.tenant_stats(kB)).value();
    EXPECT_EQ(b.total.misses, 1u);
    EXPECT_EQ(b.total.hits, 0u);
    EXPECT_EQ(b.by_namespace.count("kpi"), 0u);
    EXPECT_EQ(e->stats->total().errors, 0u);
    // Read again: nothing counted twice.
    EXPECT_EQ((co_await c.tenant_stats(kA)).value().total, a.total);
    co_await e->close();
  });
}

TEST(CacheOutage, RedisDownFallsBackToTheLoaderAndRecovers) {
  RedisServer own;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, own.config());
    auto& c = *e->cache;
    int runs = 0;
    EXPECT_TRUE(co_await c.set(kA, "customer", "1", "cached"));
    own.kill9();

    auto g = co_await c.get(kA, "customer", "1");
    CO_ASSERT_FALSE(g);  // a miss with an error: the caller can tell
    EXPECT_TRUE(jeweler::is_unavailable(g.error())) << g.error().message();

    for (int i = 0; i < 3; ++i) {
      auto r = co_await c.get_or_set(kA, "customer", "1", value_loader("from-db", &runs));
      CO_ASSERT_TRUE(r);
      EXPECT_EQ(r->value, "from-db");
      EXPECT_EQ(r->source, Source::fallback);
      EXPECT_FALSE(r->hit());
    }
    EXPECT_EQ(runs, 3);
    EXPECT_TRUE(e->stats->degraded());
    EXPECT_EQ(e->stats->by_namespace()["customer"].fallbacks, 3u);
    EXPECT_GE(e->stats->by_namespace()["customer"].errors, 4u);
    // Concurrent fallbacks still share one loader run.
    int shared_runs = 0;
    co_await concurrently(10, [&](int) -> asio::awaitable<void> {
      auto r = co_await c.get_or_set(kA, "customer", "2", value_loader("db2", &shared_runs, 100ms));
      EXPECT_TRUE(r);
    });
    EXPECT_EQ(shared_runs, 1);
    // Other calls report the outage as an error, never as "not found".
    auto inc = co_await c.increment(kA, "counter", "x");
    CO_ASSERT_FALSE(inc);
    EXPECT_TRUE(jeweler::is_unavailable(inc.error()));
    auto inv = co_await c.invalidate_tenant(kA);
    CO_ASSERT_FALSE(inv);
    EXPECT_TRUE(jeweler::is_unavailable(inv.error()));

    own.start();
    EXPECT_TRUE(co_await e->client->wait_ready(10s));
    auto r = co_await c.get_or_set(kA, "customer", "1", value_loader("from-db", &runs));
    CO_ASSERT_TRUE(r);
    EXPECT_EQ(r->source, Source::hit);  // AOF kept the value set before the crash
    EXPECT_EQ(r->value, "cached");
    EXPECT_FALSE(e->stats->degraded());
    co_await e->close();
  });
}

// --- the tenant key index ------------------------------------------------------------

// Every write records its entry in the tenant's index (one script with the
// write), every removal drops it, expired entries are pruned on read, and the
// index key lives as long as its longest-lived entry.
TEST_F(Cache, KeyIndexFollowsEveryWrite) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    const std::string idx = "jeweler:cacheidx:{aurum}";
    auto members = [&] { return srv().cli({"ZCARD", idx}); };
    EXPECT_TRUE(co_await c.set(kA, "customer", "1", "v", 60s));
    std::vector<std::pair<std::string, std::string>> entries = {{"1", "a"}, {"2", "b"}};
    EXPECT_TRUE(co_await c.mset(kA, "product", entries, 120s));
    int runs = 0;
    EXPECT_TRUE(co_await c.get_or_set(kA, "kpi", "dashboard", value_loader("k", &runs), 30s));
    EXPECT_TRUE(co_await c.increment(kA, "counter", "views", 1, 90s));
    EXPECT_TRUE(co_await c.increment(kA, "counter", "views", 1, 90s));  // no second member
    EXPECT_EQ(members(), "5");
    EXPECT_EQ((co_await c.keys_held(kA)).value(), 5u);
    EXPECT_EQ(srv().cli({"ZSCORE", idx, "customer:2"}), "");  // never written
    // The index outlives its longest entry (120 s), never much more.
    auto pttl = std::stoll(srv().cli({"PTTL", idx}));
    EXPECT_GT(pttl, 100000);
    EXPECT_LE(pttl, 120000);
    // The score is the entry's expiry: it follows expire().
    auto before = std::stod(srv().cli({"ZSCORE", idx, "customer:1"}));
    EXPECT_TRUE((co_await c.expire(kA, "customer", "1", 600s)).value());
    auto after = std::stod(srv().cli({"ZSCORE", idx, "customer:1"}));
    EXPECT_GT(after - before, 500000.0);
    EXPECT_GT(std::stoll(srv().cli({"PTTL", idx})), 500000);
    // A persistent entry keeps the index without expiry.
    EXPECT_TRUE(co_await c.set(kA, "blob", "p", "x", Ttl::persistent()));
    EXPECT_EQ(srv().cli({"PTTL", idx}), "-1");
    EXPECT_EQ(srv().cli({"ZSCORE", idx, "blob:p"}), "inf");
    // Removals drop their members.
    EXPECT_TRUE((co_await c.del(kA, "blob", "p")).value());
    EXPECT_TRUE((co_await c.invalidate_kpi(kA)).value());
    EXPECT_EQ(members(), "4");
    // Expired entries are not held, and are pruned from the index on read.
    EXPECT_TRUE(co_await c.set(kA, "customer", "short", "v", 50ms));
    EXPECT_EQ((co_await c.keys_held(kA)).value(), 5u);
    co_await co_sleep(150ms);
    EXPECT_EQ((co_await c.keys_held(kA)).value(), 4u);
    EXPECT_EQ(members(), "4");
    // Another tenant's index is its own.
    EXPECT_TRUE(co_await c.set(kB, "customer", "1", "b"));
    EXPECT_EQ((co_await c.keys_held(kB)).value(), 1u);
    // Emptied: Redis drops the index key.
    EXPECT_EQ((co_await c.invalidate_tenant(kA)).value(), 4u);
    EXPECT_EQ(srv().cli({"EXISTS", idx}), "0");
    EXPECT_EQ((co_await c.keys_held(kA)).value(), 0u);
    EXPECT_EQ((co_await c.keys_held(kB)).value(), 1u);
    co_await e->close();
  });
}

// Entries that expired between a write and the invalidation are not counted
// as removed; the invalidation still leaves the index empty.
TEST_F(Cache, InvalidationCountsOnlyLiveEntries) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    for (int i = 0; i < 300; ++i)  // beyond a listpack: ZSCAN works in batches
      EXPECT_TRUE(co_await c.set(kA, "customer", std::to_string(i), "v", i < 100 ? 50ms : 60s));
    co_await co_sleep(150ms);
    EXPECT_EQ((co_await c.invalidate_pattern(kA, "customer:*")).value(), 200u);
    EXPECT_EQ(srv().cli({"EXISTS", "jeweler:cacheidx:{aurum}"}), "0");
    co_await e->close();
  });
}

// --- statistics shared through Redis -------------------------------------------------

// Two "processes" (separate Stats, separate connections) on one Redis: each
// counts in memory, and either one's tenant_stats() shows the sum; the
// periodic flusher writes one's counts without a read from it.
TEST_F(Cache, StatisticsAreSharedAcrossProcesses) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto opts = std::make_shared<Options>();
    opts->stats_flush_interval = 20ms;
    auto p1 = co_await Env::make(io, srv().config(), nullptr, opts);
    auto p2 = co_await Env::make(io, srv().config(), nullptr, opts);
    EXPECT_TRUE(co_await p1->cache->set(kA, "customer", "1", "v"));
    for (int i = 0; i < 3; ++i) (void)co_await p1->cache->get(kA, "customer", "1");  // 3 hits
    (void)co_await p2->cache->get(kA, "customer", "1");                              // 1 hit
    (void)co_await p2->cache->get(kA, "customer", "2");                              // 1 miss
    (void)co_await p2->cache->get(kB, "customer", "1");                              // B: 1 miss
    // p2 has not written p1's counts; p1's deltas are still in p1 (no
    // flusher runs yet): p2 sees only its own.
    auto s2 = (co_await p2->cache->tenant_stats(kA)).value();
    EXPECT_EQ(s2.total.hits, 1u);
    // p1 reads: writes its own first, so both counts are there.
    auto s1 = (co_await p1->cache->tenant_stats(kA)).value();
    EXPECT_EQ(s1.total.hits, 4u);
    EXPECT_EQ(s1.total.misses, 1u);
    EXPECT_EQ(s1.total.sets, 1u);
    EXPECT_EQ(s1.keys_held, 1u);
    s2 = (co_await p2->cache->tenant_stats(kA)).value();
    EXPECT_EQ(s2.total, s1.total);
    EXPECT_EQ(s2.keys_held, 1u);
    // B's miss was p2's, and only p2 has written B's deltas.
    EXPECT_EQ((co_await p1->cache->tenant_stats(kB)).value().total.misses, 0u);
    EXPECT_EQ((co_await p2->cache->tenant_stats(kB)).value().total.misses, 1u);
    EXPECT_EQ((co_await p1->cache->tenant_stats(kB)).value().total.misses, 1u);

    // The periodic flusher of p1 writes its counts; p2 sees them without
    // any call on p1 (polled, generous bound).
    std::atomic<bool> stop{false};
    bool flusher_done = false;
    asio::co_spawn(io, p1->cache->run_stats_flusher(stop),
                   [&](std::exception_ptr) { flusher_done = true; });
    for (int i = 0; i < 5; ++i) (void)co_await p1->cache->get(kA, "customer", "1");
    std::uint64_t seen = 0;
    for (int i = 0; i < 500 && seen != 9; ++i) {
      seen = (co_await p2->cache->tenant_stats(kA)).value().total.hits;
      if (seen != 9) co_await co_sleep(10ms);
    }
    EXPECT_EQ(seen, 9u);
    stop = true;
    for (int i = 0; i < 500 && !flusher_done; ++i) co_await co_sleep(10ms);
    EXPECT_TRUE(flusher_done);
    // Nothing was lost or counted twice on the way.
    EXPECT_EQ((co_await p1->cache->tenant_stats(kA)).value().total.hits, 9u);
    EXPECT_EQ(p1->stats->by_namespace()["customer"].hits, 8u);  // the process view
    co_await p1->close();
    co_await p2->close();
  });
}

// Concurrent misses of one key in two "processes": the loader runs once,
// one value is stored, and either process reports exactly one set.
TEST_F(Cache, SingleFlightAcrossProcessesReportsOneSetEverywhere) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto p1 = co_await Env::make(io, srv().config());
    auto p2 = co_await Env::make(io, srv().config());
    int runs = 0;
    co_await concurrently(40, [&](int i) -> asio::awaitable<void> {
      auto& svc = *(i % 2 ? p1 : p2)->cache;
      auto r = co_await svc.get_or_set(kA, "kpi", "dashboard", value_loader("k", &runs, 100ms));
      EXPECT_TRUE(r);
    });
    EXPECT_EQ(runs, 1);
    // Without flushers here, each "process" writes its deltas when it reads:
    // after both have read, both see the sums.
    (void)co_await p1->cache->tenant_stats(kA);
    auto s2 = (co_await p2->cache->tenant_stats(kA)).value();
    auto s1 = (co_await p1->cache->tenant_stats(kA)).value();
    EXPECT_EQ(s1.total.sets, 1u);
    EXPECT_EQ(s1.total.loads, 1u);
    EXPECT_EQ(s1.total.misses, 40u);
    EXPECT_EQ(s2.total, s1.total);
    co_await p1->close();
    co_await p2->close();
  });
}

// The hot path stays one plain GET per hit: counting (for the shared
// statistics) sends nothing; only a flush or a stats read writes counts.
TEST_F(Cache, AHitIsOneGetAndCountingSendsNothing) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto e = co_await Env::make(io, srv().config());
    auto& c = *e->cache;
    EXPECT_TRUE(co_await c.set(kA, "customer", "1", "v"));
    int runs = 0;
    (void)co_await c.get_or_set(kA, "customer", "1", value_loader("x", &runs));  // warm
    srv().cli({"CONFIG", "RESETSTAT"});
    for (int i = 0; i < 50; ++i) {
      EXPECT_TRUE((co_await c.get(kA, "customer", "1")).value().has_value());
      auto r = co_await c.get_or_set(kA, "customer", "1", value_loader("x", &runs));
      EXPECT_TRUE(r && r->hit());
    }
    auto info = srv().cli({"INFO", "commandstats"});
    std::istringstream in(info);
    std::map<std::string, std::string> calls;
    for (std::string line; std::getline(in, line);) {
      if (!line.starts_with("cmdstat_")) continue;
      auto colon = line.find(':');
      auto name = line.substr(8, colon - 8);
      if (name == "ping" || name == "info" || name.starts_with("config")) continue;
      auto at = line.find("calls=") + 6;
      calls[name] = line.substr(at, line.find(',', at) - at);
    }
    EXPECT_EQ(calls.size(), 1u) << info;
    EXPECT_EQ(calls["get"], "100") << info;
    EXPECT_EQ(runs, 0);
    // The 100 hits are there once the deltas are written.
    EXPECT_EQ((co_await c.tenant_stats(kA)).value().total.hits, 101u);
    co_await e->close();
  });
}
