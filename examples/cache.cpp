// The cache: get_or_set (cache-aside). The loader runs on a miss only, once
// however many callers miss together; the next call is a hit.
// Run: REDIS_URL=... ./cache   (docs/cache.md)
#include <jeweler/cache/cache.hpp>
#include <jeweler/redis/client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <exception>

namespace asio = boost::asio;
namespace redis = jeweler::redis;
namespace cache = jeweler::cache;
using namespace std::chrono_literals;

asio::awaitable<int> run(redis::Client& client) {
  auto opts = std::make_shared<const cache::Options>(cache::Options::from_env());
  auto stats = std::make_shared<cache::Stats>();
  cache::CacheService c(client, opts, stats);  // per thread
  auto tenant = jeweler::TenantId::from("aurum");

  int loads = 0;
  for (int i = 0; i < 3; ++i) {
    // The loader: what the application would read from its database. A
    // named local, moved in (never a lambda temporary inside co_await).
    cache::Loader load = [&loads]() -> asio::awaitable<jeweler::Result<std::string>> {
      ++loads;
      co_return std::string(R"({"id":"42","name":"Ada"})");
    };
    auto r = co_await c.get_or_set(tenant, "customer", "42", std::move(load), 60s);
    if (!r) {  // the loader's error (a Redis outage is not one: the loader's value is served)
      std::printf("get_or_set failed: %s\n", r.error().message().c_str());
      co_return 1;
    }
    std::printf("call %d: %s %s\n", i + 1, r->hit() ? "HIT " : "MISS", r->value.c_str());
  }
  // Writes invalidate what they make stale.
  auto removed = co_await c.invalidate_pattern(tenant, "customer:*");
  if (!removed) co_return 1;
  std::printf("loader ran %d time(s); invalidated %lld key(s)\n", loads,
              static_cast<long long>(*removed));
  co_await client.shutdown(2s);
  co_return loads == 1 ? 0 : 1;
}

int main() {
  asio::io_context io;
  auto client = redis::make_client(io.get_executor(), redis::Config::from_env());
  int rc = 1;
  asio::co_spawn(io, run(*client), [&rc](std::exception_ptr e, int r) {
    if (!e) rc = r;
  });
  io.run();
  std::printf("cache example: %s\n", rc == 0 ? "ok" : "failed");
  return rc;
}
