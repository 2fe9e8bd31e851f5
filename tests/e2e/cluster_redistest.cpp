// The whole product on a Redis Cluster (REDIS_CLUSTER_NODES with one seed):
// three harness-started masters, the real jeweler-server with --demo-data.
// Sessions, rate limiting (a script per hash tag), caching with tenant-wide
// and pattern invalidation (the tenant's key index, on the tenant's master),
// the shared cache statistics and health.
#include "e2e_support.hpp"
#include "redis_cluster.hpp"

#include <thread>

using jeweler::test::RedisCluster;
using namespace e2e;

TEST(ClusterE2E, TheApiWorksOnARedisCluster) {
  RedisCluster cluster;
  Stack stack({{"REDIS_URL", ""},
               {"REDIS_CLUSTER_NODES", cluster.seeds()},
               {"RATE_LIMIT_MAX_REQUESTS", "20"},
               {"RATE_LIMIT_WINDOW_MS", "60000"}});
  const auto port = stack.port();
  ASSERT_NE(port, 0);

  // Each server thread's client reads the slot table and connects to every
  // master after the server starts listening.
  auto health = call(port, "GET", "/health", {}, {});
  for (int i = 0; i < 100 && health.status != 200; ++i) {
    std::this_thread::sleep_for(50ms);
    health = call(port, "GET", "/health", {}, {});
  }
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_NE(health.body.find("\"mode\":\"cluster\""), std::string::npos) << health.body;

  auto owner = login(port, kOwner);
  ASSERT_EQ(owner.status(), 200) << owner.res.body;
  auto argent = login(port, kArgent);
  ASSERT_EQ(argent.status(), 200) << argent.res.body;

  // Sessions: me, the list, one more device, force logout keeping this one.
  auto me = call(port, "GET", "/api/auth/me", owner.token, {});
  EXPECT_EQ(me.status, 200) << me.body;
  auto second = login(port, kOwner);
  ASSERT_EQ(second.status(), 200);
  auto list = obj(call(port, "GET", "/api/auth/sessions", owner.token, {}));
  EXPECT_EQ(list["sessions"].as_array().size(), 2u);

  // Caching: MISS then HIT, then invalidated by pattern and by tenant.
  EXPECT_EQ(call(port, "DELETE", "/api/admin/cache", owner.token, {}).status, 200);
  auto a = call(port, "GET", "/api/dashboard/kpi", owner.token, {});
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.header("x-cache"), "MISS");
  auto b = call(port, "GET", "/api/dashboard/kpi", owner.token, {});
  EXPECT_EQ(b.header("x-cache"), "HIT");
  EXPECT_EQ(call(port, "GET", "/api/dashboard/kpi", argent.token, {}).header("x-cache"), "MISS");
  auto customers = obj(call(port, "GET", "/api/customers?limit=1", owner.token, {}));
  auto id = str(customers["items"].as_array().at(0).as_object(), "id");
  EXPECT_EQ(call(port, "GET", "/api/customers/" + id, owner.token, {}).header("x-cache"), "MISS");
  EXPECT_EQ(call(port, "GET", "/api/customers/" + id, owner.token, {}).header("x-cache"), "HIT");
  auto held = call(port, "GET", "/api/admin/cache/stats", owner.token, {});
  EXPECT_EQ(held.status, 200) << held.body;
  EXPECT_EQ(num(obj(held), "keysHeld"), 2) << held.body;  // kpi + customer
  EXPECT_EQ(num(obj(held), "hits"), 2) << held.body;
  auto pattern = call(port, "DELETE", "/api/admin/cache?pattern=customer:*", owner.token, {});
  EXPECT_EQ(pattern.status, 200) << pattern.body;
  EXPECT_EQ(num(obj(pattern), "invalidated"), 1) << pattern.body;
  EXPECT_EQ(call(port, "GET", "/api/customers/" + id, owner.token, {}).header("x-cache"), "MISS");
  EXPECT_EQ(call(port, "GET", "/api/dashboard/kpi", owner.token, {}).header("x-cache"), "HIT");
  EXPECT_EQ(call(port, "DELETE", "/api/admin/cache", owner.token, {}).status, 200);
  EXPECT_EQ(call(port, "GET", "/api/dashboard/kpi", owner.token, {}).header("x-cache"), "MISS");
  EXPECT_EQ(call(port, "GET", "/api/dashboard/kpi", argent.token, {}).header("x-cache"), "HIT");

  auto out = call(port, "DELETE", "/api/auth/sessions?keepCurrent=true", owner.token, {});
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(num(obj(out), "destroyed"), 1);
  EXPECT_EQ(call(port, "GET", "/api/auth/me", second.token, {}).status, 401);

  // Rate limiting: the per-user budget of 20 runs out, with its headers.
  auto clerk = login(port, kClerk);
  ASSERT_EQ(clerk.status(), 200) << clerk.res.body;
  int ok = 0, limited = 0;
  std::string remaining;
  for (int i = 0; i < 30; ++i) {
    auto r = call(port, "GET", "/api/auth/me", clerk.token, {});
    if (r.status == 200) {
      ++ok;
      remaining = r.header("x-ratelimit-remaining");
    } else if (r.status == 429) {
      ++limited;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(limited, 0);
  EXPECT_EQ(ok + limited, 30);
  EXPECT_EQ(remaining, "0");
}
