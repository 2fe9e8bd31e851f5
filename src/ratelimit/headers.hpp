// Response headers of API.md section 3 from a Decision. Pure functions, no I/O.
//
//   X-RateLimit-Limit / -Remaining / -Reset (ISO 8601 UTC, ms) / -Window (ms)
//       for the most restrictive limit (Decision::most_restrictive)
//   RateLimit-Policy: "api";q=100;w=900, "api-tenant";q=1000;w=900
//   RateLimit: "api";r=95;t=300, "api-tenant";r=990;t=300
//       every limit that applied, in check order (draft-ietf-httpapi-ratelimit-headers-11)
//   Retry-After: whole seconds >= 1, only when the request is rejected
#pragma once

#include <jeweler/ratelimit/decision.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace jeweler::ratelimit {

struct Header {
  std::string name;
  std::string value;
  friend bool operator==(const Header&, const Header&) = default;
};

/// "2024-01-01T12:00:00.000Z"
std::string format_iso8601_ms(std::int64_t unix_ms);
/// Milliseconds rounded up to whole seconds (a client waiting that long is
/// never early); at least `min`.
std::int64_t ceil_seconds(std::chrono::milliseconds ms, std::int64_t min = 0);
/// Retry-After value: ceil(retry_after), at least 1.
std::int64_t retry_after_seconds(const Decision& d);
/// The RateLimit-Policy and RateLimit field values.
std::string policy_field(const Decision& d);
std::string ratelimit_field(const Decision& d);
/// All headers for the response (Retry-After included when rejected).
std::vector<Header> rate_limit_headers(const Decision& d);

}  // namespace jeweler::ratelimit
