// Google Benchmark glue shared by the library benchmarks (header-only: only
// the benchmark binaries link Google Benchmark).
#pragma once

#include "load_runner.hpp"
#include "redis_benchmark.hpp"

#include <benchmark/benchmark.h>

namespace jeweler::test {

/// Records one load run in `state`: the manual iteration time, the rate
/// (`rate_name`, per second), p50/p99 latency, errors and `other` when
/// `other_name` is given; a run with errors is marked failed. Returns the rate.
inline double report(benchmark::State& state, LoadResult& r, int total,
                     const char* rate_name = "ops_per_s", const char* other_name = nullptr) {
  state.SetIterationTime(r.seconds);
  const double ops = total / r.seconds;
  state.counters[rate_name] = ops;
  state.counters["p50_us"] = percentile(r.latencies_us, 0.5);
  state.counters["p99_us"] = percentile(r.latencies_us, 0.99);
  state.counters["errors"] = r.errors;
  if (other_name) state.counters[other_name] = r.other;
  if (r.errors) state.SkipWithError("operations failed");
  return ops;
}

}  // namespace jeweler::test
