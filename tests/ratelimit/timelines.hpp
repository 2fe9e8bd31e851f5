// Scripted timelines shared by the fallback unit test and the Redis test:
// the expected decisions of each algorithm, worked out by hand from the
// definitions in docs/ratelimit.md (limit 4 or 3, window 1000 ms).
#pragma once

#include <jeweler/ratelimit/policy.hpp>

#include <cstdint>
#include <vector>

namespace jeweler::ratelimit::test {

struct Step {
  std::int64_t t;  // ms after t0
  bool allowed;
  std::int64_t remaining;
  std::int64_t reset_after;
  std::int64_t retry_after;
};

struct Timeline {
  const char* name;
  Policy policy;
  std::vector<Step> steps;
};

inline constexpr std::int64_t kT0 = 1'700'000'000'000;  // a window boundary for 1000 ms

inline Policy timeline_policy(const char* name, Algorithm a, std::int64_t limit) {
  Policy p;
  p.name = name;
  p.limit = limit;
  p.window = std::chrono::milliseconds(1000);
  p.algorithm = a;
  return p;
}

inline std::vector<Timeline> timelines() {
  return {
      // Exact sliding log, limit 3: a request counts during [t, t + 1000).
      {"log",
       timeline_policy("tl-log", Algorithm::sliding_log, 3),
       {{0, true, 2, 1000, 0},
        {100, true, 1, 900, 0},
        {200, true, 0, 800, 0},
        {300, false, 0, 700, 700},
        {1000, true, 0, 100, 0},  // the request of t=0 stopped counting at 1000
        {1050, false, 0, 50, 50},
        {1100, true, 0, 100, 0}}},
      // Sliding counter, limit 4: estimate = prev * (1000 - elapsed) / 1000 + cur.
      // reset is capped at the window (uncapped: 2000, 1500, 1334, 1250);
      // retry is not.
      {"counter",
       timeline_policy("tl-counter", Algorithm::sliding_counter, 4),
       {{0, true, 3, 1000, 0},
        {0, true, 2, 1000, 0},
        {0, true, 1, 1000, 0},
        {0, true, 0, 1000, 0},
        {0, false, 0, 1000, 1250},  // next window at 1000, estimate 4*(1-e)/1 <= 3 at e=250
        {1250, true, 0, 250, 0},    // estimate 3 + 1
        {1250, false, 0, 250, 250},
        {1500, true, 0, 250, 0},
        {2000, true, 1, 500, 0},
        {4000, true, 3, 1000, 0}}},  // two windows later: fresh
      // GCRA, limit 4 per 1000 ms, burst 4: one slot every 250 ms.
      {"gcra",
       timeline_policy("tl-gcra", Algorithm::gcra, 4),
       {{0, true, 3, 250, 0},
        {0, true, 2, 250, 0},
        {0, true, 1, 250, 0},
        {0, true, 0, 250, 0},
        {0, false, 0, 250, 250},
        {100, false, 0, 150, 150},
        {250, true, 0, 250, 0},
        {1000, true, 2, 250, 0},
        {5000, true, 3, 250, 0}}},
  };
}

}  // namespace jeweler::ratelimit::test
