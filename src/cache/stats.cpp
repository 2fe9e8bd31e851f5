#include <jeweler/cache/stats.hpp>

namespace jeweler::cache {

namespace {
constexpr std::string_view kOther = "_other";
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

namespace detail {
Counters AtomicCounters::load() const noexcept {
  constexpr auto r = std::memory_order_relaxed;
  return Counters{hits.load(r),          misses.load(r), sets.load(r),      deletes.load(r),
                  invalidations.load(r), errors.load(r), fallbacks.load(r), loads.load(r)};
}

void AtomicCounters::reset() noexcept {
  for (auto* a : {&hits, &misses, &sets, &deletes, &invalidations, &errors, &fallbacks, &loads})
    a->store(0, std::memory_order_relaxed);
}
}  // namespace detail

Stats::Stats(std::size_t max_namespaces, std::size_t max_tenants)
    : max_namespaces_(max_namespaces), max_tenants_(max_tenants) {}

detail::AtomicCounters& Stats::find_or_add(Map& m, std::size_t max, std::string_view key) {
  std::lock_guard lock(mu_);
  if (auto it = m.find(key); it != m.end()) return *it->second;
  if (m.size() >= max) key = kOther;
  auto [it, inserted] = m.try_emplace(std::string(key));
  if (inserted) it->second = std::make_unique<detail::AtomicCounters>();
  return *it->second;
}

detail::AtomicCounters& Stats::ns(std::string_view name) {
  return find_or_add(namespaces_, max_namespaces_, name);
}

detail::AtomicCounters& Stats::tenant(const TenantId& t) {
  return find_or_add(tenants_, max_tenants_, t.str());
}

std::map<std::string, Counters> Stats::by_namespace() const {
  std::lock_guard lock(mu_);
  std::map<std::string, Counters> out;
  for (const auto& [name, c] : namespaces_) out.emplace(name, c->load());
  return out;
}

Counters Stats::for_tenant(const TenantId& t) const {
  std::lock_guard lock(mu_);
  if (auto it = tenants_.find(t.str()); it != tenants_.end()) return it->second->load();
  return {};
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
  for (auto& [name, c] : tenants_) c->reset();
}

}  // namespace jeweler::cache
