// Cache hit throughput with 256 concurrent callers on one client, against a
// harness-started redis-server, compared in the same run with
// `redis-benchmark -P 16 -t get` on the same server (target: >= 60%).
//
//   build/bench/cache/cache_bench            # full run, prints a summary
//   build/bench/cache/cache_bench --smoke    # tiny counts (CTest)
#include <jeweler/cache/cache.hpp>

#include "bench_report.hpp"
#include "redis_server.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace jeweler;
using namespace std::chrono_literals;

namespace {

test::RedisServer* g_server = nullptr;
bool g_smoke = false;
std::map<std::string, std::vector<double>> g_ops;  // name -> ops/s of each repetition
const TenantId kTenant = TenantId::from("aurum");

enum class Op { raw_get, cache_get, cache_get_or_set };
const char* name_of(Op op) {
  switch (op) {
    case Op::raw_get:
      return "client GET";
    case Op::cache_get:
      return "cache get (hit)";
    case Op::cache_get_or_set:
      return "cache get_or_set (hit)";
  }
  return "?";
}

test::LoadResult run_load(Op op, int concurrency, int total_ops) {
  asio::io_context io;
  auto client =
      redis::make_client(io.get_executor(), test::bench_client_config(g_server->config()));
  cache::CacheService cache(*client, std::make_shared<cache::Options>(),
                            std::make_shared<cache::Stats>());
  const std::string value(64, 'v');
  const std::string raw_key = cache.redis_key(kTenant, "product", "p1");
  int loads = 0;
  cache::Loader loader = [&]() -> asio::awaitable<Result<std::string>> {
    ++loads;
    co_return value;
  };
  auto setup = [&]() -> asio::awaitable<void> {
    co_await client->wait_ready(5s);
    (void)co_await cache.set(kTenant, "product", "p1", value, 1h);
  };
  auto one = [&](int, int) -> asio::awaitable<test::OpOutcome> {
    bool ok = false;
    switch (op) {
      case Op::raw_get: {
        auto cmd = redis::Command::make("GET", raw_key);
        auto r = co_await client->exec(std::move(cmd));
        ok = r && r->is_string();
        break;
      }
      case Op::cache_get: {
        auto r = co_await cache.get(kTenant, "product", "p1");
        ok = r && r->has_value();
        break;
      }
      case Op::cache_get_or_set: {
        auto r = co_await cache.get_or_set(kTenant, "product", "p1", loader);
        ok = r && r->hit();
        break;
      }
    }
    co_return ok ? test::OpOutcome::ok : test::OpOutcome::error;
  };
  auto res = test::run_load(io, concurrency, total_ops, setup, one);
  if (loads != 0) ++res.errors;  // every call must have been a hit
  client.reset();
  io.run_for(10ms);
  return res;
}

double best(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void bm_cache(benchmark::State& state, Op op) {
  int concurrency = static_cast<int>(state.range(0));
  int total = g_smoke ? 2000 : 400000;
  for (auto _ : state) {
    auto r = run_load(op, concurrency, total);
    const double ops = test::report(state, r, total);
    g_ops[name_of(op)].push_back(ops);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = jeweler::test::take_smoke_flag(argc, argv, g_smoke);
  int n = static_cast<int>(args.size());
  test::RedisServer server(test::RedisServerOptions{.appendonly = false});
  g_server = &server;
  int reps = g_smoke ? 1 : 3;
  for (Op op : {Op::raw_get, Op::cache_get, Op::cache_get_or_set}) {
    benchmark::RegisterBenchmark((std::string("cache/") + name_of(op)).c_str(),
                                 [op](benchmark::State& s) { bm_cache(s, op); })
        ->Arg(256)
        ->UseManualTime()
        ->Iterations(1)
        ->Repetitions(reps)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::string count = g_smoke ? "2000" : "400000";
  std::vector<double> refs;
  for (int i = 0; i < reps; ++i)
    refs.push_back(test::redis_benchmark(g_server->port(), "-t get -P 16 -n " + count)["GET"]);
  const double ref_best = best(refs), ref_median = median(refs);

  std::printf("\n== summary (same server, same run, 256 concurrent callers on one client) ==\n");
  std::printf("redis-benchmark -P 16 -t get -n %s (-c 50): runs", count.c_str());
  for (double r : refs) std::printf(" %.0f", r);
  std::printf(" req/s; best %.0f, median %.0f\n", ref_best, ref_median);
  for (Op op : {Op::raw_get, Op::cache_get, Op::cache_get_or_set}) {
    const auto& runs = g_ops[name_of(op)];
    std::printf("jeweler %-24s runs", name_of(op));
    for (double r : runs) std::printf(" %.0f", r);
    double b = best(runs), m = median(runs);
    std::printf(" ops/s; best %.0f = %.1f%% of best, median %.0f = %.1f%% of median%s\n", b,
                ref_best > 0 ? 100.0 * b / ref_best : 0.0, m,
                ref_median > 0 ? 100.0 * m / ref_median : 0.0,
                op == Op::raw_get                           ? ""
                : (ref_median > 0 && m >= 0.6 * ref_median) ? "  (target >= 60%: met)"
                                                            : "  (target >= 60%: NOT met)");
  }
  double ref = ref_best;
  return ref > 0 && g_ops.size() == 3 ? 0 : 1;
}
