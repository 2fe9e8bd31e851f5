// Cache service pieces that need no Redis: validation, TTL arguments,
// options from the environment, JSON mappings, statistics.
#include <jeweler/cache/cache.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <map>
#include <thread>

using namespace jeweler;
using namespace jeweler::cache;
using namespace std::chrono_literals;

TEST(CacheValidation, Namespaces) {
  EXPECT_TRUE(valid_namespace("customer"));
  EXPECT_TRUE(valid_namespace("gold-price"));
  EXPECT_TRUE(valid_namespace("a_1"));
  EXPECT_FALSE(valid_namespace(""));
  EXPECT_FALSE(valid_namespace(std::string(33, 'a')));
  for (const char* bad : {"Customer", "a:b", "a*", "a?", "a[", "a{b}", "a b", "a\\b", "ä"})
    EXPECT_FALSE(valid_namespace(bad)) << bad;
}

TEST(CacheValidation, Keys) {
  EXPECT_TRUE(valid_key("42"));
  EXPECT_TRUE(valid_key("owner@aurum.example"));
  EXPECT_TRUE(valid_key("list:page=2,size=50/x+y-z_"));
  EXPECT_TRUE(valid_key(std::string(256, 'k')));
  EXPECT_FALSE(valid_key(""));
  EXPECT_FALSE(valid_key(std::string(257, 'k')));
  for (const char* bad : {"a*", "a?", "a[1]", "{t}", "a b", "a\\*", "a\n", "\x01"})
    EXPECT_FALSE(valid_key(bad)) << bad;
  EXPECT_FALSE(valid_key(std::string_view("a\0b", 3)));
}

TEST(CacheValidation, Patterns) {
  EXPECT_TRUE(valid_pattern("customer:*"));
  EXPECT_TRUE(valid_pattern("*"));
  EXPECT_TRUE(valid_pattern("[a-c]?x\\*"));
  EXPECT_FALSE(valid_pattern(""));
  EXPECT_FALSE(valid_pattern("*}:*"));
  EXPECT_FALSE(valid_pattern("{other}*"));
  EXPECT_FALSE(valid_pattern("a b"));
  EXPECT_FALSE(valid_pattern(std::string(257, '*')));
}

TEST(CacheTtl, Kinds) {
  Ttl d;
  EXPECT_TRUE(d.is_default());
  Ttl s = 90s;
  EXPECT_FALSE(s.is_default());
  EXPECT_EQ(s.duration(), 90000ms);
  Ttl m = std::chrono::minutes(2);
  EXPECT_EQ(m.duration(), 120000ms);
  EXPECT_TRUE(Ttl::persistent().is_persistent());
  EXPECT_FALSE(Ttl::persistent().is_default());
}

TEST(CacheOptions, DefaultsAndEnv) {
  Options o;
  EXPECT_EQ(o.ttl_for(ns::kpi), 5min);
  EXPECT_EQ(o.ttl_for(ns::gold_price), 60s);
  EXPECT_EQ(o.ttl_for(ns::customer), 1h);
  EXPECT_EQ(o.ttl_for(ns::product), 30min);
  EXPECT_EQ(o.ttl_for(ns::invoice), 10min);
  EXPECT_EQ(o.ttl_for(ns::permissions), 15min);
  EXPECT_EQ(o.ttl_for("other"), o.default_ttl);
  o.namespace_ttl["other"] = 7s;
  EXPECT_EQ(o.ttl_for("other"), 7s);

  std::map<std::string, std::string, std::less<>> env = {
      {"CACHE_TTL_KPI", "90s"},     {"CACHE_TTL_GOLD_PRICE", "2m"},
      {"CACHE_TTL_CUSTOMER", "2h"}, {"CACHE_TTL_PRODUCT", "600"},
      {"CACHE_TTL_INVOICE", "1m"},  {"CACHE_TTL_PERMISSIONS", "5m"}};
  auto lookup = [&](std::string_view n) -> std::optional<std::string> {
    if (auto it = env.find(n); it != env.end()) return it->second;
    return std::nullopt;
  };
  auto e = Options::from_env(lookup);
  EXPECT_EQ(e.ttl.kpi, 90s);
  EXPECT_EQ(e.ttl.gold_price, 2min);
  EXPECT_EQ(e.ttl.customer, 2h);
  EXPECT_EQ(e.ttl.product, 600s);
  EXPECT_EQ(e.ttl.invoice, 1min);
  EXPECT_EQ(e.ttl.permissions, 5min);

  env = {{"CACHE_TTL_INVOICE", "soon"}};
  try {
    (void)Options::from_env(lookup);
    ADD_FAILURE() << "bad duration accepted";
  } catch (const redis::ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("CACHE_TTL_INVOICE"), std::string::npos) << err.what();
  }
  env = {{"CACHE_TTL_KPI", "0"}};
  EXPECT_THROW((void)Options::from_env(lookup), redis::ConfigError);
  env = {};
  EXPECT_EQ(Options::from_env(lookup).ttl.kpi, 5min);
}

