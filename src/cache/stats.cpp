#include <jeweler/cache/stats.hpp>

namespace jeweler::cache {

namespace {
constexpr std::string_view kOther = "_other";
using SvPair = std::pair<std::string_view, std::string_view>;
}  // namespace

bool Counters::empty() const noexcept {
  return hits == 0 && misses == 0 && sets == 0 && deletes == 0 && invalidations == 0 &&
         errors == 0 && fallbacks == 0 && loads == 0;
}

Counters& Counters::operator+=(const Counters& o) noexcept {
  hits += o.hits;
  misses += o.misses;
  sets += o.sets;
  deletes += o.deletes;
  invalidations += o.invalidations;
  errors += o.errors;
  fallbacks += o.fallbacks;
  loads += o.loads;
  return *this;
}

std::uint64_t* counter_by_name(Counters& c, std::string_view name) noexcept {
  std::uint64_t* fields[] = {&c.hits,          &c.misses, &c.sets,      &c.deletes,
                             &c.invalidations, &c.errors, &c.fallbacks, &c.loads};
  for (std::size_t i = 0; i < std::size(kCounterNames); ++i)
    if (name == kCounterNames[i]) return fields[i];
  return nullptr;
}

namespace detail {
Counters AtomicCounters::load() const noexcept {
  constexpr auto r = std::memory_order_relaxed;
  return Counters{hits.load(r),          misses.load(r), sets.load(r),      deletes.load(r),
                  invalidations.load(r), errors.load(r), fallbacks.load(r), loads.load(r)};
}

Counters AtomicCounters::take() noexcept {
  constexpr auto r = std::memory_order_relaxed;
  auto x = [](std::atomic<std::uint64_t>& a) {
    // Most counters of a pair are zero: a load avoids a write to the line.
    return a.load(r) == 0 ? 0 : a.exchange(0, r);
  };
  return Counters{x(hits),          x(misses), x(sets),      x(deletes),
                  x(invalidations), x(errors), x(fallbacks), x(loads)};
}

void AtomicCounters::add(const Counters& c) noexcept {
  constexpr auto r = std::memory_order_relaxed;
  hits.fetch_add(c.hits, r);
  misses.fetch_add(c.misses, r);
  sets.fetch_add(c.sets, r);
  deletes.fetch_add(c.deletes, r);
  invalidations.fetch_add(c.invalidations, r);
  errors.fetch_add(c.errors, r);
  fallbacks.fetch_add(c.fallbacks, r);
  loads.fetch_add(c.loads, r);
}

void AtomicCounters::reset() noexcept {
  for (auto* a : {&hits, &misses, &sets, &deletes, &invalidations, &errors, &fallbacks, &loads})
    a->store(0, std::memory_order_relaxed);
}
}  // namespace detail

Stats::Stats(std::size_t max_namespaces, std::size_t max_pending)
    : max_namespaces_(max_namespaces), max_pending_(max_pending) {}

detail::AtomicCounters& Stats::ns(std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto it = namespaces_.find(name); it != namespaces_.end()) return *it->second;
  if (namespaces_.size() >= max_namespaces_) name = kOther;
  auto [it, inserted] = namespaces_.try_emplace(std::string(name));
  if (inserted) it->second = std::make_unique<detail::AtomicCounters>();
  return *it->second;
}

detail::AtomicCounters* Stats::pending(const TenantId& t, std::string_view ns) {
  std::lock_guard lock(mu_);
  SvPair key{t.str(), ns};
  if (auto it = pending_.find(key); it != pending_.end()) return it->second.get();
  if (pending_.size() >= max_pending_) return nullptr;
  auto& slot = pending_[std::pair<std::string, std::string>(t.str(), ns)];
  slot = std::make_unique<detail::AtomicCounters>();
  return slot.get();
}

Stats::Batch Stats::take_pending(std::optional<std::string_view> tenant) {
  std::lock_guard lock(mu_);
  Batch b;
  b.ticket = next_ticket_++;
  outstanding_.insert(b.ticket);
  auto it = tenant ? pending_.lower_bound(SvPair{*tenant, std::string_view{}}) : pending_.begin();
  for (; it != pending_.end(); ++it) {
    if (tenant && it->first.first != *tenant) break;
    auto c = it->second->take();
    if (!c.empty()) b.deltas.push_back(Delta{it->first.first, it->first.second, c});
  }
  return b;
}

void Stats::finish(const Batch& b, const std::vector<Delta>& unwritten) {
  std::lock_guard lock(mu_);
  for (const auto& d : unwritten)
    if (auto it = pending_.find(SvPair{d.tenant, d.ns}); it != pending_.end())
      it->second->add(d.counters);
  outstanding_.erase(b.ticket);
}

bool Stats::settled_before(std::uint64_t ticket) const {
  std::lock_guard lock(mu_);
  return outstanding_.empty() || *outstanding_.begin() >= ticket;
}

std::map<std::string, Counters> Stats::by_namespace() const {
  std::lock_guard lock(mu_);
  std::map<std::string, Counters> out;
  for (const auto& [name, c] : namespaces_) out.emplace(name, c->load());
  return out;
}

Counters Stats::total() const {
  std::lock_guard lock(mu_);
  Counters sum;
  for (const auto& [name, c] : namespaces_) sum += c->load();
  return sum;
}

void Stats::reset() {
  std::lock_guard lock(mu_);
  for (auto& [name, c] : namespaces_) c->reset();
  for (auto& [key, c] : pending_) c->reset();
}

}  // namespace jeweler::cache
