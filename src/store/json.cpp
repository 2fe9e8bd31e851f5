#include <jeweler/store/json.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>

#include <cmath>
#include <initializer_list>

namespace jeweler::store {

namespace json = boost::json;

double cents_to_units(std::int64_t cents) noexcept {
  return static_cast<double>(cents) / 100.0;
}

namespace {
// Boost.JSON 1.81 writes every double in exponent form (100.0 -> 1E2,
// 1299.99 -> 1.29999E3): valid JSON, but integral amounts read better as
// integers, so those are emitted as int64.
json::value number(double d) {
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e15)
    return static_cast<std::int64_t>(d);
  return d;
}
json::value money(std::int64_t cents) {
  if (cents % 100 == 0) return cents / 100;
  return cents_to_units(cents);
}
}  // namespace

json::value to_json(const Customer& c) {
  return json::object{{"id", c.id},
                      {"name", c.name},
                      {"email", c.email},
                      {"phone", c.phone},
                      {"notes", c.notes},
                      {"createdAt", c.created_at},
                      {"updatedAt", c.updated_at}};
}

json::value to_json(const Product& p) {
  return json::object{{"id", p.id},
                      {"sku", p.sku},
                      {"name", p.name},
                      {"karat", p.karat},
                      {"weightGrams", number(p.weight_grams)},
                      {"price", money(p.price_cents)},
                      {"stock", p.stock},
                      {"lowStockThreshold", p.low_stock_threshold},
                      {"updatedAt", p.updated_at}};
}

json::value to_json(const Invoice& i) {
  json::array items;
  items.reserve(i.items.size());
  for (const auto& it : i.items)
    items.push_back(json::object{{"productId", it.product_id},
                                 {"quantity", it.quantity},
                                 {"unitPrice", money(it.unit_price_cents)}});
  json::object o{{"id", i.id},
                 {"customerId", i.customer_id},
                 {"items", std::move(items)},
                 {"total", money(i.total_cents)},
                 {"status", to_string(i.status)},
                 {"dueDate", nullptr},
                 {"createdAt", i.created_at}};
  if (i.due_date) o["dueDate"] = *i.due_date;
  return o;
}

json::value to_json(const GoldPrice& g) {
  json::object per;
  for (int k : GoldPrice::karats) per[std::to_string(k) + "k"] = number(g.price_per_gram(k));
  return json::object{
      {"currency", g.currency}, {"pricePerGram", std::move(per)}, {"updatedAt", g.updated_at}};
}

json::value to_json(const Upload& u) {
  return json::object{
      {"id", u.id},         {"filename", u.filename},        {"size", u.size},
      {"sha256", u.sha256}, {"contentType", u.content_type}, {"createdAt", u.created_at}};
}

json::value to_json(const Kpi& k) {
  return json::object{{"todaySales", money(k.today_sales_cents)},
                      {"todayProfit", money(k.today_profit_cents)},
                      {"newCustomers", k.new_customers},
                      {"goldSoldMTD", number(k.gold_sold_mtd_grams)},
                      {"overdueInvoices", k.overdue_invoices},
                      {"dueCheques", k.due_cheques},
                      {"lowInventoryItems", k.low_inventory_items},
                      {"lastUpdated", k.last_updated}};
}

json::value to_json(const User& u) {
  return json::object{{"id", u.id.str()},
                      {"tenantId", u.tenant_id.str()},
                      {"email", u.email},
                      {"role", to_string(u.role)},
                      {"twoFactorEnabled", u.two_factor_enabled()}};
}

// ---------------------------------------------------------------------------

