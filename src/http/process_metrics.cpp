#include <jeweler/http/process_metrics.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace jeweler::http::metrics {

namespace {

/// Seconds since the epoch at boot ("btime" of /proc/stat); 0 if unknown.
double boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("btime ")) return std::stod(line.substr(6));
  return 0;
}

}  // namespace

ProcessSample read_process() {
  ProcessSample s;
  static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  static const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted from the last ')'. Field 3 (state) is tokens[0].
  auto close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream fields(stat.substr(close + 1));
    std::vector<std::string> t;
    for (std::string f; fields >> f;) t.push_back(f);
    if (t.size() > 21) {
      s.cpu_seconds = (std::stod(t[11]) + std::stod(t[12])) / ticks;  // utime, stime (14, 15)
      s.threads = std::stod(t[17]);                                   // num_threads (20)
      // starttime (22) counts from boot; without /proc/stat (systemd's
      // ProcSubset=pid) the start time is unknown and not exported.
      static const double boot = boot_time();
      s.start_time_seconds = boot > 0 ? boot + std::stod(t[19]) / ticks : 0;
      s.virtual_bytes = std::stod(t[20]);          // vsize (23), bytes
      s.resident_bytes = std::stod(t[21]) * page;  // rss (24), pages
    }
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    s.open_fds += 1;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0)
    s.max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(rl.rlim_cur);
  return s;
}

void add_process_collector(Registry& registry) {
  registry.add_collector([](Writer& w) {
    auto s = read_process();
    w.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", {},
              s.cpu_seconds);
    w.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
            s.resident_bytes);
    w.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {}, s.virtual_bytes);
    w.gauge("process_open_fds", "Number of open file descriptors.", {}, s.open_fds);
    if (s.max_fds >= 0)
      w.gauge("process_max_fds", "Maximum number of open file descriptors.", {}, s.max_fds);
    if (s.start_time_seconds > 0)
      w.gauge("process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.", {}, s.start_time_seconds);
    w.gauge("process_threads", "Number of OS threads in the process.", {}, s.threads);
  });
}

void add_build_info(Registry& registry, std::string_view name, Labels labels) {
  registry.add_collector([name = std::string(name), labels = std::move(labels)](Writer& w) {
    w.gauge(name, "A metric with a constant '1' value labeled by version and build details.",
            labels, 1);
  });
}

}  // namespace jeweler::http::metrics
