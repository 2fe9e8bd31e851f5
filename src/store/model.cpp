#include <jeweler/store/model.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

namespace jeweler::store {

std::string_view to_string(Role r) noexcept {
  return r == Role::admin ? "admin" : "staff";
}

std::optional<Role> parse_role(std::string_view s) noexcept {
  if (s == "admin") return Role::admin;
  if (s == "staff") return Role::staff;
  return std::nullopt;
}

const std::vector<std::string>& permissions_for(Role r) {
  static const std::vector<std::string> admin = [] {
    std::vector<std::string> v{"admin:cache",      "admin:sessions", "customers:read",
                               "customers:write",  "dashboard:read", "gold-price:read",
                               "gold-price:write", "invoices:read",  "invoices:write",
                               "products:read",    "products:write", "uploads:write",
                               "users:read"};
    std::sort(v.begin(), v.end());
    return v;
  }();
  static const std::vector<std::string> staff = [] {
    std::vector<std::string> v{"customers:read",  "customers:write", "dashboard:read",
                               "gold-price:read", "invoices:read",   "invoices:write",
                               "products:read",   "uploads:write"};
    std::sort(v.begin(), v.end());
    return v;
  }();
  return r == Role::admin ? admin : staff;
}

std::string_view to_string(InvoiceStatus s) noexcept {
  return s == InvoiceStatus::paid ? "paid" : "due";
}

std::optional<InvoiceStatus> parse_invoice_status(std::string_view s) noexcept {
  if (s == "paid") return InvoiceStatus::paid;
  if (s == "due") return InvoiceStatus::due;
  return std::nullopt;
}

KpiWindow KpiWindow::at(std::int64_t now_ms) noexcept {
  using namespace std::chrono;
  const sys_time<milliseconds> now{milliseconds{now_ms}};
  const sys_days today = floor<days>(now);
  const year_month_day ymd{today};
  const sys_days first = sys_days{ymd.year() / ymd.month() / day{1}};
  KpiWindow w;
  w.day_start = duration_cast<milliseconds>(today.time_since_epoch()).count();
  w.month_start = duration_cast<milliseconds>(first.time_since_epoch()).count();
  w.due_soon_end = now_ms + std::int64_t{7} * 24 * 3600 * 1000;
  return w;
}

// ---------------------------------------------------------------------------

bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
      return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::size_t utf8_length(std::string_view s) noexcept {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

namespace {

bool is_ctl(unsigned char c) noexcept {
  return c < 0x20 || c == 0x7F;
}

/// Text: valid UTF-8, 0..max code points, no control characters (notes may
/// hold \n, \r and \t).
std::optional<Problem> check_text(std::string_view field, std::string_view v, std::size_t max,
                                  bool required, bool multiline = false) {
  if (!valid_utf8(v)) return Problem{std::string(field), "must be valid UTF-8"};
  if (required) {
    bool blank = std::all_of(v.begin(), v.end(), [](char c) { return c == ' ' || c == '\t'; });
    if (blank) return Problem{std::string(field), "must not be empty"};
  }
  if (utf8_length(v) > max)
    return Problem{std::string(field), "must be at most " + std::to_string(max) + " characters"};
  for (unsigned char c : v) {
    if (!is_ctl(c)) continue;
    if (multiline && (c == '\n' || c == '\r' || c == '\t')) continue;
    return Problem{std::string(field), "must not contain control characters"};
  }
  return std::nullopt;
}

std::optional<Problem> check_range(std::string_view field, std::int64_t v, std::int64_t lo,
                                   std::int64_t hi) {
  if (v < lo || v > hi)
    return Problem{std::string(field),
                   "must be between " + std::to_string(lo) + " and " + std::to_string(hi)};
  return std::nullopt;
}

std::optional<Problem> check_customer_email(std::string_view v) {
  if (v.empty()) return std::nullopt;
  if (!valid_email(v)) return Problem{"email", "must be a valid email address"};
  return std::nullopt;
}

std::optional<Problem> check_phone(std::string_view v) {
  if (v.size() > limits::phone_max)
    return Problem{"phone", "must be at most " + std::to_string(limits::phone_max) + " characters"};
  for (char c : v) {
    bool ok = (c >= '0' && c <= '9') || c == '+' || c == ' ' || c == '-' || c == '(' || c == ')' ||
              c == '.';
    if (!ok) return Problem{"phone", "may contain only digits, spaces and + - ( ) ."};
  }
  return std::nullopt;
}

}  // namespace

bool valid_email(std::string_view s) noexcept {
  if (s.empty() || s.size() > limits::email_max) return false;
  auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64) return false;
  if (s.find('@', at + 1) != std::string_view::npos) return false;
  std::string_view local = s.substr(0, at), domain = s.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' ||
      domain.find('.') == std::string_view::npos || domain.find("..") != std::string_view::npos)
    return false;
  if (local.front() == '.' || local.back() == '.') return false;
  for (unsigned char c : s)
    if (is_ctl(c) || c == ' ' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ',' ||
        c == ';' || c == '(' || c == ')' || c == '[' || c == ']')
      return false;
  for (unsigned char c : domain) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c >= 0x80;
    if (!ok) return false;
  }
  return valid_utf8(s);
}

