#include <jeweler/http/metrics.hpp>

#include <gtest/gtest.h>

#include <thread>

using namespace jeweler::http::metrics;

TEST(Metrics, CounterAndGaugeExposition) {
  Registry r;
  auto& c =
      r.counter("jeweler_http_requests_total", "HTTP requests", {"route", "method", "status"});
  c.with({"/health", "GET", "200"}).inc();
  c.with({"/health", "GET", "200"}).inc(2);
  c.with({"/a\"b\\c\nd", "POST", "500"}).inc();
  r.gauge("jeweler_sessions_active", "Live sessions").with({}).set(7);
  auto text = r.render();
  EXPECT_NE(text.find("# HELP jeweler_http_requests_total HTTP requests\n"
                      "# TYPE jeweler_http_requests_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("jeweler_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 3\n"),
      std::string::npos)
      << text;
  // Label values escaped as the format requires.
  EXPECT_NE(text.find("route=\"/a\\\"b\\\\c\\nd\""), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE jeweler_sessions_active gauge\njeweler_sessions_active 7\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.histogram("lat_seconds", "latency", {"route"}, {0.1, 1});
  auto& s = h.with({"x"});
  s.observe(0.05);
  s.observe(0.1);  // le is inclusive
  s.observe(0.5);
  s.observe(5);
  auto text = r.render();
  EXPECT_NE(text.find("# TYPE lat_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"x\",le=\"0.1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"x\",le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"x\",le=\"+Inf\"} 4\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("lat_seconds_sum{route=\"x\"} 5.65\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count{route=\"x\"} 4\n"), std::string::npos) << text;
}

TEST(Metrics, CollectorsMergeIntoRegisteredFamilies) {
  Registry r;
  r.counter("jeweler_cache_requests_total", "Cache lookups", {"namespace", "result"})
      .with({"kpi", "hit"})
      .inc(4);
  r.add_collector([](Writer& w) {
    w.counter("jeweler_cache_requests_total", "Cache lookups",
              {{"namespace", "kpi"}, {"result", "miss"}}, 2);
    w.gauge("jeweler_redis_up", "up", {}, 1);
  });
  auto text = r.render();
  // One HELP/TYPE per family, samples contiguous.
  auto first = text.find("# TYPE jeweler_cache_requests_total counter");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("# TYPE jeweler_cache_requests_total", first + 1), std::string::npos);
  auto hit = text.find("jeweler_cache_requests_total{namespace=\"kpi\",result=\"hit\"} 4\n");
  auto miss = text.find("jeweler_cache_requests_total{namespace=\"kpi\",result=\"miss\"} 2\n");
  ASSERT_NE(hit, std::string::npos) << text;
  ASSERT_NE(miss, std::string::npos) << text;
  EXPECT_EQ(text.find("# ", hit), text.find("# HELP jeweler_redis_up"));
  EXPECT_NE(text.find("# TYPE jeweler_redis_up gauge\njeweler_redis_up 1\n"), std::string::npos);
}

TEST(Metrics, SameFamilyTwiceAndTypeConflicts) {
  Registry r;
  auto& a = r.counter("x_total", "x", {"a"});
  auto& b = r.counter("x_total", "x", {"a"});
  EXPECT_EQ(&a, &b);
  EXPECT_THROW(r.counter("x_total", "x", {"b"}), std::invalid_argument);
  EXPECT_THROW(r.gauge("x_total", "x"), std::invalid_argument);
  EXPECT_THROW(a.with({"1", "2"}), std::invalid_argument);
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  Registry r;
  auto& fam = r.counter("c_total", "c", {"t"});
  auto& h = r.histogram("h_seconds", "h", {});
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        fam.with({"same"}).inc();
        h.with({}).observe(0.001);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(fam.with({"same"}).value(), 80000);
  EXPECT_EQ(h.with({}).snapshot().count, 80000u);
}

TEST(Metrics, FormatValue) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
}
