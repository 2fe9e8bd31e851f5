#include <jeweler/cache/types.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>
#include <limits>

namespace jeweler::cache {

namespace json = boost::json;

namespace {

boost::system::error_code corrupt() {
  return make_error_code(errc::corrupt_data);
}

bool read_number(const json::object& o, std::string_view name, double& out) {
  auto* v = o.if_contains(name);
  if (!v) return false;
  if (v->is_double())
    out = v->get_double();
  else if (v->is_int64())
    out = static_cast<double>(v->get_int64());
  else if (v->is_uint64())
    out = static_cast<double>(v->get_uint64());
  else
    return false;
  return std::isfinite(out);
}

bool read_int(const json::object& o, std::string_view name, std::int64_t& out) {
  auto* v = o.if_contains(name);
  if (!v) return false;
  if (v->is_int64()) {
    out = v->get_int64();
    return true;
  }
  if (v->is_uint64() &&
      v->get_uint64() <= std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
    out = static_cast<std::int64_t>(v->get_uint64());
    return true;
  }
  // Integral doubles (JavaScript numbers) are accepted.
  if (v->is_double()) {
    double d = v->get_double();
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e15) {
      out = static_cast<std::int64_t>(d);
      return true;
    }
  }
  return false;
}

}  // namespace

json::value to_json(const KpiData& k) {
  return json::object{{"todaySales", k.today_sales},
                      {"todayProfit", k.today_profit},
                      {"newCustomers", k.new_customers},
                      {"goldSoldMTD", k.gold_sold_mtd},
                      {"overdueInvoices", k.overdue_invoices},
                      {"dueCheques", k.due_cheques},
                      {"lowInventoryItems", k.low_inventory_items},
                      {"lastUpdated", k.last_updated}};
}

json::value to_json(const GoldPrice& g) {
  json::object prices;
  for (const auto& [karat, price] : g.price_per_gram) prices[karat] = price;
  return json::object{
      {"currency", g.currency}, {"pricePerGram", std::move(prices)}, {"updatedAt", g.updated_at}};
}

json::value to_json(const Permissions& p) {
  json::array a;
  a.reserve(p.size());
  for (const auto& s : p) a.emplace_back(s);
  return a;
}

Result<KpiData> kpi_from_json(const json::value& v) {
  auto* o = v.if_object();
  if (!o) return corrupt();
  KpiData k;
  if (!read_number(*o, "todaySales", k.today_sales) ||
      !read_number(*o, "todayProfit", k.today_profit) ||
      !read_int(*o, "newCustomers", k.new_customers) ||
      !read_number(*o, "goldSoldMTD", k.gold_sold_mtd) ||
      !read_int(*o, "overdueInvoices", k.overdue_invoices) ||
      !read_int(*o, "dueCheques", k.due_cheques) ||
      !read_int(*o, "lowInventoryItems", k.low_inventory_items) ||
      !read_int(*o, "lastUpdated", k.last_updated))
    return corrupt();
  return k;
}

Result<GoldPrice> gold_price_from_json(const json::value& v) {
  auto* o = v.if_object();
  if (!o) return corrupt();
  GoldPrice g;
  auto* cur = o->if_contains("currency");
  auto* prices = o->if_contains("pricePerGram");
  if (!cur || !cur->is_string() || !prices || !prices->is_object()) return corrupt();
  g.currency = std::string(cur->get_string());
  for (const auto& [karat, price] : prices->get_object()) {
    double d = 0;
    if (price.is_double())
      d = price.get_double();
    else if (price.is_int64())
      d = static_cast<double>(price.get_int64());
    else if (price.is_uint64())
      d = static_cast<double>(price.get_uint64());
    else
      return corrupt();
    g.price_per_gram.emplace(std::string(karat), d);
  }
  if (!read_int(*o, "updatedAt", g.updated_at)) return corrupt();
  return g;
}

Result<Permissions> permissions_from_json(const json::value& v) {
  auto* a = v.if_array();
  if (!a) return corrupt();
  Permissions p;
  p.reserve(a->size());
  for (const auto& e : *a) {
    if (!e.is_string()) return corrupt();
    p.emplace_back(e.get_string());
  }
  return p;
}

Result<json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return corrupt();
  return v;
}

std::string serialize_json(const json::value& v) {
  return json::serialize(v);
}

}  // namespace jeweler::cache
