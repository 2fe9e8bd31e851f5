// End-to-end: the admin cache statistics are the same from every server
// process sharing the Redis (API.md section 4), and single flight across two
// processes shows as exactly one set whichever process is asked. Two real
// jeweler-server processes on one Redis and one database.
#include "e2e_support.hpp"

#include <atomic>
#include <thread>

using namespace e2e;

namespace {

/// The fields of GET /api/admin/cache/stats, by name (namespaces flattened
/// to "<ns>.<field>").
std::map<std::string, std::int64_t> stats_of(std::uint16_t port, const std::string& admin) {
  auto r = call(port, "GET", "/api/admin/cache/stats", admin);
  EXPECT_EQ(r.status, 200) << r.body;
  std::map<std::string, std::int64_t> out;
  auto o = obj(r);
  for (const char* k : {"hits", "misses", "sets", "deletes", "invalidations", "errors", "keysHeld"})
    out[k] = num(o, k);
  if (auto* by = o.if_contains("namespaces"); by && by->is_object())
    for (const auto& [ns, v] : by->as_object())
      if (v.is_object())
        for (const char* k : {"hits", "misses", "sets", "invalidations"})
          out[std::string(ns) + "." + k] = num(v.as_object(), k);
  return out;
}

/// Reads the statistics from both servers until they agree and `done(a)`
/// holds (each read writes that process' own counts first; the periodic
/// flush does the rest). Generous bound; no timing is asserted.
std::map<std::string, std::int64_t> agreed(
    std::uint16_t a, std::uint16_t b, const std::string& admin,
    const std::function<bool(const std::map<std::string, std::int64_t>&)>& done) {
  std::map<std::string, std::int64_t> sa, sb;
  auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    sa = stats_of(a, admin);
    sb = stats_of(b, admin);
    if (sa == sb && done(sa)) return sa;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "the two processes did not agree";
  for (const auto& [k, v] : sa)
    ADD_FAILURE() << k << ": " << v << " vs " << (sb.count(k) ? sb[k] : -1);
  return sa;
}

std::int64_t at(const std::map<std::string, std::int64_t>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

}  // namespace

// KPI and gold-price reads spread over two processes, an invalidation on
// one: both processes report the same hits, misses, sets, invalidations and
// keys held, equal to what the requests did; another tenant's figures do not
// move.
TEST(CacheSharedE2E, StatisticsAreTheSameFromEveryProcess) {
  Stack st;
  auto a = st.port();
  auto b = st.start_server();
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  auto clerk = token_of(a, kClerk);
  auto owner = token_of(b, kOwner);
  auto argent = token_of(a, kArgent);
  ASSERT_EQ(call(a, "DELETE", "/api/admin/cache", owner).status, 200);
  auto argent_before = agreed(a, b, argent, [](const auto&) { return true; });
  auto before = agreed(a, b, owner, [](const auto&) { return true; });

  constexpr int kReads = 20;
  for (int i = 0; i < kReads; ++i) {
    auto port = i % 2 ? b : a;
    ASSERT_EQ(call(port, "GET", "/api/dashboard/kpi", clerk).status, 200);
    ASSERT_EQ(call(port, "GET", "/api/gold-price", clerk).status, 200);
  }
  auto lookups = [&](const auto& s, const char* ns) {
    return at(s, std::string(ns) + ".hits") + at(s, std::string(ns) + ".misses") -
           at(before, std::string(ns) + ".hits") - at(before, std::string(ns) + ".misses");
  };
  auto after = agreed(a, b, owner, [&](const auto& s) {
    return lookups(s, "kpi") == kReads && lookups(s, "gold-price") == kReads;
  });
  // After the clear, one miss and one set per entry; every other read a hit.
  EXPECT_EQ(at(after, "kpi.misses") - at(before, "kpi.misses"), 1);
  EXPECT_EQ(at(after, "kpi.hits") - at(before, "kpi.hits"), kReads - 1);
  EXPECT_EQ(at(after, "kpi.sets") - at(before, "kpi.sets"), 1);
  EXPECT_EQ(at(after, "gold-price.sets") - at(before, "gold-price.sets"), 1);
  EXPECT_EQ(at(after, "hits") - at(before, "hits"), 2 * (kReads - 1));
  EXPECT_EQ(at(after, "keysHeld"), 2);

  // An invalidation on b is counted once, seen from a.
  auto r = call(b, "DELETE", "/api/admin/cache?pattern=kpi:*", owner);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(num(obj(r), "invalidated"), 1);
  auto inv = agreed(a, b, owner, [&](const auto& s) {
    return at(s, "invalidations") == at(after, "invalidations") + 1;
  });
  EXPECT_EQ(at(inv, "kpi.invalidations") - at(after, "kpi.invalidations"), 1);
  EXPECT_EQ(at(inv, "keysHeld"), 1);

  // The other tenant's statistics did not move.
  EXPECT_EQ(agreed(a, b, argent, [](const auto&) { return true; }), argent_before);
}

// Concurrent misses of the KPI over two processes: the value is computed and
// stored once, and either process reports exactly one set (before, a
// black-box test read 0 or 1 depending on the process asked).
TEST(CacheSharedE2E, SingleFlightOverTwoProcessesReportsOneSet) {
  Stack st;
  auto a = st.port();
  auto b = st.start_server();
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  auto clerk = token_of(a, kClerk);
  auto owner = token_of(b, kOwner);
  // Every thread of both servers has validated the token (a cold token
  // costs a session read, not a cache lookup, but keep the burst uniform).
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(call(a, "GET", "/api/auth/me", clerk).status, 200);
    ASSERT_EQ(call(b, "GET", "/api/auth/me", clerk).status, 200);
  }
  ASSERT_EQ(call(a, "DELETE", "/api/admin/cache", owner).status, 200);
  auto before = agreed(a, b, owner, [](const auto&) { return true; });

  constexpr int kRequests = 40;
  std::atomic<int> ok{0}, start{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i)
    threads.emplace_back([&, i] {
      start++;
      while (start.load() < kRequests) std::this_thread::yield();
      auto r = call(i % 2 ? b : a, "GET", "/api/dashboard/kpi", clerk);
      if (r.status == 200) ok++;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kRequests);

  auto after = agreed(a, b, owner, [&](const auto& s) {
    return at(s, "kpi.hits") + at(s, "kpi.misses") ==
           at(before, "kpi.hits") + at(before, "kpi.misses") + kRequests;
  });
  EXPECT_EQ(at(after, "kpi.sets") - at(before, "kpi.sets"), 1);
  EXPECT_EQ(at(after, "sets") - at(before, "sets"), 1);
  EXPECT_EQ(at(after, "keysHeld"), 1);
  // Asked again, from each process: still one.
  EXPECT_EQ(at(stats_of(a, owner), "kpi.sets") - at(before, "kpi.sets"), 1);
  EXPECT_EQ(at(stats_of(b, owner), "kpi.sets") - at(before, "kpi.sets"), 1);
}