TEST(CacheTypes, KpiJson) {
  KpiData k{15000.5, 3000, 5, 250.5, 3, 2, 8, 1700000000000};
  auto v = to_json(k);
  auto& o = v.as_object();
  for (const char* f : {"todaySales", "todayProfit", "newCustomers", "goldSoldMTD",
                        "overdueInvoices", "dueCheques", "lowInventoryItems", "lastUpdated"})
    EXPECT_TRUE(o.contains(f)) << f;
  auto back = kpi_from_json(parse_json(serialize_json(v)).value());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, k);
  // The seed's JavaScript numbers: integral doubles are integers.
  auto js = boost::json::parse(
      R"({"todaySales":1,"todayProfit":2.5,"newCustomers":3.0,"goldSoldMTD":4,)"
      R"("overdueInvoices":5,"dueCheques":6,"lowInventoryItems":7,"lastUpdated":1.7e12})");
  auto k2 = kpi_from_json(js);
  ASSERT_TRUE(k2);
  EXPECT_EQ(k2->new_customers, 3);
  EXPECT_EQ(k2->last_updated, 1700000000000);
  auto missing = boost::json::parse(R"({"todaySales":1})");
  EXPECT_EQ(kpi_from_json(missing).error(), make_error_code(errc::corrupt_data));
  EXPECT_FALSE(kpi_from_json(boost::json::parse(R"([1,2])")));
  EXPECT_FALSE(kpi_from_json(boost::json::parse(
      R"({"todaySales":"x","todayProfit":2.5,"newCustomers":3,"goldSoldMTD":4,)"
      R"("overdueInvoices":5,"dueCheques":6,"lowInventoryItems":7,"lastUpdated":1})")));
}

TEST(CacheTypes, GoldPriceAndPermissionsJson) {
  GoldPrice g{"USD", {{"24k", 64.5}, {"22k", 59.125}, {"18k", 48.375}}, 1700000000000};
  auto back = gold_price_from_json(to_json(g));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, g);
  EXPECT_FALSE(gold_price_from_json(boost::json::parse(R"({"currency":1})")));

  Permissions p{"invoice:create", "customer:read"};
  auto pb = permissions_from_json(to_json(p));
  ASSERT_TRUE(pb);
  EXPECT_EQ(*pb, p);
  EXPECT_FALSE(permissions_from_json(boost::json::parse(R"(["a", 1])")));

  EXPECT_EQ(parse_json("{not json").error(), make_error_code(errc::corrupt_data));
}

