// The SQLite3 implementation of store::Repository (docs/store.md).
//
//   auto opts = store::Options::from_env();
//   auto repo = store::SqliteRepository::open(opts);   // migrates the schema
//   if (!repo) ...                                     // start-up error
//   std::shared_ptr<store::Repository> shared = std::move(*repo);
//
// One instance serves the whole process: it keeps Options::connections
// connections (WAL mode, so readers run concurrently with the writer) and
// every method is thread-safe. Methods block; call them through
// store::BlockingPool::run_blocking from io threads.
#pragma once

#include <jeweler/store/repository.hpp>

#include <memory>

namespace jeweler::store {

namespace detail {
class Pool;
}

class SqliteRepository final : public Repository {
 public:
  /// Creates the parent directory and the uploads directory, opens the
  /// connections and runs the migrations (idempotent; safe when several
  /// processes start at once). errc::unavailable when the file cannot be
  /// opened, errc::internal when the schema is newer than this binary.
  static Result<std::unique_ptr<SqliteRepository>> open(const Options& options);

  /// The schema version this binary migrates to.
  static int latest_schema_version() noexcept;
  /// The version recorded in the database (schema_version table).
  Result<int> schema_version();

  ~SqliteRepository() override;

  Result<Tenant> create_tenant(const TenantId& id, std::string_view name) override;
  Result<Tenant> get_tenant(const TenantId& id) override;
  Result<User> create_user(const TenantId& tenant, const NewUser& user, Problem* problem) override;
  Result<User> get_user(const TenantId& tenant, const UserId& id) override;
  Result<User> find_user_by_email(const TenantId& tenant, std::string_view email) override;
  Result<User> find_login_user(const std::optional<TenantId>& tenant,
                               std::string_view email) override;
  Result<User> set_user_totp_secret(const TenantId& tenant, const UserId& id,
                                    const std::optional<std::string>& secret) override;
  Result<User> set_user_password_hash(const TenantId& tenant, const UserId& id,
                                      std::string_view hash) override;
  Result<std::vector<std::string>> user_permissions(const TenantId& tenant,
                                                    const UserId& id) override;

  Result<Customer> create_customer(const TenantId& tenant, const NewCustomer& c,
                                   std::int64_t now_ms, Problem* problem) override;
  Result<Customer> get_customer(const TenantId& tenant, std::string_view id) override;
  Result<Page<Customer>> list_customers(const TenantId& tenant, const PageRequest& page) override;
  Result<Customer> update_customer(const TenantId& tenant, std::string_view id,
                                   const CustomerPatch& patch, std::int64_t now_ms,
                                   Problem* problem) override;

  Result<Product> create_product(const TenantId& tenant, const NewProduct& p, std::int64_t now_ms,
                                 Problem* problem) override;
  Result<Product> get_product(const TenantId& tenant, std::string_view id) override;
  Result<Page<Product>> list_products(const TenantId& tenant, const PageRequest& page) override;
  Result<Product> update_product(const TenantId& tenant, std::string_view id,
                                 const ProductPatch& patch, std::int64_t now_ms,
                                 Problem* problem) override;

  Result<Invoice> create_invoice(const TenantId& tenant, const NewInvoice& inv, std::int64_t now_ms,
                                 Problem* problem) override;
  Result<Invoice> get_invoice(const TenantId& tenant, std::string_view id) override;
  Result<Page<Invoice>> list_invoices(const TenantId& tenant, const PageRequest& page) override;

  Result<GoldPrice> get_gold_price(const TenantId& tenant) override;
  Result<GoldPrice> put_gold_price(const TenantId& tenant, double price_per_gram_24k,
                                   std::string_view currency, std::int64_t now_ms,
                                   Problem* problem) override;

  Result<Upload> create_upload(const TenantId& tenant, const NewUpload& u, std::int64_t now_ms,
                               Problem* problem) override;
  Result<Upload> get_upload(const TenantId& tenant, std::string_view id) override;
  Result<std::string> upload_path(const TenantId& tenant, std::string_view id) override;

  Result<Kpi> compute_kpi(const TenantId& tenant, std::int64_t now_ms) override;

  Result<bool> empty() override;
  Result<void> import(const Dataset& data) override;

  const Options& options() const noexcept { return options_; }

 private:
  explicit SqliteRepository(Options o);
  Options options_;
  std::unique_ptr<detail::Pool> pool_;
};

}  // namespace jeweler::store
