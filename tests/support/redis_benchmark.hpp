// The reference every library benchmark is measured against: `redis-benchmark`
// run on the same harness server in the same process run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace jeweler::test {

/// Runs `redis-benchmark -h 127.0.0.1 -p PORT -q --csv ARGS` and returns the
/// requests/s of each test it printed, keyed by the test name as printed
/// (e.g. "GET", "SET", or the command line for a custom command). Prints the
/// command it ran. Empty when redis-benchmark could not run.
std::map<std::string, double> redis_benchmark(std::uint16_t port, const std::string& args);

/// The highest requests/s over the tests `redis_benchmark` returned (0 if none):
/// for runs with a single test.
double redis_benchmark_rps(std::uint16_t port, const std::string& args);

/// The p-quantile (0..1) of `v` (reorders it); 0 when empty.
double percentile(std::vector<double>& v, double p);

/// Removes "--smoke" from the command line (the CTest smoke runs pass it)
/// and returns the remaining arguments for benchmark::Initialize; `smoke`
/// tells whether it was there.
std::vector<char*> take_smoke_flag(int argc, char** argv, bool& smoke);

}  // namespace jeweler::test
