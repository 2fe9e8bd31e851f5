// Domain model of the primary store (API.md section 4): the entities, their
// write inputs (New*, *Patch), pagination, roles and permissions, and the input
// validation the routes share with the repository. See docs/store.md.
//
// Money is held as integer minor units (cents) — `price_cents`, `total_cents`
// — and shown in JSON as a decimal number of currency units (store/json.hpp).
// Times are Unix epoch milliseconds.
#pragma once

#include <jeweler/core/ids.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::store {

/// Why a write was refused, for the error body (`message`) of a 409/422.
/// Never contains SQL or internal details.
struct Problem {
  std::string field;    // JSON path of the offending input ("items[2].quantity"), may be empty
  std::string message;  // human-readable, safe to show to the client
};

enum class Role { admin, staff };
std::string_view to_string(Role r) noexcept;
std::optional<Role> parse_role(std::string_view s) noexcept;

/// The permission strings of a role ("customers:read", ...), sorted. See docs/store.md.
const std::vector<std::string>& permissions_for(Role r);

struct Tenant {
  TenantId id;
  std::string name;
  std::int64_t created_at = 0;
};

struct User {
  UserId id;
  TenantId tenant_id;
  std::string email;          // normalised: trimmed, ASCII lower case
  std::string password_hash;  // crypto_pwhash_str output (Argon2id)
  Role role = Role::staff;
  std::optional<std::string> totp_secret;  // base32; engaged = 2FA on
  std::int64_t created_at = 0;
  bool two_factor_enabled() const noexcept { return totp_secret.has_value(); }
};

struct NewUser {
  std::string email;
  std::string password_hash;
  Role role = Role::staff;
  std::optional<std::string> totp_secret;
};

