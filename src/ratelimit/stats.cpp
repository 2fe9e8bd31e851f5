#include <jeweler/ratelimit/stats.hpp>

#include <fmt/format.h>

namespace jeweler::ratelimit {

detail::AtomicPolicyCounters& Stats::policy(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = policies_.find(name);
  if (it != policies_.end()) return *it->second;
  std::string key(name);
  if (policies_.size() >= max_policies_) key = "_other";
  auto& slot = policies_[key];
  if (!slot) slot = std::make_unique<detail::AtomicPolicyCounters>();
  return *slot;
}

std::map<std::string, PolicyCounters> Stats::snapshot() const {
  std::lock_guard lock(mu_);
  std::map<std::string, PolicyCounters> out;
  for (const auto& [name, c] : policies_) {
    auto& o = out[name];
    o.allowed = c->allowed.load(std::memory_order_relaxed);
    o.rejected = c->rejected.load(std::memory_order_relaxed);
    o.unavailable = c->unavailable.load(std::memory_order_relaxed);
    o.fallback = c->fallback.load(std::memory_order_relaxed);
    o.errors = c->errors.load(std::memory_order_relaxed);
  }
  return out;
}

PolicyCounters Stats::for_policy(std::string_view name) const {
  auto all = snapshot();
  auto it = all.find(std::string(name));
  return it == all.end() ? PolicyCounters{} : it->second;
}

std::string Stats::prometheus() const {
  auto all = snapshot();
  std::string out;
  out += "# HELP jeweler_ratelimit_decisions_total Rate-limit decisions per policy.\n";
  out += "# TYPE jeweler_ratelimit_decisions_total counter\n";
  for (const auto& [name, c] : all) {
    out +=
        fmt::format("jeweler_ratelimit_decisions_total{{policy=\"{}\",decision=\"allowed\"}} {}\n",
                    name, c.allowed);
    out +=
        fmt::format("jeweler_ratelimit_decisions_total{{policy=\"{}\",decision=\"rejected\"}} {}\n",
                    name, c.rejected);
    out += fmt::format(
        "jeweler_ratelimit_decisions_total{{policy=\"{}\",decision=\"unavailable\"}} {}\n", name,
        c.unavailable);
  }
  out += "# HELP jeweler_ratelimit_fallback_total Decisions made by the in-process fallback.\n";
  out += "# TYPE jeweler_ratelimit_fallback_total counter\n";
  for (const auto& [name, c] : all)
    out += fmt::format("jeweler_ratelimit_fallback_total{{policy=\"{}\"}} {}\n", name, c.fallback);
  out += "# HELP jeweler_ratelimit_errors_total Checks that failed with a Redis error reply.\n";
  out += "# TYPE jeweler_ratelimit_errors_total counter\n";
  for (const auto& [name, c] : all)
    out += fmt::format("jeweler_ratelimit_errors_total{{policy=\"{}\"}} {}\n", name, c.errors);
  out +=
      "# HELP jeweler_ratelimit_outages_total Times Redis became unreachable for the limiters.\n";
  out += "# TYPE jeweler_ratelimit_outages_total counter\n";
  out += fmt::format("jeweler_ratelimit_outages_total {}\n", outages());
  return out;
}

bool Stats::record_error(std::string_view message) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  const bool first = consecutive_errors_.fetch_add(1, std::memory_order_relaxed) == 0;
  if (first) {
    std::lock_guard lock(mu_);
    last_error_ = std::string(message.substr(0, 200));
  }
  return first;
}

HealthState Stats::health() const {
  HealthState h;
  h.errors = errors_.load(std::memory_order_relaxed);
  h.consecutive_errors = consecutive_errors_.load(std::memory_order_relaxed);
  if (h.consecutive_errors > 0) {
    std::lock_guard lock(mu_);
    h.last_error = last_error_;
  }
  // Reachability is the "redis" part of /health (read from the client at
  // that moment); a flag of the limiters' last outage would lag behind it.
  if (h.consecutive_errors >= kFailingAfter) h.status = "failing";
  return h;
}

}  // namespace jeweler::ratelimit
