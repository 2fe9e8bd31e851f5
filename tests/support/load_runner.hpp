// The load loop shared by the library benchmarks: N concurrent coroutines on
// one io_context call one operation until a fixed number of calls was made,
// recording each call's latency.
#pragma once

#include <jeweler/redis/config.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <vector>

namespace jeweler::test {

enum class OpOutcome { ok, error, other };

struct LoadResult {
  double seconds = 0;                // from the end of setup to the last completion
  std::vector<double> latencies_us;  // one per call
  int errors = 0;                    // calls that returned OpOutcome::error
  int other = 0;                     // calls that returned OpOutcome::other (e.g. rejected)
};

/// `c` for a benchmark client: a generous command timeout (a loaded machine
/// must not turn into errors) and no health pings during the run.
redis::Config bench_client_config(redis::Config c);

/// Runs `setup` (untimed), then `callers` coroutines that call
/// `op(call_index, caller)` until `total` calls were started, and returns when
/// all finished. Drives `io` itself; `op` runs on `io`'s thread.
LoadResult run_load(
    boost::asio::io_context& io, int callers, int total,
    std::function<boost::asio::awaitable<void>()> setup,
    std::function<boost::asio::awaitable<OpOutcome>(int call_index, int caller)> op);

}  // namespace jeweler::test
