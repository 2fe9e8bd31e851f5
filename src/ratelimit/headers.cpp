#include <jeweler/ratelimit/headers.hpp>

#include <fmt/format.h>

#include <ctime>

namespace jeweler::ratelimit {

std::string format_iso8601_ms(std::int64_t unix_ms) {
  std::int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  auto ms = unix_ms - secs * 1000;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::int64_t ceil_seconds(std::chrono::milliseconds ms, std::int64_t min) {
  auto c = ms.count();
  std::int64_t s = c <= 0 ? 0 : (c + 999) / 1000;
  return s < min ? min : s;
}

std::int64_t retry_after_seconds(const Decision& d) {
  return ceil_seconds(d.retry_after(), 1);
}

std::string policy_field(const Decision& d) {
  std::string out;
  for (const auto& r : d.results) {
    if (!out.empty()) out += ", ";
    out += fmt::format("\"{}\";q={};w={}", r.policy->name, r.limit, ceil_seconds(r.window, 1));
  }
  return out;
}

std::string ratelimit_field(const Decision& d) {
  std::string out;
  for (const auto& r : d.results) {
    if (!out.empty()) out += ", ";
    auto t = r.allowed ? r.reset_after : std::max(r.reset_after, r.retry_after);
    out += fmt::format("\"{}\";r={};t={}", r.policy->name, r.allowed ? r.remaining : 0,
                       ceil_seconds(t));
  }
  return out;
}

std::vector<Header> rate_limit_headers(const Decision& d) {
  std::vector<Header> h;
  const LimitResult* m = d.most_restrictive();
  if (!m) return h;
  const auto reset_at = m->allowed ? m->reset_at_ms() : m->now_ms + m->retry_after.count();
  h.push_back({"X-RateLimit-Limit", std::to_string(m->limit)});
  h.push_back({"X-RateLimit-Remaining", std::to_string(m->allowed ? m->remaining : 0)});
  h.push_back({"X-RateLimit-Reset", format_iso8601_ms(reset_at)});
  h.push_back({"X-RateLimit-Window", std::to_string(m->window.count())});
  h.push_back({"RateLimit-Policy", policy_field(d)});
  h.push_back({"RateLimit", ratelimit_field(d)});
  if (!d.allowed) h.push_back({"Retry-After", std::to_string(retry_after_seconds(d))});
  return h;
}

}  // namespace jeweler::ratelimit