TEST(CacheStats, CountsAndBounds) {
  Stats st(2, 2);
  auto a = TenantId::from("a"), b = TenantId::from("b"), c = TenantId::from("c");
  st.ns("customer").hits += 3;
  st.ns("customer").misses += 1;
  st.ns("kpi").sets += 2;
  st.ns("third").errors += 1;  // beyond the bound: counted under "_other"
  auto by = st.by_namespace();
  EXPECT_EQ(by["customer"].hits, 3u);
  EXPECT_DOUBLE_EQ(by["customer"].hit_ratio(), 0.75);
  EXPECT_EQ(by["kpi"].sets, 2u);
  EXPECT_EQ(by["_other"].errors, 1u);
  EXPECT_EQ(by.count("third"), 0u);
  EXPECT_EQ(st.total().hits, 3u);
  EXPECT_EQ(Counters{}.hit_ratio(), 0.0);

  // Pending (tenant, namespace) deltas: bounded, taken once, given back.
  ASSERT_NE(st.pending(a, "kpi"), nullptr);
  ASSERT_NE(st.pending(b, "kpi"), nullptr);
  EXPECT_EQ(st.pending(c, "kpi"), nullptr);  // beyond the bound: not shared
  EXPECT_EQ(st.pending(a, "kpi"), st.pending(a, "kpi"));
  st.pending(a, "kpi")->hits += 4;
  st.pending(b, "kpi")->misses += 1;
  auto only_b = st.take_pending(std::string_view("b"));
  ASSERT_EQ(only_b.deltas.size(), 1u);
  EXPECT_EQ(only_b.deltas[0].tenant, "b");
  EXPECT_EQ(only_b.deltas[0].counters.misses, 1u);
  auto all = st.take_pending();
  EXPECT_GT(all.ticket, only_b.ticket);
  ASSERT_EQ(all.deltas.size(), 1u);  // b's were taken already
  EXPECT_EQ(all.deltas[0].tenant, "a");
  EXPECT_EQ(all.deltas[0].ns, "kpi");
  EXPECT_EQ(all.deltas[0].counters.hits, 4u);
  // A batch outstanding holds back later readers until it finishes.
  auto later = st.take_pending();
  EXPECT_TRUE(later.deltas.empty());
  EXPECT_FALSE(st.settled_before(later.ticket));
  st.finish(only_b);
  EXPECT_FALSE(st.settled_before(later.ticket));
  st.finish(all, all.deltas);  // the write failed: pending again
  EXPECT_TRUE(st.settled_before(later.ticket));
  st.finish(later);
  auto again = st.take_pending();
  ASSERT_EQ(again.deltas.size(), 1u);
  EXPECT_EQ(again.deltas[0].counters.hits, 4u);
  st.finish(again);
  EXPECT_TRUE(st.take_pending().deltas.empty());

  st.reset();
  EXPECT_EQ(st.total().hits, 0u);

  Counters k;
  *counter_by_name(k, "invalidations") = 7;
  EXPECT_EQ(k.invalidations, 7u);
  EXPECT_EQ(counter_by_name(k, "nope"), nullptr);
}

TEST(CacheStats, DegradedFlagStartsAndEndsOnce) {
  Stats st;
  EXPECT_FALSE(st.degraded());
  EXPECT_FALSE(st.leave_degraded());
  EXPECT_TRUE(st.enter_degraded());
  EXPECT_FALSE(st.enter_degraded());
  EXPECT_TRUE(st.degraded());
  EXPECT_TRUE(st.leave_degraded());
  EXPECT_FALSE(st.leave_degraded());
}

// Counting threads and a flushing thread: every count is taken exactly once.
TEST(CacheStats, ThreadSafe) {
  auto st = std::make_shared<Stats>();
  auto t = TenantId::from("t");
  std::atomic<bool> done{false};
  std::uint64_t taken = 0;
  std::thread flusher([&] {
    while (!done.load()) {
      auto b = st->take_pending();
      for (const auto& d : b.deltas) taken += d.counters.hits;
      st->finish(b);
    }
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int j = 0; j < 10000; ++j) {
        st->ns(j % 2 ? "a" : "b").hits++;
        st->pending(t, j % 2 ? "a" : "b")->hits++;
      }
    });
  for (auto& th : threads) th.join();
  done = true;
  flusher.join();
  auto rest = st->take_pending();
  for (const auto& d : rest.deltas) taken += d.counters.hits;
  EXPECT_EQ(st->total().hits, 40000u);
  EXPECT_EQ(taken, 40000u);
}
