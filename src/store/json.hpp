// JSON of the store's entities with the exact field names of API.md section 4,
// and strict parsers of the write bodies for the routes. Money is a decimal
// number of currency units (cents / 100); times are epoch milliseconds.
//
//   res.body = json::serialize(store::to_json(customer));
//   store::Problem problem;
//   auto patch = store::parse_customer_patch(body, problem);
//   if (!patch) return error(422, "validation_failed", problem.field + ": " + problem.message);
//
// Parsers refuse (errc::invalid_argument + Problem): a body that is not an
// object, unknown fields, wrong types (a string for a number, a bool for an
// integer), out-of-range numbers, money with more than 2 decimals, and every
// rule of model.hpp's validate().
#pragma once

#include <jeweler/core/errc.hpp>
#include <jeweler/store/model.hpp>

#include <boost/json/value.hpp>

#include <string>

namespace jeweler::store {

boost::json::value to_json(const Customer& c);
boost::json::value to_json(const Product& p);  // without the internal cost
boost::json::value to_json(const Invoice& i);
boost::json::value to_json(const GoldPrice& g);  // pricePerGram {"24k",...,"10k"}
boost::json::value to_json(const Upload& u);
boost::json::value to_json(const Kpi& k);
/// {"id","tenantId","email","role","twoFactorEnabled"}: never the hash or the secret.
boost::json::value to_json(const User& u);

template <class T>
boost::json::value to_json(const Page<T>& page) {
  boost::json::array items;
  items.reserve(page.items.size());
  for (const auto& it : page.items) items.push_back(to_json(it));
  return boost::json::object{{"items", std::move(items)}, {"total", page.total}};
}

/// cents → currency units as a JSON number (1234 → 12.34).
double cents_to_units(std::int64_t cents) noexcept;

/// PUT /api/customers/{id}: any of name, email, phone, notes (strings).
Result<CustomerPatch> parse_customer_patch(const boost::json::value& body, Problem& problem);
/// PUT /api/products/{id}: any of name (string), price (number, <= 2 decimals),
/// stock, lowStockThreshold (non-negative integers).
Result<ProductPatch> parse_product_patch(const boost::json::value& body, Problem& problem);
/// POST /api/invoices: {"customerId","items":[{"productId","quantity"}],"status"?,"dueDate"?}.
Result<NewInvoice> parse_new_invoice(const boost::json::value& body, Problem& problem);

struct GoldPricePut {
  double price_per_gram_24k = 0;
  std::string currency = "USD";
};
/// PUT /api/gold-price: {"pricePerGram24k", "currency"?}; currency defaults to
/// the tenant's current one when the caller passes it as `default_currency`.
Result<GoldPricePut> parse_gold_price_put(const boost::json::value& body, Problem& problem,
                                          std::string_view default_currency = "USD");

/// ?limit= & ?offset= as raw query strings (absent = std::nullopt): digits
/// only, limit 1..100 (default 50), offset >= 0 (default 0).
Result<PageRequest> parse_page_request(const std::optional<std::string_view>& limit,
                                       const std::optional<std::string_view>& offset,
                                       Problem& problem);

}  // namespace jeweler::store
