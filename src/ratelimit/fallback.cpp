#include <jeweler/ratelimit/fallback.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace jeweler::ratelimit {

namespace {

// Smallest d >= 0 such that the counter estimate at now+d is <= target, with
// no new admissions (the same formula as the Lua script).
std::int64_t counter_until(double p, double c, double e, double W, double target) {
  if (p * (W - e) + c * W <= target * W) return 0;
  if (c <= target && p > 0)
    return static_cast<std::int64_t>(std::ceil((W - e) - (target - c) * W / p - 1e-9));
  if (target < 0 || c == 0) return -1;
  return static_cast<std::int64_t>((W - e) + std::ceil(W - target * W / c - 1e-9));
}

}  // namespace

Fallback::Fallback(std::size_t max_keys, Clock clock)
    : max_keys_(max_keys == 0 ? 1 : max_keys), clock_(std::move(clock)) {}

std::int64_t Fallback::now_ms() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::size_t Fallback::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void Fallback::clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

void Fallback::sweep(std::int64_t now) {
  std::erase_if(entries_, [&](const auto& kv) { return kv.second.expires_at <= now; });
  if (entries_.size() < max_keys_) return;
  std::vector<std::uint64_t> ticks;
  ticks.reserve(entries_.size());
  for (const auto& [k, e] : entries_) ticks.push_back(e.touched);
  auto mid = ticks.begin() + static_cast<long>(ticks.size() / 2);
  std::nth_element(ticks.begin(), mid, ticks.end());
  auto cut = *mid;
  std::erase_if(entries_, [&](const auto& kv) { return kv.second.touched <= cut; });
}

std::string Fallback::key_of(const Check& c) {
  return c.key.redis_key("", *c.policy);
}

void Fallback::release(const Reservation& r) {
  if (!r.policy) return;
  const Policy& pol = *r.policy;
  std::lock_guard lock(mu_);
  auto it = entries_.find(r.key);
  if (it == entries_.end()) return;
  auto& e = it->second;
  const std::int64_t W = pol.window.count();
  switch (pol.algorithm) {
    case Algorithm::sliding_log:
      for (auto l = e.log.rbegin(); l != e.log.rend(); ++l)
        if (*l == r.at_ms) {
          e.log.erase(std::next(l).base());
          break;
        }
      break;
    case Algorithm::sliding_counter:
      if (e.w == r.at_ms / W && e.c > 0)
        --e.c;
      else if (e.w == r.at_ms / W + 1 && e.p > 0)
        --e.p;
      break;
    case Algorithm::gcra:
      e.tat -= static_cast<double>(W) / static_cast<double>(pol.limit);
      break;
  }
}