namespace {

boost::system::error_code fail(Problem& problem, std::string field, std::string message) {
  problem = Problem{std::move(field), std::move(message)};
  return jeweler::errc::invalid_argument;
}

/// The object, or a problem; refuses fields outside `allowed`.
const json::object* as_object(const json::value& body,
                              std::initializer_list<std::string_view> allowed, Problem& problem) {
  const json::object* o = body.if_object();
  if (!o) {
    problem = Problem{"", "the body must be a JSON object"};
    return nullptr;
  }
  for (const auto& kv : *o) {
    bool known = false;
    for (auto a : allowed) known = known || kv.key() == a;
    if (!known) {
      problem = Problem{std::string(kv.key()), "unknown field"};
      return nullptr;
    }
  }
  return o;
}

std::optional<std::string> get_string(const json::value& v, std::string_view field,
                                      Problem& problem) {
  if (!v.is_string()) {
    problem = Problem{std::string(field), "must be a string"};
    return std::nullopt;
  }
  return std::string(v.get_string());
}

/// An integer in [lo, hi]: JSON integers, or a double with an integral value.
std::optional<std::int64_t> get_int(const json::value& v, std::string_view field, std::int64_t lo,
                                    std::int64_t hi, Problem& problem) {
  std::optional<std::int64_t> out;
  if (v.is_int64()) {
    out = v.get_int64();
  } else if (v.is_uint64()) {
    if (v.get_uint64() <= static_cast<std::uint64_t>(hi))
      out = static_cast<std::int64_t>(v.get_uint64());
  } else if (v.is_double()) {
    double d = v.get_double();
    if (std::isfinite(d) && std::trunc(d) == d && d >= static_cast<double>(lo) &&
        d <= static_cast<double>(hi))
      out = static_cast<std::int64_t>(d);
    else if (std::isfinite(d) && std::trunc(d) != d) {
      problem = Problem{std::string(field), "must be an integer"};
      return std::nullopt;
    }
  } else {
    problem = Problem{std::string(field), "must be an integer"};
    return std::nullopt;
  }
  if (!out || *out < lo || *out > hi) {
    problem = Problem{std::string(field),
                      "must be between " + std::to_string(lo) + " and " + std::to_string(hi)};
    return std::nullopt;
  }
  return out;
}

std::optional<double> get_number(const json::value& v, std::string_view field, Problem& problem) {
  double d;
  if (v.is_int64())
    d = static_cast<double>(v.get_int64());
  else if (v.is_uint64())
    d = static_cast<double>(v.get_uint64());
  else if (v.is_double())
    d = v.get_double();
  else {
    problem = Problem{std::string(field), "must be a number"};
    return std::nullopt;
  }
  if (!std::isfinite(d)) {
    problem = Problem{std::string(field), "must be a finite number"};
    return std::nullopt;
  }
  return d;
}

/// A money amount with at most two decimals, 0..price_max, in cents.
std::optional<std::int64_t> get_money(const json::value& v, std::string_view field,
                                      Problem& problem) {
  auto d = get_number(v, field, problem);
  if (!d) return std::nullopt;
  const double max_units = static_cast<double>(limits::price_max_cents) / 100.0;
  if (*d < 0 || *d > max_units) {
    problem = Problem{std::string(field), "must be between 0 and 100000000"};
    return std::nullopt;
  }
  const double cents = *d * 100.0;
  const double rounded = std::round(cents);
  if (std::fabs(cents - rounded) > 1e-6 * std::max(1.0, std::fabs(cents))) {
    problem = Problem{std::string(field), "must have at most two decimals"};
    return std::nullopt;
  }
  return static_cast<std::int64_t>(rounded);
}

}  // namespace

Result<CustomerPatch> parse_customer_patch(const json::value& body, Problem& problem) {
  const json::object* o = as_object(body, {"name", "email", "phone", "notes"}, problem);
  if (!o) return jeweler::errc::invalid_argument;
  CustomerPatch p;
  for (auto [field, target] : {std::pair{"name", &p.name}, std::pair{"email", &p.email},
                               std::pair{"phone", &p.phone}, std::pair{"notes", &p.notes}}) {
    if (auto it = o->find(field); it != o->end()) {
      auto s = get_string(it->value(), field, problem);
      if (!s) return jeweler::errc::invalid_argument;
      *target = std::move(*s);
    }
  }
  if (auto e = validate(p)) return fail(problem, e->field, e->message);
  return p;
}

Result<ProductPatch> parse_product_patch(const json::value& body, Problem& problem) {
  const json::object* o = as_object(body, {"name", "price", "stock", "lowStockThreshold"}, problem);
  if (!o) return jeweler::errc::invalid_argument;
  ProductPatch p;
  if (auto it = o->find("name"); it != o->end()) {
    auto s = get_string(it->value(), "name", problem);
    if (!s) return jeweler::errc::invalid_argument;
    p.name = std::move(*s);
  }
  if (auto it = o->find("price"); it != o->end()) {
    auto m = get_money(it->value(), "price", problem);
    if (!m) return jeweler::errc::invalid_argument;
    p.price_cents = *m;
  }
  if (auto it = o->find("stock"); it != o->end()) {
    auto n = get_int(it->value(), "stock", 0, limits::stock_max, problem);
    if (!n) return jeweler::errc::invalid_argument;
    p.stock = *n;
  }
  if (auto it = o->find("lowStockThreshold"); it != o->end()) {
    auto n = get_int(it->value(), "lowStockThreshold", 0, limits::stock_max, problem);
    if (!n) return jeweler::errc::invalid_argument;
    p.low_stock_threshold = *n;
  }
  if (auto e = validate(p)) return fail(problem, e->field, e->message);
  return p;
}

