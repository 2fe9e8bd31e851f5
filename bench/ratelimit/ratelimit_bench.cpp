// Rate-limit checks per second with 256 concurrent callers on one client, per
// algorithm, against a harness-started redis-server; in the same run
// redis-benchmark -P 16 runs the very same script (EVALSHA, same arguments,
// random keys from the same key space) on the same server as the reference.
//
//   build/bench/ratelimit/ratelimit_bench           # full run, prints a summary
//   build/bench/ratelimit/ratelimit_bench --smoke   # tiny counts (CTest)
#include <jeweler/ratelimit/limiter.hpp>

#include "bench_report.hpp"
#include "redis_server.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace jeweler;
using namespace jeweler::ratelimit;
using namespace std::chrono_literals;

namespace {

test::RedisServer* g_server = nullptr;
bool g_smoke = false;
constexpr int kKeySpace = 10000;
constexpr int kCallers = 256;
std::map<std::string, double> g_ops;  // algorithm -> checks/s (best repetition)

Policy bench_policy(Algorithm a, std::string name) {
  Policy p;
  p.name = std::move(name);
  p.limit = 1'000'000;  // everything admitted: the consuming path is measured
  p.window = 3600s;
  p.algorithm = a;
  return p;
}

test::LoadResult run_load(Algorithm algo, int total) {
  asio::io_context io;
  auto client =
      redis::make_client(io.get_executor(), test::bench_client_config(g_server->config()));
  LimiterOptions lo;
  lo.timeout = 10s;
  Limiter limiter(*client, std::make_shared<Stats>(), std::make_shared<Fallback>(), lo);
  auto policy = bench_policy(algo, "b-" + std::string(to_string(algo)));
  std::mt19937 rng(42);
  auto setup = [&]() -> asio::awaitable<void> { co_await client->wait_ready(5s); };
  auto op = [&](int, int) -> asio::awaitable<test::OpOutcome> {
    char subject[16];
    std::snprintf(subject, sizeof subject, "%012u", static_cast<unsigned>(rng() % kKeySpace));
    auto key = Key::custom("bench", subject);
    auto d = co_await limiter.check(policy, std::move(key));
    if (!d) co_return test::OpOutcome::error;
    co_return d->allowed ? test::OpOutcome::ok : test::OpOutcome::other;  // other: rejected
  };
  auto res = test::run_load(io, kCallers, total, setup, op);
  client.reset();
  io.run_for(10ms);
  return res;
}

void bm_check(benchmark::State& state, Algorithm algo) {
  int total = g_smoke ? 2000 : 200000;
  std::string name(to_string(algo));
  for (auto _ : state) {
    auto r = run_load(algo, total);
    const double ops = test::report(state, r, total, "checks_per_s", "rejected");
    g_ops[name] = std::max(g_ops[name], ops);
  }
}

char code(Algorithm a) {
  return a == Algorithm::sliding_log ? 'l' : a == Algorithm::sliding_counter ? 'c' : 'g';
}

// redis-benchmark running the same EVALSHA (same argument layout as Limiter).
double redis_benchmark(Algorithm algo, int total) {
  auto p = bench_policy(algo, "rb-" + std::string(to_string(algo)));
  std::string key = "jeweler:rl:{c:bench}:" + p.name + ":__rand_int__";
  std::string args = "-P 16 -c 50 -r " + std::to_string(kKeySpace) + " -n " +
                     std::to_string(total) + " EVALSHA " + check_script().sha1() + " 1 '" + key +
                     "' '' bench.__rand_int__ " + code(algo) + " " + std::to_string(p.limit) + " " +
                     std::to_string(p.window.count()) + " " + std::to_string(p.capacity()) + " 1";
  return jeweler::test::redis_benchmark_rps(g_server->port(), args);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = jeweler::test::take_smoke_flag(argc, argv, g_smoke);
  int n = static_cast<int>(args.size());
  test::RedisServer server(test::RedisServerOptions{.appendonly = false});
  g_server = &server;
  // Load the script once (redis-benchmark only sends EVALSHA).
  server.cli({"SCRIPT", "LOAD", check_script().source()});
  int reps = g_smoke ? 1 : 3;
  for (auto algo : {Algorithm::sliding_log, Algorithm::sliding_counter, Algorithm::gcra}) {
    benchmark::RegisterBenchmark(("ratelimit/check/" + std::string(to_string(algo))).c_str(),
                                 [algo](benchmark::State& s) { bm_check(s, algo); })
        ->UseManualTime()
        ->Iterations(1)
        ->Repetitions(reps)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::printf("\n== summary (same server, same run; %d callers on one client) ==\n", kCallers);
  bool ok = true;
  for (auto algo : {Algorithm::sliding_log, Algorithm::sliding_counter, Algorithm::gcra}) {
    double best = 0;
    for (int r = 0; r < reps; ++r)
      best = std::max(best, redis_benchmark(algo, g_smoke ? 2000 : 200000));
    std::string name(to_string(algo));
    double ours = g_ops[name];
    std::printf(
        "%-16s jeweler %8.0f checks/s | redis-benchmark -P 16 -c 50 EVALSHA %8.0f/s | ratio "
        "%5.1f%%\n",
        name.c_str(), ours, best, best > 0 ? 100.0 * ours / best : 0);
    if (best <= 0 || ours <= 0) ok = false;
  }
  // redis-benchmark counts error replies as answers: make sure every script run succeeded.
  auto info = server.cli({"INFO", "stats"});
  auto pos = info.find("total_error_replies:");
  std::string errors =
      pos == std::string::npos ? "?" : info.substr(pos + 20, info.find('\r', pos) - pos - 20);
  std::printf("error replies on the server: %s\n", errors.c_str());
  if (errors != "0") ok = false;
  return ok ? 0 : 1;
}