Decision Fallback::evaluate(const std::vector<Check>& checks, std::optional<std::int64_t> now_opt) {
  const std::int64_t now = now_opt ? *now_opt : now_ms();
  Decision d;
  std::lock_guard lock(mu_);
  if (entries_.size() >= max_keys_) sweep(now);

  struct Work {
    Entry* e;
    bool admit;
    double tat;            // gcra
    std::int64_t idx, el;  // counter: window index, elapsed in window
  };
  std::vector<Work> work;
  work.reserve(checks.size());
  for (const auto& ch : checks) {
    const Policy& pol = *ch.policy;
    auto& e = entries_[key_of(ch)];
    e.touched = ++tick_;
    const std::int64_t W = pol.window.count();
    Work w{&e, false, 0, 0, 0};
    switch (pol.algorithm) {
      case Algorithm::sliding_log:
        while (!e.log.empty() && e.log.front() <= now - W) e.log.pop_front();
        w.admit = static_cast<std::int64_t>(e.log.size()) < pol.limit;
        break;
      case Algorithm::sliding_counter: {
        w.idx = now / W;
        w.el = now - w.idx * W;
        if (e.w == w.idx - 1) {
          e.p = e.c;
          e.c = 0;
        } else if (e.w != w.idx) {
          e.p = 0;
          e.c = 0;
        }
        e.w = w.idx;
        double est_w = static_cast<double>(e.p) * static_cast<double>(W - w.el) +
                       static_cast<double>(e.c + 1) * static_cast<double>(W);
        w.admit = est_w <= static_cast<double>(pol.limit) * static_cast<double>(W);
        break;
      }
      case Algorithm::gcra: {
        double T = static_cast<double>(W) / static_cast<double>(pol.limit);
        double tol = static_cast<double>(pol.capacity()) * T;
        w.tat = std::max(e.tat, static_cast<double>(now));
        w.admit = static_cast<double>(now) + tol - w.tat >= T - 1e-6;
        break;
      }
    }
    if (!w.admit) d.allowed = false;
    work.push_back(w);
  }

  for (std::size_t i = 0; i < checks.size(); ++i) {
    const Policy& pol = *checks[i].policy;
    auto& w = work[i];
    auto& e = *w.e;
    const std::int64_t W = pol.window.count();
    LimitResult r;
    r.policy = &pol;
    r.allowed = w.admit;
    r.consumed = d.allowed && checks[i].mode == Mode::consume;
    r.limit = pol.algorithm == Algorithm::gcra ? pol.capacity() : pol.limit;
    r.window = pol.window;
    r.now_ms = now;
    r.fallback = true;
    std::int64_t reset = 0, retry = 0;
    switch (pol.algorithm) {
      case Algorithm::sliding_log: {
        if (r.consumed) e.log.push_back(now);
        auto count = static_cast<std::int64_t>(e.log.size());
        r.remaining = std::max<std::int64_t>(0, pol.limit - count);
        if (count > 0) {
          auto at = static_cast<std::size_t>(std::max<std::int64_t>(0, count - pol.limit));
          reset = e.log[at] + W - now;
          if (!w.admit) retry = reset;
        }
        e.expires_at = e.log.empty() ? now : e.log.back() + W;
        break;
      }
      case Algorithm::sliding_counter: {
        if (r.consumed) ++e.c;
        double P = static_cast<double>(e.p), C = static_cast<double>(e.c);
        double Wd = static_cast<double>(W), el = static_cast<double>(w.el);
        double L = static_cast<double>(pol.limit);
        double est_w = P * (Wd - el) + C * Wd;
        r.remaining =
            std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor((L * Wd - est_w) / Wd)));
        if (r.remaining < pol.limit)
          reset = std::min<std::int64_t>(  // capped like the script: see docs/ratelimit.md
              W, counter_until(P, C, el, Wd, static_cast<double>(pol.limit - r.remaining - 1)));
        if (!w.admit) retry = counter_until(P, C, el, Wd, L - 1);
        e.expires_at = (w.idx + 2) * W;
        break;
      }
      case Algorithm::gcra: {
        double T = static_cast<double>(W) / static_cast<double>(pol.limit);
        double tol = static_cast<double>(pol.capacity()) * T;
        double tat = w.tat;
        if (r.consumed) {
          tat += T;
          e.tat = tat;
        }
        double slack = static_cast<double>(now) + tol - tat;
        auto rem = static_cast<std::int64_t>(std::floor(slack / T + 1e-9));
        r.remaining = std::clamp<std::int64_t>(rem, 0, pol.capacity());
        if (r.remaining < pol.capacity())
          reset = static_cast<std::int64_t>(
              std::ceil(static_cast<double>(r.remaining + 1) * T - slack - 1e-9));
        if (!w.admit) retry = static_cast<std::int64_t>(std::ceil(T - slack - 1e-9));
        e.expires_at =
            static_cast<std::int64_t>(std::ceil(std::max(e.tat, static_cast<double>(now))));
        break;
      }
    }
    r.reset_after = std::chrono::milliseconds(std::max<std::int64_t>(0, reset));
    r.retry_after = std::chrono::milliseconds(std::max<std::int64_t>(0, retry));
    d.results.push_back(r);
  }
  return d;
}

}  // namespace jeweler::ratelimit
