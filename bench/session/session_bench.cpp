// getSession (hit) throughput with 256 concurrent callers on one client, and
// createSession, against a harness-started redis-server; in the same run,
// redis-benchmark -P 16 of the same EVALSHA (the get script on one session)
// and of GET on the same server, as the reference rate.
//
//   build/bench/session/session_bench            # full run, prints a summary
//   build/bench/session/session_bench --smoke    # tiny counts (CTest)
#include <jeweler/redis/client.hpp>
#include <jeweler/session/detail/scripts.hpp>
#include <jeweler/session/session.hpp>
#include <jeweler/session/token.hpp>

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
std::map<std::string, double> g_ops;  // best ops/s per benchmark name
std::string g_sample_key;             // a session key for redis-benchmark

// is_get: `concurrency` callers run get() on a pool of sessions; otherwise
// they run create() for users spread over many buckets.
test::LoadResult run_load(bool is_get, int concurrency, int total) {
  asio::io_context io;
  auto client =
      redis::make_client(io.get_executor(), test::bench_client_config(g_server->config()));
  auto opts = std::make_shared<const session::Options>();
  session::SessionService svc(*client, opts, std::make_shared<session::Stats>());
  std::vector<std::string> tokens;
  auto setup = [&]() -> asio::awaitable<void> {
    co_await client->wait_ready(5s);
    if (!is_get) co_return;
    for (int i = 0; i < 512; ++i) {
      session::NewSession ns{TenantId::from("bench"),
                             UserId::from("user" + std::to_string(i)),
                             "u@example.com",
                             "staff",
                             {"bench-agent", "10.0.0.1", "d"},
                             false};
      auto c = co_await svc.create(ns);
      if (c) tokens.push_back(c->token);
    }
    if (!tokens.empty()) g_sample_key = svc.keys().session(*session::parse_token(tokens.front()));
  };
  auto op = [&](int i, int w) -> asio::awaitable<test::OpOutcome> {
    bool ok = false;
    if (is_get && !tokens.empty()) {
      auto r = co_await svc.get(tokens[static_cast<std::size_t>(i) % tokens.size()]);
      ok = r && r->has_value();
    } else if (!is_get) {
      session::NewSession ns{TenantId::from("bench"),
                             UserId::from("c" + std::to_string(w) + "-" + std::to_string(i % 5000)),
                             "u@example.com",
                             "staff",
                             {"bench-agent", "10.0.0.1", "d"},
                             false};
      auto r = co_await svc.create(ns);
      ok = static_cast<bool>(r);
    }
    co_return ok ? test::OpOutcome::ok : test::OpOutcome::error;
  };
  auto res = test::run_load(io, concurrency, total, setup, op);
  asio::co_spawn(io, client->shutdown(1s), asio::detached);
  io.run_for(50ms);
  return res;
}

void bm(benchmark::State& state, bool is_get) {
  int concurrency = static_cast<int>(state.range(0));
  int total = g_smoke ? 1000 : (is_get ? 400000 : 40000);
  std::string name = std::string(is_get ? "get" : "create") + "/c" + std::to_string(concurrency);
  for (auto _ : state) {
    auto r = run_load(is_get, concurrency, total);
    const double ops = test::report(state, r, total);
    g_ops[name] = std::max(g_ops[name], ops);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = jeweler::test::take_smoke_flag(argc, argv, g_smoke);
  int n = static_cast<int>(args.size());
  test::RedisServer server(test::RedisServerOptions{.appendonly = false});
  g_server = &server;
  int reps = g_smoke ? 1 : 3;
  benchmark::RegisterBenchmark("session/get", [](benchmark::State& s) { bm(s, true); })
      ->Arg(256)
      ->UseManualTime()
      ->Iterations(1)
      ->Repetitions(reps)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("session/create", [](benchmark::State& s) { bm(s, false); })
      ->Arg(16)
      ->Arg(256)
      ->UseManualTime()
      ->Iterations(1)
      ->Repetitions(reps)
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  // The same EVALSHA the service sends for a get hit (no device check).
  redis::Script get_script("session.get", session::detail::lua::get);
  server.cli({"SCRIPT", "LOAD", get_script.source()});
  std::string count = g_smoke ? "2000" : "400000";
  double evalsha = 0;
  if (!g_sample_key.empty())
    evalsha = test::redis_benchmark_rps(
        g_server->port(), "-P 16 -c 50 -n " + count + " EVALSHA " + get_script.sha1() + " 1 '" +
                              g_sample_key + "' 86400000 60000 0 x x");
  double get = test::redis_benchmark_rps(g_server->port(), "-P 16 -c 50 -n " + count + " -t get");

  std::printf("\n== summary (same server, same run) ==\n");
  std::printf("redis-benchmark -P 16 -c 50 EVALSHA(session.get): %.0f/s\n", evalsha);
  std::printf("redis-benchmark -P 16 -c 50 GET:                   %.0f/s\n", get);
  std::printf("jeweler get/c256:    %.0f ops/s = %.0f%% of EVALSHA, %.0f%% of GET\n",
              g_ops["get/c256"], evalsha > 0 ? 100 * g_ops["get/c256"] / evalsha : 0,
              get > 0 ? 100 * g_ops["get/c256"] / get : 0);
  for (const char* c : {"create/c16", "create/c256"})
    std::printf("jeweler %s: %.0f ops/s\n", c, g_ops[c]);
  return (evalsha > 0 && get > 0 && g_ops["get/c256"] > 0) ? 0 : 1;
}
