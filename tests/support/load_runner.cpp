#include "load_runner.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <chrono>

namespace jeweler::test {

namespace asio = boost::asio;

redis::Config bench_client_config(redis::Config c) {
  c.command_timeout = std::chrono::seconds(10);
  c.health_interval = std::chrono::hours(1);
  return c;
}

LoadResult run_load(asio::io_context& io, int callers, int total,
                    std::function<asio::awaitable<void>()> setup,
                    std::function<asio::awaitable<OpOutcome>(int, int)> op) {
  LoadResult res;
  res.latencies_us.reserve(static_cast<std::size_t>(total));
  int next = 0, finished = 0;
  bool started = false;
  std::chrono::steady_clock::time_point t0;
  auto caller = [&](int w) -> asio::awaitable<void> {
    while (next < total) {
      const int i = next++;
      auto s = std::chrono::steady_clock::now();
      OpOutcome o = co_await op(i, w);
      if (o == OpOutcome::error) ++res.errors;
      if (o == OpOutcome::other) ++res.other;
      res.latencies_us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
    }
    ++finished;
  };
  auto start = [&]() -> asio::awaitable<void> {
    if (setup) co_await setup();
    started = true;
    t0 = std::chrono::steady_clock::now();
    for (int w = 0; w < callers; ++w) asio::co_spawn(io, caller(w), asio::detached);
  };
  asio::co_spawn(io, start(), asio::detached);
  while (!started || finished < callers) io.run_one();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace jeweler::test
