#include <jeweler/store/demo_data.hpp>

#include <jeweler/store/crypto.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>

namespace jeweler::store {

namespace {

constexpr std::int64_t kDay = 24LL * 3600 * 1000;

/// Deterministic generator (std::mt19937_64 is specified bit for bit; the
/// standard distributions are not, so we map values ourselves).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : g_(seed) {}
  std::uint64_t next() { return g_(); }
  /// Uniform in [lo, hi].
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) return lo;
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  double unit() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }  // [0, 1)
  bool chance(double p) { return unit() < p; }
  template <class C>
  const auto& pick(const C& c) {
    return c[static_cast<std::size_t>(next() % std::size(c))];
  }
  std::string id(std::string_view prefix) {
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    std::string s(prefix);
    for (int i = 0; i < 26; ++i) s.push_back(alphabet[next() % 32]);
    return s;
  }

 private:
  std::mt19937_64 g_;
};

constexpr const char* kFirst[] = {
    "Amelia", "Noah",   "Olivia", "Liam",  "Zoë",   "Mateo", "Aisha",  "Ethan", "Priya",  "Lucas",
    "Sofia",  "Omar",   "Hannah", "Kenji", "Chloé", "Ravi",  "Isabel", "Jonas", "Fatima", "Daniel",
    "Mei",    "Samuel", "Élodie", "Arjun", "Grace", "Tomás", "Leila",  "Oscar", "Yuki",   "Henry",
    "Nadia",  "Felix",  "Emma",   "Diego", "Sara",  "Aaron", "Ingrid", "Kofi",  "Björn",  "Lucía"};
constexpr const char* kLast[] = {"Smith",    "Johnson",   "Müller",  "García",  "Nguyen", "Patel",
                                 "Kim",      "Rossi",     "Dubois",  "Silva",   "Cohen",  "Khan",
                                 "O'Brien",  "Novak",     "Tanaka",  "Haddad",  "Larsen", "Mensah",
                                 "Kowalski", "Fernández", "Chen",    "Ivanova", "Brown",  "Martin",
                                 "Okafor",   "Andersson", "Schmidt", "Costa",   "Yilmaz", "Singh"};
constexpr const char* kNotes[] = {"",
                                  "",
                                  "",
                                  "Prefers 22k yellow gold.",
                                  "Anniversary in June — remind in May.",
                                  "Ring size 7½; allergic to nickel.",
                                  "Wholesale buyer, pays by cheque.",
                                  "Asked about custom engraving: \"Forever & always\".",
                                  "VIP — offer the private viewing room.",
                                  "Collects antique filigree pieces."};
struct Category {
  const char* name;
  char code;
  double min_g, max_g;
};
constexpr Category kCategories[] = {{"Ring", 'R', 2.0, 12.0},     {"Necklace", 'N', 8.0, 60.0},
                                    {"Bracelet", 'B', 6.0, 35.0}, {"Earrings", 'E', 1.5, 10.0},
                                    {"Pendant", 'P', 1.5, 9.0},   {"Bangle", 'G', 10.0, 45.0},
                                    {"Chain", 'C', 5.0, 40.0},    {"Anklet", 'A', 3.0, 15.0}};
constexpr const char* kStyles[] = {"Classic",   "Filigree", "Twisted", "Hammered",
                                   "Solitaire", "Heritage", "Rope",    "Temple",
                                   "Floral",    "Minimal",  "Antique", "Bridal"};
constexpr int kKarats[] = {24, 22, 22, 21, 18, 18, 14, 10};

