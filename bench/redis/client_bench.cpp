// GET/SET throughput and latency of one client connection with 1, 16 and 256
// concurrent coroutines, against a harness-started redis-server, and in the
// same run redis-benchmark on the same server as the reference:
//   -P 16 -c 50  (pipelined throughput)   vs our 256-caller throughput
//   -P 1  -c 1   (one request at a time)  vs our 1-caller latency
//
//   build/bench/redis/redis_client_bench            # full run, prints a summary
//   build/bench/redis/redis_client_bench --smoke    # tiny counts (CTest)
#include <jeweler/redis/client.hpp>

#include "bench_report.hpp"
#include "redis_server.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace jeweler;
using namespace std::chrono_literals;

namespace {

test::RedisServer* g_server = nullptr;
bool g_smoke = false;
std::map<std::string, double> g_ops;     // name -> ops/s (best of the repetitions)
std::map<std::string, double> g_lat_us;  // name -> mean latency µs (1 caller)

test::LoadResult run_load(bool is_get, int concurrency, int total_ops) {
  asio::io_context io;
  auto client =
      redis::make_client(io.get_executor(), test::bench_client_config(g_server->config()));
  const std::string value(32, 'v');
  auto setup = [&]() -> asio::awaitable<void> {
    co_await client->wait_ready(5s);
    // g++ 12: commands are named locals, never temporaries inside co_await.
    auto init = redis::Command::make("SET", "bench:key", value);
    co_await client->exec(std::move(init));
  };
  auto op = [&](int, int) -> asio::awaitable<test::OpOutcome> {
    auto cmd = is_get ? redis::Command::make("GET", "bench:key")
                      : redis::Command::make("SET", "bench:key", value);
    auto r = co_await client->exec(std::move(cmd));
    co_return (!r || r->is_error()) ? test::OpOutcome::error : test::OpOutcome::ok;
  };
  auto res = test::run_load(io, concurrency, total_ops, setup, op);
  client.reset();
  io.run_for(10ms);
  return res;
}

void bm_client(benchmark::State& state, bool is_get) {
  int concurrency = static_cast<int>(state.range(0));
  int total = g_smoke ? 2000 : (concurrency == 1 ? 50000 : 400000);
  std::string name = std::string(is_get ? "GET" : "SET") + "/c" + std::to_string(concurrency);
  for (auto _ : state) {
    auto r = run_load(is_get, concurrency, total);
    const double ops = test::report(state, r, total);
    g_ops[name] = std::max(g_ops[name], ops);
    if (concurrency == 1) {
      double mean = r.seconds * 1e6 / total;
      g_lat_us[name] = g_lat_us.count(name) ? std::min(g_lat_us[name], mean) : mean;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = jeweler::test::take_smoke_flag(argc, argv, g_smoke);
  int n = static_cast<int>(args.size());
  test::RedisServer server(test::RedisServerOptions{.appendonly = false});
  g_server = &server;
  int reps = g_smoke ? 1 : 3;
  for (bool get : {true, false}) {
    for (int c : {1, 16, 256}) {
      benchmark::RegisterBenchmark(get ? "client/GET" : "client/SET",
                                   [get](benchmark::State& s) { bm_client(s, get); })
          ->Arg(c)
          ->UseManualTime()
          ->Iterations(1)
          ->Repetitions(reps)
          ->Unit(benchmark::kMillisecond)
          ->ReportAggregatesOnly(false);
    }
  }
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::string count = g_smoke ? "2000" : "400000";
  auto pipelined = test::redis_benchmark(g_server->port(), "-t get,set -P 16 -c 50 -n " + count);
  auto single = test::redis_benchmark(
      g_server->port(), "-t get,set -P 1 -c 1 -n " + std::string(g_smoke ? "2000" : "50000"));

  std::printf("\n== summary (same server, same run) ==\n");
  std::printf("redis-benchmark -P 16 -c 50: GET %.0f/s SET %.0f/s\n", pipelined["GET"],
              pipelined["SET"]);
  std::printf("redis-benchmark -P 1 -c 1:   GET %.0f/s (%.1f us) SET %.0f/s (%.1f us)\n",
              single["GET"], single["GET"] > 0 ? 1e6 / single["GET"] : 0, single["SET"],
              single["SET"] > 0 ? 1e6 / single["SET"] : 0);
  for (const char* op : {"GET", "SET"}) {
    for (int c : {1, 16, 256}) {
      std::string name = std::string(op) + "/c" + std::to_string(c);
      std::printf("jeweler %s: %.0f ops/s (%.0f%% of redis-benchmark -P 16)\n", name.c_str(),
                  g_ops[name], pipelined[op] > 0 ? 100.0 * g_ops[name] / pipelined[op] : 0);
    }
    std::string one = std::string(op) + "/c1";
    double ref = single[op] > 0 ? 1e6 / single[op] : 0;
    std::printf("jeweler %s 1-caller latency: %.1f us vs redis-benchmark %.1f us (%+.0f%%)\n", op,
                g_lat_us[one], ref, ref > 0 ? 100.0 * (g_lat_us[one] - ref) / ref : 0);
  }
  bool ok = !g_ops.empty() && pipelined.count("GET") && single.count("GET");
  return ok ? 0 : 1;
}