std::string normalize_email(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool valid_entity_id(std::string_view s) noexcept {
  return jeweler::detail::valid_id(s);
}

std::optional<Problem> validate(const PageRequest& p) {
  if (p.limit < 1 || p.limit > PageRequest::max_limit)
    return Problem{"limit", "must be between 1 and 100"};
  if (p.offset < 0 || p.offset > limits::offset_max)
    return Problem{"offset", "must be a non-negative integer"};
  return std::nullopt;
}

std::optional<Problem> validate(const NewCustomer& c) {
  if (auto p = check_text("name", c.name, limits::name_max, true)) return p;
  if (auto p = check_customer_email(c.email)) return p;
  if (auto p = check_phone(c.phone)) return p;
  return check_text("notes", c.notes, limits::notes_max, false, true);
}

std::optional<Problem> validate(const CustomerPatch& c) {
  if (c.empty()) return Problem{"", "nothing to update: give name, email, phone or notes"};
  if (c.name)
    if (auto p = check_text("name", *c.name, limits::name_max, true)) return p;
  if (c.email)
    if (auto p = check_customer_email(*c.email)) return p;
  if (c.phone)
    if (auto p = check_phone(*c.phone)) return p;
  if (c.notes)
    if (auto p = check_text("notes", *c.notes, limits::notes_max, false, true)) return p;
  return std::nullopt;
}

std::optional<Problem> validate(const NewProduct& p) {
  if (!valid_entity_id(p.sku)) return Problem{"sku", "must be 1..64 of [A-Za-z0-9_.@-]"};
  if (auto e = check_text("name", p.name, limits::name_max, true)) return e;
  if (auto e = check_range("karat", p.karat, 0, 24)) return e;
  if (!std::isfinite(p.weight_grams) || p.weight_grams < 0 ||
      p.weight_grams > limits::weight_max_grams)
    return Problem{"weightGrams", "must be between 0 and 100000"};
  if (auto e = check_range("price", p.price_cents, 0, limits::price_max_cents)) return e;
  if (auto e = check_range("cost", p.cost_cents, 0, limits::price_max_cents)) return e;
  if (auto e = check_range("stock", p.stock, 0, limits::stock_max)) return e;
  return check_range("lowStockThreshold", p.low_stock_threshold, 0, limits::stock_max);
}

std::optional<Problem> validate(const ProductPatch& p) {
  if (p.empty())
    return Problem{"", "nothing to update: give name, price, stock or lowStockThreshold"};
  if (p.name)
    if (auto e = check_text("name", *p.name, limits::name_max, true)) return e;
  if (p.price_cents)
    if (auto e = check_range("price", *p.price_cents, 0, limits::price_max_cents)) return e;
  if (p.stock)
    if (auto e = check_range("stock", *p.stock, 0, limits::stock_max)) return e;
  if (p.low_stock_threshold)
    if (auto e = check_range("lowStockThreshold", *p.low_stock_threshold, 0, limits::stock_max))
      return e;
  return std::nullopt;
}

std::optional<Problem> validate(const NewInvoice& inv) {
  if (!valid_entity_id(inv.customer_id)) return Problem{"customerId", "no such customer"};
  if (inv.items.empty()) return Problem{"items", "must contain at least one item"};
  if (inv.items.size() > limits::invoice_items_max)
    return Problem{"items", "must contain at most 100 items"};
  for (std::size_t i = 0; i < inv.items.size(); ++i) {
    const auto& it = inv.items[i];
    std::string f = "items[" + std::to_string(i) + "]";
    if (!valid_entity_id(it.product_id)) return Problem{f + ".productId", "no such product"};
    if (auto e = check_range(f + ".quantity", it.quantity, 1, limits::quantity_max)) return e;
    for (std::size_t j = 0; j < i; ++j)
      if (inv.items[j].product_id == it.product_id)
        return Problem{f + ".productId", "duplicate product: give each product once"};
  }
  if (inv.due_date && (*inv.due_date < 0 || *inv.due_date > 253402300799999))
    return Problem{"dueDate", "must be epoch milliseconds"};
  return std::nullopt;
}

std::optional<Problem> validate(const NewUser& u) {
  if (!valid_email(u.email)) return Problem{"email", "must be a valid email address"};
  if (u.password_hash.empty()) return Problem{"password", "missing password hash"};
  if (u.totp_secret) {
    if (u.totp_secret->empty() || u.totp_secret->size() > 128)
      return Problem{"totpSecret", "must be base32"};
    for (char c : *u.totp_secret) {
      bool ok =
          (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7') || c == '=';
      if (!ok) return Problem{"totpSecret", "must be base32"};
    }
  }
  return std::nullopt;
}

std::optional<Problem> validate_gold_price(double price, std::string_view currency) {
  if (!std::isfinite(price) || price <= 0 || price > limits::gold_price_max)
    return Problem{"pricePerGram24k", "must be a number above 0 and at most 1000000"};
  bool ok = currency.size() == 3 && std::all_of(currency.begin(), currency.end(),
                                                [](char c) { return c >= 'A' && c <= 'Z'; });
  if (!ok) return Problem{"currency", "must be three upper-case letters (ISO 4217)"};
  return std::nullopt;
}

std::optional<Problem> validate(const NewUpload& u, std::int64_t max_bytes) {
  if (u.filename.empty() || u.filename.size() > limits::filename_max || !valid_utf8(u.filename))
    return Problem{"filename", "must be 1..255 bytes of UTF-8"};
  for (unsigned char c : u.filename)
    if (is_ctl(c) || c == '/' || c == '\\')
      return Problem{"filename", "must not contain control characters or path separators"};
  if (u.filename == "." || u.filename == "..") return Problem{"filename", "is not a file name"};
  if (u.content_type.size() > limits::content_type_max)
    return Problem{"contentType", "is too long"};
  for (unsigned char c : u.content_type)
    if (is_ctl(c) || c >= 0x80) return Problem{"contentType", "must be printable ASCII"};
  if (static_cast<std::int64_t>(u.bytes.size()) > max_bytes)
    return Problem{"", "file larger than " + std::to_string(max_bytes) + " bytes"};
  return std::nullopt;
}

}  // namespace jeweler::store
