// Typed platform data held in the cache and their JSON mappings (the field
// names of the seed / API.md). Parsing never throws: a value that does not fit
// is errc::corrupt_data.
#pragma once

#include <jeweler/core/errc.hpp>

#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace jeweler::cache {

/// Dashboard KPIs of one tenant (the seed's KPIData).
struct KpiData {
  double today_sales = 0;                // todaySales
  double today_profit = 0;               // todayProfit
  std::int64_t new_customers = 0;        // newCustomers
  double gold_sold_mtd = 0;              // goldSoldMTD (grams)
  std::int64_t overdue_invoices = 0;     // overdueInvoices
  std::int64_t due_cheques = 0;          // dueCheques
  std::int64_t low_inventory_items = 0;  // lowInventoryItems
  std::int64_t last_updated = 0;         // lastUpdated (epoch ms)
  friend bool operator==(const KpiData&, const KpiData&) = default;
};

/// Gold price of one tenant: per gram, per karat ("24k", "22k", ...).
struct GoldPrice {
  std::string currency;                          // currency
  std::map<std::string, double> price_per_gram;  // pricePerGram
  std::int64_t updated_at = 0;                   // updatedAt (epoch ms)
  friend bool operator==(const GoldPrice&, const GoldPrice&) = default;
};

/// A user's permissions (strings such as "invoice:create").
using Permissions = std::vector<std::string>;

boost::json::value to_json(const KpiData& k);
boost::json::value to_json(const GoldPrice& g);
boost::json::value to_json(const Permissions& p);

Result<KpiData> kpi_from_json(const boost::json::value& v);
Result<GoldPrice> gold_price_from_json(const boost::json::value& v);
Result<Permissions> permissions_from_json(const boost::json::value& v);

/// JSON text <-> value without exceptions (corrupt_data on bad text).
Result<boost::json::value> parse_json(std::string_view text);
std::string serialize_json(const boost::json::value& v);

}  // namespace jeweler::cache
