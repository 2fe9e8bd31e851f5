#include <jeweler/cache/options.hpp>

namespace jeweler::cache {

std::chrono::milliseconds Options::ttl_for(std::string_view name) const {
  if (name == ns::kpi) return ttl.kpi;
  if (name == ns::gold_price) return ttl.gold_price;
  if (name == ns::customer) return ttl.customer;
  if (name == ns::product) return ttl.product;
  if (name == ns::invoice) return ttl.invoice;
  if (name == ns::permissions) return ttl.permissions;
  if (auto it = namespace_ttl.find(name); it != namespace_ttl.end()) return it->second;
  return default_ttl;
}

Options Options::from_env(const redis::Config::Lookup& lookup) {
  auto get = [&](std::string_view name) {
    return lookup ? lookup(name) : redis::getenv_lookup(name);
  };
  Options o;
  auto read = [&](std::string_view name, std::chrono::milliseconds& out) {
    if (auto v = get(name)) {
      auto d = redis::parse_duration(*v, name);
      if (d <= std::chrono::milliseconds::zero())
        throw redis::ConfigError(std::string(name) + " must be a positive duration");
      out = d;
    }
  };
  read("CACHE_TTL_KPI", o.ttl.kpi);
  read("CACHE_TTL_GOLD_PRICE", o.ttl.gold_price);
  read("CACHE_TTL_CUSTOMER", o.ttl.customer);
  read("CACHE_TTL_PRODUCT", o.ttl.product);
  read("CACHE_TTL_INVOICE", o.ttl.invoice);
  read("CACHE_TTL_PERMISSIONS", o.ttl.permissions);
  return o;
}

}  // namespace jeweler::cache