Result<NewInvoice> parse_new_invoice(const json::value& body, Problem& problem) {
  const json::object* o = as_object(body, {"customerId", "items", "status", "dueDate"}, problem);
  if (!o) return jeweler::errc::invalid_argument;
  NewInvoice inv;
  auto cid = o->find("customerId");
  if (cid == o->end()) return fail(problem, "customerId", "is required");
  auto s = get_string(cid->value(), "customerId", problem);
  if (!s) return jeweler::errc::invalid_argument;
  inv.customer_id = std::move(*s);

  auto items = o->find("items");
  if (items == o->end()) return fail(problem, "items", "is required");
  const json::array* arr = items->value().if_array();
  if (!arr) return fail(problem, "items", "must be an array");
  if (arr->size() > limits::invoice_items_max)
    return fail(problem, "items", "must contain at most 100 items");
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string f = "items[" + std::to_string(i) + "]";
    const json::object* io = (*arr)[i].if_object();
    if (!io) return fail(problem, f, "must be an object");
    NewInvoiceItem item;
    for (const auto& kv : *io)
      if (kv.key() != "productId" && kv.key() != "quantity")
        return fail(problem, f + "." + std::string(kv.key()), "unknown field");
    auto pid = io->find("productId");
    if (pid == io->end()) return fail(problem, f + ".productId", "is required");
    auto ps = get_string(pid->value(), f + ".productId", problem);
    if (!ps) return jeweler::errc::invalid_argument;
    item.product_id = std::move(*ps);
    auto q = io->find("quantity");
    if (q == io->end()) return fail(problem, f + ".quantity", "is required");
    auto qn = get_int(q->value(), f + ".quantity", 1, limits::quantity_max, problem);
    if (!qn) return jeweler::errc::invalid_argument;
    item.quantity = *qn;
    inv.items.push_back(std::move(item));
  }

  if (auto st = o->find("status"); st != o->end()) {
    auto ss = get_string(st->value(), "status", problem);
    if (!ss) return jeweler::errc::invalid_argument;
    auto parsed = parse_invoice_status(*ss);
    if (!parsed) return fail(problem, "status", "must be \"paid\" or \"due\"");
    inv.status = *parsed;
  }
  if (auto dd = o->find("dueDate"); dd != o->end() && !dd->value().is_null()) {
    auto n = get_int(dd->value(), "dueDate", 0, 253402300799999, problem);
    if (!n) return jeweler::errc::invalid_argument;
    inv.due_date = *n;
  }
  if (auto e = validate(inv)) {
    // Ids that cannot exist are reported like unknown ones by validate();
    // keep that wording.
    return fail(problem, e->field, e->message);
  }
  return inv;
}

Result<GoldPricePut> parse_gold_price_put(const json::value& body, Problem& problem,
                                          std::string_view default_currency) {
  const json::object* o = as_object(body, {"pricePerGram24k", "currency"}, problem);
  if (!o) return jeweler::errc::invalid_argument;
  GoldPricePut out;
  out.currency = std::string(default_currency);
  auto p = o->find("pricePerGram24k");
  if (p == o->end()) return fail(problem, "pricePerGram24k", "is required");
  auto d = get_number(p->value(), "pricePerGram24k", problem);
  if (!d) return jeweler::errc::invalid_argument;
  out.price_per_gram_24k = *d;
  if (auto c = o->find("currency"); c != o->end()) {
    auto s = get_string(c->value(), "currency", problem);
    if (!s) return jeweler::errc::invalid_argument;
    out.currency = std::move(*s);
  }
  if (auto e = validate_gold_price(out.price_per_gram_24k, out.currency))
    return fail(problem, e->field, e->message);
  return out;
}

Result<PageRequest> parse_page_request(const std::optional<std::string_view>& limit,
                                       const std::optional<std::string_view>& offset,
                                       Problem& problem) {
  auto parse = [&](std::string_view text, std::string_view field, std::int64_t lo,
                   std::int64_t hi) -> std::optional<std::int64_t> {
    if (text.empty() || text.size() > 12) {
      problem = Problem{std::string(field), "must be an integer"};
      return std::nullopt;
    }
    std::int64_t v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') {
        problem = Problem{std::string(field), "must be an integer"};
        return std::nullopt;
      }
      v = v * 10 + (c - '0');
    }
    if (v < lo || v > hi) {
      problem = Problem{std::string(field),
                        "must be between " + std::to_string(lo) + " and " + std::to_string(hi)};
      return std::nullopt;
    }
    return v;
  };
  PageRequest page;
  if (limit) {
    auto v = parse(*limit, "limit", 1, PageRequest::max_limit);
    if (!v) return jeweler::errc::invalid_argument;
    page.limit = static_cast<int>(*v);
  }
  if (offset) {
    auto v = parse(*offset, "offset", 0, limits::offset_max);
    if (!v) return jeweler::errc::invalid_argument;
    page.offset = *v;
  }
  return page;
}

}  // namespace jeweler::store
