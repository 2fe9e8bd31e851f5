#include "redis_benchmark.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace jeweler::test {
namespace {

// Parses one CSV line of redis-benchmark: "NAME","12345.67",... The header
// line ("test","rps",...) has no number and is skipped.
bool parse_line(const std::string& line, std::string& name, double& rps) {
  if (line.size() < 2 || line[0] != '"') return false;
  auto end = line.find("\",\"", 1);
  if (end == std::string::npos) return false;
  name = line.substr(1, end - 1);
  const char* num = line.c_str() + end + 3;
  char* stop = nullptr;
  rps = std::strtod(num, &stop);
  return stop != num && *stop == '"';
}

}  // namespace

std::map<std::string, double> redis_benchmark(std::uint16_t port, const std::string& args) {
  std::string cmd = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) + " -q --csv " +
                    args + " 2>/dev/null";
  std::printf("$ %s\n", cmd.c_str());
  std::fflush(stdout);
  std::map<std::string, double> out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) {
    std::string name;
    double rps = 0;
    if (parse_line(buf, name, rps)) out[name] = rps;
  }
  ::pclose(f);
  return out;
}

double redis_benchmark_rps(std::uint16_t port, const std::string& args) {
  double best = 0;
  for (const auto& [name, rps] : redis_benchmark(port, args)) best = std::max(best, rps);
  return best;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

std::vector<char*> take_smoke_flag(int argc, char** argv, bool& smoke) {
  std::vector<char*> args;
  smoke = false;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--smoke")
      smoke = true;
    else
      args.push_back(argv[i]);
  }
  return args;
}

}  // namespace jeweler::test
