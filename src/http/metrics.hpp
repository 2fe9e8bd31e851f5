// A small Prometheus registry: counters, gauges and histograms with labels,
// rendered in the text exposition format (version 0.0.4).
//
// Hot path: look a series up once (family.with({...}) takes a lock) and keep
// the reference — series live as long as the registry and are updated with
// relaxed atomics, so updating is lock-free and thread-safe.
//
//   auto& reqs = registry.counter("jeweler_http_requests_total", "HTTP requests",
//                                 {"route", "method", "status"});
//   reqs.with({"/health", "GET", "200"}).inc();
//
// Other components export their own numbers through a collector callback,
// called on every scrape (from any thread: it must be thread-safe):
//
//   registry.add_collector([stats](metrics::Writer& w) {
//     w.counter("jeweler_cache_requests_total", "Cache lookups",
//               {{"namespace", "kpi"}, {"result", "hit"}}, stats->hits("kpi"));
//   });
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jeweler::http::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(double v = 1) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  void dec(double v = 1) noexcept { value_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double v) noexcept;
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double>& bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds + 1 (+Inf)
  std::atomic<double> sum_{0};
};

/// Default latency buckets in seconds (0.5 ms .. 10 s).
const std::vector<double>& default_latency_buckets();

/// Samples written by collectors at scrape time.
class Writer {
 public:
  void counter(std::string_view name, std::string_view help, const Labels& labels, double v);
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double v);

 private:
  friend class Registry;
  struct Family {
    std::string type, help;
    std::vector<std::pair<std::string, double>> samples;  // rendered labels -> value
  };
  void add(std::string_view type, std::string_view name, std::string_view help,
           const Labels& labels, double v);
  std::map<std::string, Family, std::less<>> families_;
};

template <class Metric>
class Family {
 public:
  /// The series for these label values (in the order of the family's label
  /// names). Created on first use; the reference stays valid.
  Metric& with(const std::vector<std::string>& values);

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> series_;
};

class Registry {
 public:
  using Collector = std::function<void(Writer&)>;

  /// Families are created once (a second call with the same name returns
  /// the same family; a different type or label set throws).
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names = {},
                               std::vector<double> bounds = default_latency_buckets());

  void add_collector(Collector c);

  /// The whole registry in Prometheus text format.
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family<Counter>>, std::less<>> counters_;
  std::map<std::string, std::unique_ptr<Family<Gauge>>, std::less<>> gauges_;
  std::map<std::string, std::unique_ptr<Family<Histogram>>, std::less<>> histograms_;
  std::vector<Collector> collectors_;
  void check_free(const std::string& name, std::string_view type) const;
};

/// Escapes a label value (backslash, quote, newline) as the format requires.
std::string escape_label(std::string_view v);
/// Formats a sample value ("+Inf", integers without exponent, ...).
std::string format_value(double v);

}  // namespace jeweler::http::metrics
