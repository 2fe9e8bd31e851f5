// Process-wide session statistics, shared (std::shared_ptr) by the per-thread
// SessionService instances. Thread-safe: relaxed atomics only.
#pragma once

#include <atomic>
#include <cstdint>

namespace jeweler::session {

/// A snapshot of the in-process counters (for /metrics).
struct Counters {
  std::uint64_t created = 0;    // sessions created
  std::uint64_t destroyed = 0;  // destroyed on request (logout, by id, destroy_all)
  std::uint64_t evicted = 0;    // destroyed by the per-user limit
  std::uint64_t expired = 0;    // found expired and cleaned from a user index
  std::uint64_t rotated = 0;    // tokens rotated
  std::uint64_t hits = 0;       // get/extend found a live session
  std::uint64_t misses = 0;     // get/extend found none (unknown, expired, malformed token)
  std::uint64_t corrupt = 0;    // unreadable session data met (logged, treated as none)
  std::uint64_t errors = 0;     // calls that failed (Redis unreachable, unexpected replies)
};

class Stats {
 public:
  Counters snapshot() const noexcept;
  void reset() noexcept;

  /// The last live-session figure SessionService::active_sessions() read
  /// (for the jeweler_sessions_active gauge); -1 before the first read.
  std::int64_t last_active() const noexcept { return active_.load(std::memory_order_relaxed); }
  void set_last_active(std::int64_t v) noexcept { active_.store(v, std::memory_order_relaxed); }

  // Used by SessionService.
  void add_created(std::uint64_t n = 1) noexcept { created_.fetch_add(n, r); }
  void add_destroyed(std::uint64_t n = 1) noexcept { destroyed_.fetch_add(n, r); }
  void add_evicted(std::uint64_t n = 1) noexcept { evicted_.fetch_add(n, r); }
  void add_expired(std::uint64_t n = 1) noexcept { expired_.fetch_add(n, r); }
  void add_rotated() noexcept { rotated_.fetch_add(1, r); }
  void add_hit() noexcept { hits_.fetch_add(1, r); }
  void add_miss() noexcept { misses_.fetch_add(1, r); }
  void add_corrupt() noexcept { corrupt_.fetch_add(1, r); }
  void add_error() noexcept { errors_.fetch_add(1, r); }

 private:
  static constexpr auto r = std::memory_order_relaxed;
  std::atomic<std::uint64_t> created_{0}, destroyed_{0}, evicted_{0}, expired_{0}, rotated_{0},
      hits_{0}, misses_{0}, corrupt_{0}, errors_{0};
  std::atomic<std::int64_t> active_{-1};
};

}  // namespace jeweler::session