Dataset::TenantData make_tenant(Rng& rng, std::string_view id, std::string_view name,
                                std::string_view sku_prefix, std::string_view email_domain,
                                std::string_view currency, double gold_24k, std::int64_t now_ms,
                                const DemoSize& size) {
  Dataset::TenantData td{Tenant{TenantId::from(id), std::string(name), now_ms - 800 * kDay},
                         {},
                         {},
                         {},
                         {},
                         std::nullopt};
  td.gold_price = GoldPrice{std::string(currency), gold_24k, now_ms - 2 * 3600 * 1000};

  // Customers: all but the last three joined 400..730 days ago; the last three
  // joined today (newCustomers) and have no invoices yet.
  const std::int64_t day_start = KpiWindow::at(now_ms).day_start;
  const std::int64_t since_midnight = now_ms - day_start;
  const int n_customers = std::max(size.customers, 8);
  for (int i = 0; i < n_customers; ++i) {
    Customer c;
    c.id = rng.id("cus_");
    std::string first = rng.pick(kFirst), last = rng.pick(kLast);
    c.name = first + " " + last;
    std::string local;
    for (char ch : first + "." + last)
      if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '.')
        local.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    c.email = rng.chance(0.9) ? local + std::to_string(i) + "@" + std::string(email_domain) : "";
    c.phone = rng.chance(0.85) ? "+1 555 " + std::to_string(rng.range(1000, 9999)) + " " +
                                     std::to_string(rng.range(1000, 9999))
                               : "";
    c.notes = rng.pick(kNotes);
    if (i >= n_customers - 3)
      c.created_at = day_start + (since_midnight > 0 ? rng.range(0, since_midnight) : 0);
    else
      c.created_at = now_ms - rng.range(400 * kDay, 730 * kDay);
    c.updated_at = c.created_at;
    td.customers.push_back(std::move(c));
  }

  // Products.
  const int n_products = std::max(size.products, 8);
  for (int i = 0; i < n_products; ++i) {
    const Category& cat = rng.pick(kCategories);
    Product p;
    p.id = rng.id("prd_");
    p.karat = rng.pick(kKarats);
    char sku[48];
    std::snprintf(sku, sizeof sku, "%.8s-%c%02d-%04d", std::string(sku_prefix).c_str(), cat.code,
                  p.karat, i + 1);
    p.sku = sku;
    p.name = std::string(rng.pick(kStyles)) + " " + cat.name + " " + std::to_string(p.karat) + "k";
    p.weight_grams = std::round((cat.min_g + rng.unit() * (cat.max_g - cat.min_g)) * 100.0) / 100.0;
    const double metal = p.weight_grams * gold_24k * p.karat / 24.0;
    p.cost_cents = static_cast<std::int64_t>(std::llround(metal * 1.08 * 100));
    // Retail: metal + 25..60% making charge, rounded to a whole unit.
    p.price_cents =
        static_cast<std::int64_t>(std::llround(metal * (1.25 + 0.35 * rng.unit()))) * 100;
    p.low_stock_threshold = rng.range(2, 5);
    p.stock = rng.chance(0.08) ? rng.range(0, p.low_stock_threshold) : rng.range(6, 40);
    p.updated_at = now_ms - rng.range(1 * kDay, 90 * kDay);
    td.products.push_back(std::move(p));
  }

  // Invoices over the past 365 days, the newest first; a dozen today.
  const int n_invoices = std::max(size.invoices, 20);
  const int n_old_customers = n_customers - 3;
  for (int i = 0; i < n_invoices; ++i) {
    Invoice inv;
    inv.id = rng.id("inv_");
    inv.customer_id = td.customers[static_cast<std::size_t>(rng.range(0, n_old_customers - 1))].id;
    if (i < 12)
      inv.created_at = now_ms - (since_midnight > 0 ? rng.range(0, since_midnight) : 0);
    else
      inv.created_at = now_ms - rng.range(kDay, 365 * kDay);
    const int lines = rng.chance(0.6) ? 1 : (rng.chance(0.7) ? 2 : 3);
    for (int l = 0; l < lines; ++l) {
      const Product* p = nullptr;
      for (int attempt = 0; attempt < 8; ++attempt) {
        const auto& cand = td.products[static_cast<std::size_t>(rng.range(0, n_products - 1))];
        bool dup = std::any_of(inv.items.begin(), inv.items.end(),
                               [&](const InvoiceItem& it) { return it.product_id == cand.id; });
        if (!dup) {
          p = &cand;
          break;
        }
      }
      if (!p) continue;
      const std::int64_t qty = rng.chance(0.85) ? 1 : 2;
      inv.items.push_back(InvoiceItem{p->id, qty, p->price_cents});
      inv.total_cents += qty * p->price_cents;
    }
    const std::int64_t age = now_ms - inv.created_at;
    if (age < 60 * kDay && rng.chance(0.3)) {
      inv.status = InvoiceStatus::due;
      inv.due_date = inv.created_at + 30 * kDay;
    } else {
      inv.status = InvoiceStatus::paid;
    }
    td.invoices.push_back(std::move(inv));
  }

  return td;
}

struct DemoUser {
  const char* tenant;
  const char* id;
  const char* email;
  const char* password;
  Role role;
  const char* totp;
};

constexpr DemoUser kUsers[] = {
    {"aurum", "usr_aurum_owner", "owner@aurum.example", "aurum-owner-pw", Role::admin, nullptr},
    {"aurum", "usr_aurum_clerk", "clerk@aurum.example", "aurum-clerk-pw", Role::staff, nullptr},
    {"aurum", "usr_aurum_secure", "secure@aurum.example", "aurum-secure-pw", Role::staff,
     "JBSWY3DPEHPK3PXP"},
    {"argent", "usr_argent_owner", "owner@argent.example", "argent-owner-pw", Role::admin, nullptr},
};

}  // namespace

Dataset make_demo_dataset(std::int64_t now_ms, const DemoSize& size) {
  Dataset ds;
  Rng rng(0x6a657765'6c657221ULL);  // "jeweler!"
  ds.tenants.push_back(make_tenant(rng, "aurum", "Aurum Fine Jewellery", "AUR", "mail.example",
                                   "USD", 65.40, now_ms, size));
  DemoSize small{size.customers * 5 / 8, size.products * 5 / 8, size.invoices * 5 / 8};
  ds.tenants.push_back(make_tenant(rng, "argent", "Argent & Or", "ARG", "post.example", "EUR",
                                   60.15, now_ms, small));
  for (const auto& u : kUsers) {
    auto& td = ds.tenants[std::string_view(u.tenant) == "aurum" ? 0 : 1];
    User user{UserId::from(u.id),
              td.tenant.id,
              u.email,
              crypto::hash_password(u.password),
              u.role,
              u.totp ? std::optional<std::string>(u.totp) : std::nullopt,
              td.tenant.created_at};
    td.users.push_back(std::move(user));
  }
  return ds;
}

Result<bool> load_demo_data(Repository& repo, std::int64_t now_ms, const DemoSize& size) {
  auto empty = repo.empty();
  if (!empty) return {boost::system::in_place_error, empty.error()};
  if (!*empty) return false;
  auto r = repo.import(make_demo_dataset(now_ms, size));
  if (!r) {
    // Another process loaded it first (its tenants now exist): use its data.
    if (r.error() == jeweler::errc::conflict) {
      auto again = repo.empty();
      if (again && !*again) return false;
    }
    return {boost::system::in_place_error, r.error()};
  }
  return true;
}

}  // namespace jeweler::store
