// The metrics every Prometheus exporter is expected to have: process_*
// (read from /proc/self at scrape time: cheap, a few small reads) and
// <prefix>_build_info{version,...} 1.
#pragma once

#include <jeweler/http/metrics.hpp>

#include <optional>
#include <string_view>

namespace jeweler::http::metrics {

/// A point-in-time reading of /proc/self (Linux). Fields not readable stay 0.
struct ProcessSample {
  double cpu_seconds = 0;         // utime + stime
  double resident_bytes = 0;      // RSS
  double virtual_bytes = 0;       // VSZ
  double open_fds = 0;            // entries of /proc/self/fd
  double max_fds = 0;             // RLIMIT_NOFILE (soft)
  double start_time_seconds = 0;  // since the Unix epoch
  double threads = 0;
};
ProcessSample read_process();

/// process_cpu_seconds_total, process_resident_memory_bytes,
/// process_virtual_memory_bytes, process_open_fds, process_max_fds,
/// process_start_time_seconds, process_threads.
void add_process_collector(Registry& registry);

/// `name`{labels} 1, e.g. jeweler_build_info{version="0.1.0",compiler=...}.
void add_build_info(Registry& registry, std::string_view name, Labels labels);

}  // namespace jeweler::http::metrics
