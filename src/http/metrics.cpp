#include <jeweler/http/metrics.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace jeweler::http::metrics {

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) noexcept {
  // Non-cumulative bucket counts; snapshot() accumulates.
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(acc);
  }
  s.count = acc;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

namespace {

std::string render_labels(const std::vector<std::string>& names,
                          const std::vector<std::string>& values, std::string_view extra_name = {},
                          std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return {};
  std::string s = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) s += ',';
    s += names[i];
    s += "=\"";
    s += escape_label(i < values.size() ? values[i] : std::string());
    s += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) s += ',';
    s += extra_name;
    s += "=\"";
    s += extra_value;
    s += '"';
  }
  s += '}';
  return s;
}

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

template <class Metric>
Metric& Family<Metric>::with(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size())
    throw std::invalid_argument("metric " + name_ + ": wrong number of label values");
  std::lock_guard lock(mu_);
  auto it = series_.find(values);
  if (it != series_.end()) return *it->second;
  std::unique_ptr<Metric> m;
  if constexpr (std::is_same_v<Metric, Histogram>)
    m = std::make_unique<Histogram>(bounds_);
  else
    m = std::make_unique<Metric>();
  auto& ref = *m;
  series_.emplace(values, std::move(m));
  return ref;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::check_free(const std::string& name, std::string_view type) const {
  bool c = counters_.count(name) && type != "counter";
  bool g = gauges_.count(name) && type != "gauge";
  bool h = histograms_.count(name) && type != "histogram";
  if (c || g || h) throw std::invalid_argument("metric " + name + " registered with another type");
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  check_free(name, "counter");
  auto& slot = counters_[name];
  if (!slot)
    slot.reset(new Family<Counter>(name, help, std::move(label_names)));
  else if (slot->label_names_ != label_names)
    throw std::invalid_argument("metric " + name + " registered with other labels");
  return *slot;
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  check_free(name, "gauge");
  auto& slot = gauges_[name];
  if (!slot)
    slot.reset(new Family<Gauge>(name, help, std::move(label_names)));
  else if (slot->label_names_ != label_names)
    throw std::invalid_argument("metric " + name + " registered with other labels");
  return *slot;
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
  if (!std::is_sorted(bounds.begin(), bounds.end()) || bounds.empty())
    throw std::invalid_argument("metric " + name + ": bucket bounds must be sorted");
  std::lock_guard lock(mu_);
  check_free(name, "histogram");
  auto& slot = histograms_[name];
  if (!slot)
    slot.reset(new Family<Histogram>(name, help, std::move(label_names), std::move(bounds)));
  else if (slot->label_names_ != label_names)
    throw std::invalid_argument("metric " + name + " registered with other labels");
  return *slot;
}

void Registry::add_collector(Collector c) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(c));
}

void Writer::add(std::string_view type, std::string_view name, std::string_view help,
                 const Labels& labels, double v) {
  auto it = families_.find(name);
  if (it == families_.end())
    it = families_.emplace(std::string(name), Family{std::string(type), std::string(help), {}})
             .first;
  std::string l;
  if (!labels.empty()) {
    l = "{";
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i) l += ',';
      l += labels[i].first + "=\"" + escape_label(labels[i].second) + '"';
    }
    l += '}';
  }
  it->second.samples.emplace_back(std::move(l), v);
}

void Writer::counter(std::string_view name, std::string_view help, const Labels& labels, double v) {
  add("counter", name, help, labels, v);
}

void Writer::gauge(std::string_view name, std::string_view help, const Labels& labels, double v) {
  add("gauge", name, help, labels, v);
}

std::string Registry::render() const {
  std::vector<Collector> collectors;
  // One block per family name (samples of a family must be contiguous):
  // collector samples for a registered family join its block.
  std::map<std::string, std::string, std::less<>> blocks;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
    for (const auto& [name, fam] : counters_) {
      auto& out = blocks[name];
      header(out, name, fam->help_, "counter");
      std::lock_guard l2(fam->mu_);
      for (const auto& [values, m] : fam->series_)
        out +=
            name + render_labels(fam->label_names_, values) + ' ' + format_value(m->value()) + '\n';
    }
    for (const auto& [name, fam] : gauges_) {
      auto& out = blocks[name];
      header(out, name, fam->help_, "gauge");
      std::lock_guard l2(fam->mu_);
      for (const auto& [values, m] : fam->series_)
        out +=
            name + render_labels(fam->label_names_, values) + ' ' + format_value(m->value()) + '\n';
    }
    for (const auto& [name, fam] : histograms_) {
      auto& out = blocks[name];
      header(out, name, fam->help_, "histogram");
      std::lock_guard l2(fam->mu_);
      for (const auto& [values, m] : fam->series_) {
        auto s = m->snapshot();
        for (std::size_t i = 0; i <= s.bounds.size(); ++i) {
          std::string le = i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf";
          out += name + "_bucket" + render_labels(fam->label_names_, values, "le", le) + ' ' +
                 std::to_string(s.cumulative[i]) + '\n';
        }
        auto labels = render_labels(fam->label_names_, values);
        out += name + "_sum" + labels + ' ' + format_value(s.sum) + '\n';
        out += name + "_count" + labels + ' ' + std::to_string(s.count) + '\n';
      }
    }
  }
  // Collectors run outside the registry lock: they may be slow or take
  // their own locks.
  Writer w;
  for (const auto& c : collectors) c(w);
  for (const auto& [name, fam] : w.families_) {
    auto it = blocks.find(name);
    if (it == blocks.end()) {
      it = blocks.emplace(name, std::string()).first;
      header(it->second, name, fam.help, fam.type);
    }
    for (const auto& [labels, v] : fam.samples)
      it->second += name + labels + ' ' + format_value(v) + '\n';
  }
  std::string out;
  for (const auto& [name, block] : blocks) out += block;
  return out;
}

}  // namespace jeweler::http::metrics
