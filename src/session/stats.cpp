#include <jeweler/session/stats.hpp>

namespace jeweler::session {

Counters Stats::snapshot() const noexcept {
  Counters c;
  c.created = created_.load(r);
  c.destroyed = destroyed_.load(r);
  c.evicted = evicted_.load(r);
  c.expired = expired_.load(r);
  c.rotated = rotated_.load(r);
  c.hits = hits_.load(r);
  c.misses = misses_.load(r);
  c.corrupt = corrupt_.load(r);
  c.errors = errors_.load(r);
  return c;
}

void Stats::reset() noexcept {
  for (auto* a : {&created_, &destroyed_, &evicted_, &expired_, &rotated_, &hits_, &misses_,
                  &corrupt_, &errors_})
    a->store(0, r);
  active_.store(-1, r);
}

}  // namespace jeweler::session
