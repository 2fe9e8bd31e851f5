#include <jeweler/ratelimit/headers.hpp>

#include <charconv>
#include <ctime>

namespace jeweler::ratelimit {

namespace {

// Built on every limited response: plain appends, no format strings.
void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_padded(std::string& out, int v, int width) {
  char buf[8];
  for (int i = width - 1; i >= 0; --i, v /= 10) buf[i] = static_cast<char>('0' + v % 10);
  out.append(buf, static_cast<std::size_t>(width));
}

void append_quoted_name(std::string& out, const LimitResult& r) {
  out += '"';
  out += r.policy->name;
  out += '"';
}

}  // namespace

std::string format_iso8601_ms(std::int64_t unix_ms) {
  std::int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  auto ms = static_cast<int>(unix_ms - secs * 1000);
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::string out;
  out.reserve(24);
  const int year = tm.tm_year + 1900;
  if (year >= 0 && year <= 9999)
    append_padded(out, year, 4);
  else
    append_int(out, year);
  out += '-';
  append_padded(out, tm.tm_mon + 1, 2);
  out += '-';
  append_padded(out, tm.tm_mday, 2);
  out += 'T';
  append_padded(out, tm.tm_hour, 2);
  out += ':';
  append_padded(out, tm.tm_min, 2);
  out += ':';
  append_padded(out, tm.tm_sec, 2);
  out += '.';
  append_padded(out, ms, 3);
  out += 'Z';
  return out;
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
    append_quoted_name(out, r);
    out += ";q=";
    append_int(out, r.limit);
    out += ";w=";
    append_int(out, ceil_seconds(r.window, 1));
  }
  return out;
}

std::string ratelimit_field(const Decision& d) {
  std::string out;
  for (const auto& r : d.results) {
    if (!out.empty()) out += ", ";
    auto t = r.allowed ? r.reset_after : std::max(r.reset_after, r.retry_after);
    append_quoted_name(out, r);
    out += ";r=";
    append_int(out, r.allowed ? r.remaining : 0);
    out += ";t=";
    append_int(out, ceil_seconds(t));
  }
  return out;
}

std::vector<Header> rate_limit_headers(const Decision& d) {
  std::vector<Header> h;
  h.reserve(7);
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
