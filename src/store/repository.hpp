// The primary store's repository interface (so another database could be
// plugged in later) and its options. The SQLite implementation is
// store/sqlite_repository.hpp; docs/store.md describes both.
//
// Rules every implementation keeps:
// - every method that reads or writes a tenant's rows takes the TenantId, and
//   another tenant's id is errc::not_found (never visible, never changed);
// - methods are synchronous and thread-safe (callable from any thread at the
//   same time); they block on disk, so io threads call them through
//   store::BlockingPool::run_blocking;
// - errors are jeweler::errc: not_found, invalid_argument (with a Problem),
//   conflict (duplicate key, stock short), unavailable (database busy or
//   unreachable; jeweler::is_unavailable is true), internal (logged, never
//   leaked).
#pragma once

#include <jeweler/core/errc.hpp>
#include <jeweler/core/ids.hpp>
#include <jeweler/store/model.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::store {

struct Options {
  /// DATABASE_PATH: the SQLite file; its parent directory is created.
  std::string database_path = "./var/jeweler.db";
  /// Where upload bytes go (<uploads_dir>/<tenant>/<upload id>); empty means
  /// "<directory of database_path>/uploads".
  std::string uploads_dir;
  /// UPLOAD_LIMIT_BYTES: the largest upload create_upload accepts.
  std::int64_t upload_limit_bytes = 10 * 1024 * 1024;
  /// How long a statement waits for a lock held by another connection or
  /// process before failing with errc::unavailable.
  int busy_timeout_ms = 5000;
  /// Connections in the pool (concurrent readers; writers are serialised by SQLite).
  int connections = 4;

  /// Reads DATABASE_PATH, UPLOAD_LIMIT_BYTES and DATABASE_BUSY_TIMEOUT_MS
  /// (when set) through `lookup` (the process environment by default) over the
  /// defaults. Throws redis::ConfigError naming a variable whose value is bad.
  using Lookup = std::function<std::optional<std::string>(std::string_view name)>;
  static Options from_env(const Lookup& lookup = {});
};

/// Everything --demo-data (or a test) loads at once: see Repository::import.
struct Dataset {
  struct TenantData {
    Tenant tenant;
    std::vector<User> users;
    std::vector<Customer> customers;
    std::vector<Product> products;  // stock as it should be after the invoices
    std::vector<Invoice> invoices;  // complete; stock is NOT decremented on import
    std::optional<GoldPrice> gold_price;
  };
  std::vector<TenantData> tenants;
};

class Repository {
 public:
  virtual ~Repository() = default;

  // Tenants and users -------------------------------------------------------
  virtual Result<Tenant> create_tenant(const TenantId& id, std::string_view name) = 0;
  virtual Result<Tenant> get_tenant(const TenantId& id) = 0;
  /// The email is normalised (normalize_email); unique per tenant (conflict).
  virtual Result<User> create_user(const TenantId& tenant, const NewUser& user,
                                   Problem* problem) = 0;
  virtual Result<User> get_user(const TenantId& tenant, const UserId& id) = 0;
  virtual Result<User> find_user_by_email(const TenantId& tenant, std::string_view email) = 0;
  /// Login lookup. With a tenant: that tenant's user. Without: the one user
  /// with this email in any tenant; errc::not_found when there is none and
  /// errc::conflict when several tenants have it (the caller must then ask for
  /// tenantId — answer 401 like any bad credential, see docs/store.md).
  virtual Result<User> find_login_user(const std::optional<TenantId>& tenant,
                                       std::string_view email) = 0;
  /// Enables (secret engaged) or disables 2FA for a user.
  virtual Result<User> set_user_totp_secret(const TenantId& tenant, const UserId& id,
                                            const std::optional<std::string>& secret) = 0;
  virtual Result<User> set_user_password_hash(const TenantId& tenant, const UserId& id,
                                              std::string_view hash) = 0;
  /// The permission strings of the user's role (permissions_for).
  virtual Result<std::vector<std::string>> user_permissions(const TenantId& tenant,
                                                            const UserId& id) = 0;

  // Customers ---------------------------------------------------------------
  virtual Result<Customer> create_customer(const TenantId& tenant, const NewCustomer& c,
                                           std::int64_t now_ms, Problem* problem) = 0;
  virtual Result<Customer> get_customer(const TenantId& tenant, std::string_view id) = 0;
  /// Newest first (createdAt desc, id desc).
  virtual Result<Page<Customer>> list_customers(const TenantId& tenant,
                                                const PageRequest& page) = 0;
  virtual Result<Customer> update_customer(const TenantId& tenant, std::string_view id,
                                           const CustomerPatch& patch, std::int64_t now_ms,
                                           Problem* problem) = 0;

  // Products ----------------------------------------------------------------
  /// SKU unique per tenant (conflict).
  virtual Result<Product> create_product(const TenantId& tenant, const NewProduct& p,
                                         std::int64_t now_ms, Problem* problem) = 0;
  virtual Result<Product> get_product(const TenantId& tenant, std::string_view id) = 0;
  /// By SKU ascending.
  virtual Result<Page<Product>> list_products(const TenantId& tenant, const PageRequest& page) = 0;
  virtual Result<Product> update_product(const TenantId& tenant, std::string_view id,
                                         const ProductPatch& patch, std::int64_t now_ms,
                                         Problem* problem) = 0;

  // Invoices ----------------------------------------------------------------
  /// One transaction: reads the customer and the products (prices, costs),
  /// checks and decrements every stock, writes the invoice and its items.
  /// Unknown customer or product → invalid_argument; stock short → conflict;
  /// on any error nothing is written. `problem` says which input failed.
  virtual Result<Invoice> create_invoice(const TenantId& tenant, const NewInvoice& inv,
                                         std::int64_t now_ms, Problem* problem) = 0;
  virtual Result<Invoice> get_invoice(const TenantId& tenant, std::string_view id) = 0;
  /// Newest first (createdAt desc, id desc).
  virtual Result<Page<Invoice>> list_invoices(const TenantId& tenant, const PageRequest& page) = 0;

  // Gold price --------------------------------------------------------------
  /// not_found until a price was put.
  virtual Result<GoldPrice> get_gold_price(const TenantId& tenant) = 0;
  virtual Result<GoldPrice> put_gold_price(const TenantId& tenant, double price_per_gram_24k,
                                           std::string_view currency, std::int64_t now_ms,
                                           Problem* problem) = 0;

  // Uploads -----------------------------------------------------------------
  /// Writes the bytes under the uploads directory (atomically: temp file +
  /// rename), then the metadata row; a failure leaves neither.
  virtual Result<Upload> create_upload(const TenantId& tenant, const NewUpload& u,
                                       std::int64_t now_ms, Problem* problem) = 0;
  virtual Result<Upload> get_upload(const TenantId& tenant, std::string_view id) = 0;
  /// Path of the stored bytes of an upload of this tenant.
  virtual Result<std::string> upload_path(const TenantId& tenant, std::string_view id) = 0;

  // Dashboard ---------------------------------------------------------------
  /// The KPI of API.md section 4 as of `now_ms` (definitions in docs/store.md).
  virtual Result<Kpi> compute_kpi(const TenantId& tenant, std::int64_t now_ms) = 0;

  // Bulk --------------------------------------------------------------------
  /// True when the store holds no tenant at all.
  virtual Result<bool> empty() = 0;
  /// Loads a whole dataset in one transaction (all or nothing).
  virtual Result<void> import(const Dataset& data) = 0;
};

}  // namespace jeweler::store