struct Customer {
  std::string id;
  std::string name;
  std::string email;  // may be empty
  std::string phone;  // may be empty
  std::string notes;  // may be empty
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

struct NewCustomer {
  std::string name;
  std::string email;
  std::string phone;
  std::string notes;
};

/// PUT /api/customers/{id}: only the engaged fields change.
struct CustomerPatch {
  std::optional<std::string> name, email, phone, notes;
  bool empty() const noexcept { return !name && !email && !phone && !notes; }
};

struct Product {
  std::string id;
  std::string sku;
  std::string name;
  int karat = 0;  // 1..24 for gold, 0 for a non-gold article
  double weight_grams = 0;
  std::int64_t price_cents = 0;
  std::int64_t cost_cents = 0;  // cost basis for todayProfit; not part of the API fields
  std::int64_t stock = 0;
  std::int64_t low_stock_threshold = 0;
  std::int64_t updated_at = 0;
};

struct NewProduct {
  std::string sku;
  std::string name;
  int karat = 0;
  double weight_grams = 0;
  std::int64_t price_cents = 0;
  std::int64_t cost_cents = 0;
  std::int64_t stock = 0;
  std::int64_t low_stock_threshold = 0;
};

/// PUT /api/products/{id}: only the engaged fields change.
struct ProductPatch {
  std::optional<std::string> name;
  std::optional<std::int64_t> price_cents, stock, low_stock_threshold;
  bool empty() const noexcept { return !name && !price_cents && !stock && !low_stock_threshold; }
};

enum class InvoiceStatus { paid, due };
std::string_view to_string(InvoiceStatus s) noexcept;
std::optional<InvoiceStatus> parse_invoice_status(std::string_view s) noexcept;

struct InvoiceItem {
  std::string product_id;
  std::int64_t quantity = 0;
  std::int64_t unit_price_cents = 0;
};

struct Invoice {
  std::string id;
  std::string customer_id;
  std::vector<InvoiceItem> items;
  std::int64_t total_cents = 0;
  InvoiceStatus status = InvoiceStatus::paid;
  std::optional<std::int64_t> due_date;  // set for every "due" invoice
  std::int64_t created_at = 0;
};

struct NewInvoiceItem {
  std::string product_id;
  std::int64_t quantity = 0;
};

/// POST /api/invoices. Prices come from the products; a "due" invoice without
/// due_date gets created_at + 30 days.
struct NewInvoice {
  std::string customer_id;
  std::vector<NewInvoiceItem> items;
  InvoiceStatus status = InvoiceStatus::paid;
  std::optional<std::int64_t> due_date;
};

struct GoldPrice {
  std::string currency;  // ISO 4217 shape: three upper-case letters
  double price_per_gram_24k = 0;
  std::int64_t updated_at = 0;
  /// karat/24 of the 24k price.
  double price_per_gram(int karat) const noexcept { return price_per_gram_24k * karat / 24.0; }
  /// The karats shown in the API, in order: 24, 22, 21, 18, 14, 10.
  static constexpr int karats[] = {24, 22, 21, 18, 14, 10};
};

struct Upload {
  std::string id;
  std::string filename;
  std::int64_t size = 0;
  std::string sha256;  // lower-case hex
  std::string content_type;
  std::int64_t created_at = 0;
};

struct NewUpload {
  std::string filename;
  std::string content_type;
  std::string_view bytes;  // the file; written under Options::uploads_dir
};

/// GET /api/dashboard/kpi (definitions in docs/store.md).
struct Kpi {
  std::int64_t today_sales_cents = 0;
  std::int64_t today_profit_cents = 0;
  std::int64_t new_customers = 0;
  double gold_sold_mtd_grams = 0;
  std::int64_t overdue_invoices = 0;
  std::int64_t due_cheques = 0;
  std::int64_t low_inventory_items = 0;
  std::int64_t last_updated = 0;
};

/// The time windows of the KPI as of `now` (UTC calendar): the day and the
/// month containing `now`, and the "due soon" horizon (now + 7 days).
struct KpiWindow {
  std::int64_t day_start = 0;     // 00:00:00.000 UTC of now's day
  std::int64_t month_start = 0;   // 00:00:00.000 UTC of the 1st of now's month
  std::int64_t due_soon_end = 0;  // now + 7 days (exclusive)
  static KpiWindow at(std::int64_t now_ms) noexcept;
};

/// ?limit= (1..100, default 50) & ?offset= (>= 0).
struct PageRequest {
  static constexpr int default_limit = 50;
  static constexpr int max_limit = 100;
  int limit = default_limit;
  std::int64_t offset = 0;
};

template <class T>
struct Page {
  std::vector<T> items;
  std::int64_t total = 0;  // rows of the tenant, regardless of limit/offset
};

// ---------------------------------------------------------------------------
// Validation. Each returns std::nullopt when the input is acceptable, else the
// problem. The repository runs them again before writing (defence in depth).

namespace limits {
inline constexpr std::size_t name_max = 200;      // code points
inline constexpr std::size_t email_max = 254;     // bytes
inline constexpr std::size_t phone_max = 32;      // bytes
inline constexpr std::size_t notes_max = 2000;    // code points
inline constexpr std::size_t sku_max = 64;        // bytes
inline constexpr std::size_t filename_max = 255;  // bytes
inline constexpr std::size_t content_type_max = 127;
inline constexpr std::int64_t price_max_cents = 10'000'000'000;  // 100 million units
inline constexpr std::int64_t stock_max = 1'000'000;
inline constexpr std::int64_t quantity_max = 10'000;
inline constexpr std::size_t invoice_items_max = 100;
inline constexpr double gold_price_max = 1'000'000;
inline constexpr double weight_max_grams = 100'000;
inline constexpr std::int64_t offset_max = 1'000'000'000;
}  // namespace limits

/// Well-formed UTF-8 (no overlongs, no surrogates).
bool valid_utf8(std::string_view s) noexcept;
/// Number of code points of valid UTF-8.
std::size_t utf8_length(std::string_view s) noexcept;
/// A pragmatic address check: local@domain, local 1..64 bytes, domain with a
/// dot, no whitespace or control characters, at most 254 bytes.
bool valid_email(std::string_view s) noexcept;
/// Trimmed, ASCII lower case: the form user emails are stored and looked up in.
std::string normalize_email(std::string_view s);
/// Entity ids and SKUs share jeweler's id alphabet: 1..64 of [A-Za-z0-9_.@-].
bool valid_entity_id(std::string_view s) noexcept;

std::optional<Problem> validate(const PageRequest& p);
std::optional<Problem> validate(const NewCustomer& c);
std::optional<Problem> validate(const CustomerPatch& p);
std::optional<Problem> validate(const NewProduct& p);
std::optional<Problem> validate(const ProductPatch& p);
std::optional<Problem> validate(const NewInvoice& i);
std::optional<Problem> validate(const NewUser& u);
std::optional<Problem> validate_gold_price(double price_per_gram_24k, std::string_view currency);
std::optional<Problem> validate(const NewUpload& u, std::int64_t max_bytes);

}  // namespace jeweler::store
