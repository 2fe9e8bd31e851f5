// The platform's typed data (API.md section 4): KPIs, gold price,
// customers, products, invoices, permissions over the raw CacheService calls.
#include <jeweler/cache/cache.hpp>
#include <jeweler/cache/detail/keys.hpp>

#include <boost/asio/this_coro.hpp>

#include <spdlog/spdlog.h>

#include <string>
#include <unordered_map>

namespace jeweler::cache {

namespace json = boost::json;
using detail::invalid;

namespace {
constexpr std::string_view kKpiKey = "dashboard";
constexpr std::string_view kGoldKey = "current";
}  // namespace

asio::awaitable<Result<std::optional<KpiData>>> CacheService::get_kpi(const TenantId& t) {
  auto r = co_await get_json(t, ns::kpi, kKpiKey);
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<KpiData>{};
  auto k = kpi_from_json(**r);
  if (!k) {
    count(t, ns::kpi, &detail::AtomicCounters::errors);
    co_return std::optional<KpiData>{};
  }
  co_return std::optional<KpiData>(*k);
}

asio::awaitable<Result<void>> CacheService::set_kpi(const TenantId& t, const KpiData& k) {
  co_return co_await set_json(t, ns::kpi, kKpiKey, to_json(k));
}

asio::awaitable<Result<Fetched<KpiData>>> CacheService::get_or_set_kpi(const TenantId& t,
                                                                       KpiLoader loader) {
  if (!loader) co_return invalid();
  JsonLoader jl = [&loader]() -> asio::awaitable<Result<json::value>> {
    auto r = co_await loader();
    if (!r) co_return r.error();
    co_return to_json(*r);
  };
  for (int attempt = 0;; ++attempt) {
    auto r = co_await get_or_set_json(t, ns::kpi, kKpiKey, jl);
    if (!r) co_return r.error();
    if (auto k = kpi_from_json(r->value)) co_return Fetched<KpiData>{*k, r->source};
    count(t, ns::kpi, &detail::AtomicCounters::errors);
    if (attempt > 0 || r->source != Source::hit) co_return make_error_code(errc::corrupt_data);
    (void)co_await del(t, ns::kpi, kKpiKey);
  }
}

redis::Command CacheService::kpi_read(const TenantId& t) const {
  return redis::Command::make("GET", redis_key(t, ns::kpi, kKpiKey));
}

std::optional<Fetched<KpiData>> CacheService::kpi_hit(const TenantId& t, const redis::Reply& r) {
  if (!r.is_string()) return std::nullopt;
  // The entry changes when the KPI is recomputed, and is read on every
  // dashboard request in between: the bytes of this thread's last hit per
  // tenant are kept with their parsed value, so a hit with the same bytes
  // skips parsing and validating them again. At most kMemoTenants entries.
  struct Parsed {
    std::string raw;
    KpiData value;
  };
  constexpr std::size_t kMemoTenants = 256;
  thread_local std::unordered_map<std::string, Parsed> memo;
  KpiData k;
  auto it = memo.find(t.str());
  if (it != memo.end() && it->second.raw == r.str) {
    k = it->second.value;
  } else {
    auto v = parse_json(r.str);
    if (!v) return std::nullopt;
    auto parsed = kpi_from_json(*v);
    if (!parsed) return std::nullopt;  // get_or_set_kpi() drops and reloads it
    k = *parsed;
    if (it == memo.end() && memo.size() >= kMemoTenants) memo.clear();
    memo[t.str()] = Parsed{r.str, k};
  }
  redis_ok();
  count(t, ns::kpi, &detail::AtomicCounters::hits);
  return Fetched<KpiData>{k, Source::hit};
}

asio::awaitable<Result<bool>> CacheService::invalidate_kpi(const TenantId& t) {
  co_return co_await del(t, ns::kpi, kKpiKey);
}

asio::awaitable<Result<std::optional<GoldPrice>>> CacheService::get_gold_price(const TenantId& t) {
  auto r = co_await get_json(t, ns::gold_price, kGoldKey);
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<GoldPrice>{};
  auto g = gold_price_from_json(**r);
  if (!g) {
    count(t, ns::gold_price, &detail::AtomicCounters::errors);
    co_return std::optional<GoldPrice>{};
  }
  co_return std::optional<GoldPrice>(std::move(*g));
}

asio::awaitable<Result<void>> CacheService::set_gold_price(const TenantId& t, const GoldPrice& g) {
  co_return co_await set_json(t, ns::gold_price, kGoldKey, to_json(g));
}

asio::awaitable<Result<Fetched<GoldPrice>>> CacheService::get_or_set_gold_price(
    const TenantId& t, GoldPriceLoader loader) {
  if (!loader) co_return invalid();
  JsonLoader jl = [&loader]() -> asio::awaitable<Result<json::value>> {
    auto r = co_await loader();
    if (!r) co_return r.error();
    co_return to_json(*r);
  };
  for (int attempt = 0;; ++attempt) {
    auto r = co_await get_or_set_json(t, ns::gold_price, kGoldKey, jl);
    if (!r) co_return r.error();
    if (auto g = gold_price_from_json(r->value))
      co_return Fetched<GoldPrice>{std::move(*g), r->source};
    count(t, ns::gold_price, &detail::AtomicCounters::errors);
    if (attempt > 0 || r->source != Source::hit) co_return make_error_code(errc::corrupt_data);
    (void)co_await del(t, ns::gold_price, kGoldKey);
  }
}

asio::awaitable<Result<std::optional<json::value>>> CacheService::get_customer(
    const TenantId& t, std::string_view id) {
  co_return co_await get_json(t, ns::customer, id);
}
asio::awaitable<Result<void>> CacheService::set_customer(const TenantId& t, std::string_view id,
                                                         const json::value& v) {
  co_return co_await set_json(t, ns::customer, id, v);
}
asio::awaitable<Result<std::optional<json::value>>> CacheService::get_product(const TenantId& t,
                                                                              std::string_view id) {
  co_return co_await get_json(t, ns::product, id);
}
asio::awaitable<Result<void>> CacheService::set_product(const TenantId& t, std::string_view id,
                                                        const json::value& v) {
  co_return co_await set_json(t, ns::product, id, v);
}
asio::awaitable<Result<std::optional<json::value>>> CacheService::get_invoice(const TenantId& t,
                                                                              std::string_view id) {
  co_return co_await get_json(t, ns::invoice, id);
}
asio::awaitable<Result<void>> CacheService::set_invoice(const TenantId& t, std::string_view id,
                                                        const json::value& v) {
  co_return co_await set_json(t, ns::invoice, id, v);
}

asio::awaitable<Result<std::optional<Permissions>>> CacheService::get_permissions(
    const TenantId& t, const UserId& user) {
  auto r = co_await get_json(t, ns::permissions, user.str());
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<Permissions>{};
  auto p = permissions_from_json(**r);
  if (!p) {
    count(t, ns::permissions, &detail::AtomicCounters::errors);
    co_return std::optional<Permissions>{};
  }
  co_return std::optional<Permissions>(std::move(*p));
}

asio::awaitable<Result<void>> CacheService::set_permissions(const TenantId& t, const UserId& user,
                                                            const Permissions& p) {
  co_return co_await set_json(t, ns::permissions, user.str(), to_json(p));
}

asio::awaitable<Result<Fetched<Permissions>>> CacheService::get_or_set_permissions(
    const TenantId& t, const UserId& user, PermissionsLoader loader) {
  if (!loader) co_return invalid();
  JsonLoader jl = [&loader]() -> asio::awaitable<Result<json::value>> {
    auto r = co_await loader();
    if (!r) co_return r.error();
    co_return to_json(*r);
  };
  for (int attempt = 0;; ++attempt) {
    auto r = co_await get_or_set_json(t, ns::permissions, user.str(), jl);
    if (!r) co_return r.error();
    if (auto p = permissions_from_json(r->value))
      co_return Fetched<Permissions>{std::move(*p), r->source};
    count(t, ns::permissions, &detail::AtomicCounters::errors);
    if (attempt > 0 || r->source != Source::hit) co_return make_error_code(errc::corrupt_data);
    (void)co_await del(t, ns::permissions, user.str());
  }
}

}  // namespace jeweler::cache
