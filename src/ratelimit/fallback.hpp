// The in-process limiter used while Redis is unreachable (fail open). One
// instance per process, shared (std::shared_ptr) by the per-thread Limiters;
// thread-safe. Same algorithms and semantics as the Redis scripts, on the
// local clock; state is per process, so N processes admit up to N x limit
// during an outage. Memory is bounded by `max_keys` (expired keys are swept
// first; when every key is live the oldest-touched half is forgotten).
#pragma once

#include <jeweler/ratelimit/decision.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace jeweler::ratelimit {

class Fallback {
 public:
  using Clock = std::function<std::int64_t()>;  // Unix ms
  explicit Fallback(std::size_t max_keys = 100'000, Clock clock = {});

  /// Checks all `checks` atomically: either every consuming check is counted
  /// or (one rejected) none is. `now_ms` overrides the clock (tests).
  Decision evaluate(const std::vector<Check>& checks, std::optional<std::int64_t> now_ms = {});

  /// Gives back a unit reserved by evaluate() (Reservation::fallback).
  void release(const Reservation& r);
  /// The in-process key of a check (its Redis key without prefix).
  static std::string key_of(const Check& c);

  std::size_t size() const;
  void clear();
  std::int64_t now_ms() const;

 private:
  struct Entry {
    std::deque<std::int64_t> log;       // sliding_log: admission times, oldest first
    std::int64_t w = -1, c = 0, p = 0;  // sliding_counter: window index, current, previous
    double tat = 0;                     // gcra: theoretical arrival time
    std::int64_t expires_at = 0;        // the entry is meaningless from then on
    std::uint64_t touched = 0;
  };
  void sweep(std::int64_t now);

  std::size_t max_keys_;
  Clock clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::uint64_t tick_ = 0;
};

}  // namespace jeweler::ratelimit
