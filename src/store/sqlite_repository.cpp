#include <jeweler/core/private_files.hpp>
#include <jeweler/redis/log.hpp>
#include <jeweler/store/sqlite_repository.hpp>

#include <jeweler/redis/config.hpp>
#include <jeweler/redis/error.hpp>
#include <jeweler/store/crypto.hpp>
#include <jeweler/store/detail/sqlite.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <unordered_map>

// Early return of the error of a Result.
#define STORE_TRY(var, expr) \
  auto var = (expr);         \
  if (!var) return var.error()
// Same for a prepared statement, naming the statement itself.
#define STORE_STMT(var, expr)                     \
  auto var##_result = (expr);                     \
  if (!var##_result) return var##_result.error(); \
  auto& var = *var##_result

namespace jeweler::store {

namespace fs = std::filesystem;
using detail::Connection;
using detail::Stmt;
using detail::Transaction;

// ---------------------------------------------------------------------------
// Options

Options Options::from_env(const Lookup& lookup) {
  auto get = [&](std::string_view name) {
    return lookup ? lookup(name) : redis::getenv_lookup(name);
  };
  Options o;
  if (auto v = get("DATABASE_PATH")) {
    if (v->empty()) throw redis::ConfigError("DATABASE_PATH must not be empty");
    o.database_path = *v;
  }
  if (auto v = get("UPLOAD_LIMIT_BYTES"))
    o.upload_limit_bytes = redis::parse_int(*v, "UPLOAD_LIMIT_BYTES", 1, std::int64_t{1} << 32);
  if (auto v = get("DATABASE_BUSY_TIMEOUT_MS"))
    o.busy_timeout_ms =
        static_cast<int>(redis::parse_int(*v, "DATABASE_BUSY_TIMEOUT_MS", 0, 600'000));
  return o;
}

// ---------------------------------------------------------------------------
// Schema migrations: append only. Version N is migrations[N-1].

namespace {

constexpr const char* kMigrations[] = {
    // 1: the initial schema. Every business table is keyed (tenant_id, id) and
    // every reference carries the tenant, so a row can only point at rows of
    // its own tenant.
    R"sql(
CREATE TABLE tenants(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users(
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  id TEXT NOT NULL,
  email TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
  totp_secret TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, email)
) STRICT, WITHOUT ROWID;
CREATE INDEX users_by_email ON users(email);

CREATE TABLE customers(
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL DEFAULT '',
  phone TEXT NOT NULL DEFAULT '',
  notes TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX customers_by_created ON customers(tenant_id, created_at);

CREATE TABLE products(
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  id TEXT NOT NULL,
  sku TEXT NOT NULL,
  name TEXT NOT NULL,
  karat INTEGER NOT NULL CHECK (karat BETWEEN 0 AND 24),
  weight_grams REAL NOT NULL CHECK (weight_grams >= 0),
  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
  cost_cents INTEGER NOT NULL CHECK (cost_cents >= 0),
  stock INTEGER NOT NULL CHECK (stock >= 0),
  low_stock_threshold INTEGER NOT NULL CHECK (low_stock_threshold >= 0),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, sku)
) STRICT;

CREATE TABLE invoices(
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
  status TEXT NOT NULL CHECK (status IN ('paid', 'due')),
  due_date INTEGER,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
) STRICT;
CREATE INDEX invoices_by_created ON invoices(tenant_id, created_at);
CREATE INDEX invoices_by_due ON invoices(tenant_id, status, due_date);

CREATE TABLE invoice_items(
  tenant_id TEXT NOT NULL,
  invoice_id TEXT NOT NULL,
  line INTEGER NOT NULL,
  product_id TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  unit_price_cents INTEGER NOT NULL,
  unit_cost_cents INTEGER NOT NULL,
  karat INTEGER NOT NULL,
  weight_grams REAL NOT NULL,
  PRIMARY KEY (tenant_id, invoice_id, line),
  FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices(tenant_id, id),
  FOREIGN KEY (tenant_id, product_id) REFERENCES products(tenant_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE gold_prices(
  tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
  currency TEXT NOT NULL,
  price_per_gram_24k REAL NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE uploads(
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  id TEXT NOT NULL,
  filename TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  content_type TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;
)sql",
};

constexpr int kLatestVersion = static_cast<int>(std::size(kMigrations));

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

boost::system::error_code refuse(Problem* problem, std::string field, std::string message,
                                 jeweler::errc code = jeweler::errc::invalid_argument) {
  if (problem) *problem = Problem{std::move(field), std::move(message)};
  return code;
}

boost::system::error_code refuse(Problem* problem, const Problem& p) {
  if (problem) *problem = p;
  return jeweler::errc::invalid_argument;
}

Result<void> migrate(Connection& c) {
  Transaction tx(c);
  if (auto r = tx.begin(Transaction::Kind::write); !r) return r;
  if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_version("
                      "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT");
      !r)
    return r;
  int current = 0;
  {
    STORE_STMT(st, c.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    STORE_TRY(row, st.step());
    current = static_cast<int>(st.i64(0));
  }
  if (current > kLatestVersion) {
    jeweler::logger().error("store: database schema version {} is newer than this binary's {}",
                            current, kLatestVersion);
    return jeweler::errc::internal;
  }
  for (int v = current + 1; v <= kLatestVersion; ++v) {
    if (auto r = c.exec(kMigrations[v - 1]); !r) return r;
    STORE_STMT(ins, c.prepare("INSERT INTO schema_version(version, applied_at) VALUES (?1, ?2)"));
    ins.bind(1, v).bind(2, wall_ms());
    if (auto r = ins.run(); !r) return r;
    jeweler::logger().debug("store: applied schema migration {}",
                            v);  // start-up prints one line (API.md 7)
  }
  return tx.commit();
}

// Row readers: the column lists they expect are next to them.

#define USER_COLS "tenant_id, id, email, password_hash, role, totp_secret, created_at"
Result<User> read_user(const Stmt& st) {
  auto tenant = TenantId::parse(st.text(0));
  auto id = UserId::parse(st.text(1));
  auto role = parse_role(st.text(4));
  if (!tenant || !id || !role) return jeweler::errc::corrupt_data;
  return User{*id, *tenant, st.text(2), st.text(3), *role, st.opt_text(5), st.i64(6)};
}

#define CUSTOMER_COLS "id, name, email, phone, notes, created_at, updated_at"
Customer read_customer(const Stmt& st) {
  return Customer{st.text(0), st.text(1), st.text(2), st.text(3), st.text(4), st.i64(5), st.i64(6)};
}

#define PRODUCT_COLS                                                                          \
  "id, sku, name, karat, weight_grams, price_cents, cost_cents, stock, low_stock_threshold, " \
  "updated_at"
Product read_product(const Stmt& st) {
  return Product{st.text(0), st.text(1), st.text(2), static_cast<int>(st.i64(3)),
                 st.f64(4),  st.i64(5),  st.i64(6),  st.i64(7),
                 st.i64(8),  st.i64(9)};
}

#define INVOICE_COLS "id, customer_id, total_cents, status, due_date, created_at"
Result<Invoice> read_invoice_head(const Stmt& st) {
  auto status = parse_invoice_status(st.text(3));
  if (!status) return jeweler::errc::corrupt_data;
  Invoice inv;
  inv.id = st.text(0);
  inv.customer_id = st.text(1);
  inv.total_cents = st.i64(2);
  inv.status = *status;
  if (!st.is_null(4)) inv.due_date = st.i64(4);
  inv.created_at = st.i64(5);
  return inv;
}

#define UPLOAD_COLS "id, filename, size, sha256, content_type, created_at"
Upload read_upload(const Stmt& st) {
  return Upload{st.text(0), st.text(1), st.i64(2), st.text(3), st.text(4), st.i64(5)};
}

Result<void> load_items(Connection& c, const TenantId& tenant, Invoice& inv) {
  STORE_STMT(st, c.prepare("SELECT product_id, quantity, unit_price_cents FROM invoice_items "
                           "WHERE tenant_id = ?1 AND invoice_id = ?2 ORDER BY line"));
  st.bind(1, tenant.str()).bind(2, inv.id);
  inv.items.clear();
  for (;;) {
    STORE_TRY(row, st.step());
    if (!*row) break;
    inv.items.push_back(InvoiceItem{st.text(0), st.i64(1), st.i64(2)});
  }
  return {};
}

Result<std::int64_t> count_rows(Connection& c, const char* sql, const TenantId& tenant) {
  STORE_STMT(st, c.prepare(sql));
  st.bind(1, tenant.str());
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::internal;
  return st.i64(0);
}

Result<void> insert_invoice_rows(Connection& c, const TenantId& tenant, const Invoice& inv,
                                 Problem* problem) {
  {
    STORE_STMT(st,
               c.prepare("INSERT INTO invoices(tenant_id, id, customer_id, total_cents, status, "
                         "due_date, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    st.bind(1, tenant.str())
        .bind(2, inv.id)
        .bind(3, inv.customer_id)
        .bind(4, inv.total_cents)
        .bind(5, to_string(inv.status))
        .bind(6, inv.due_date)
        .bind(7, inv.created_at);
    if (auto r = st.run(); !r) return r;
  }
  for (std::size_t i = 0; i < inv.items.size(); ++i) {
    const auto& it = inv.items[i];
    // The cost, karat and weight of the product at the time of sale are kept
    // with the line (profit and gold sold never change afterwards).
    STORE_STMT(st, c.prepare("INSERT INTO invoice_items(tenant_id, invoice_id, line, product_id, "
                             "quantity, unit_price_cents, unit_cost_cents, karat, weight_grams) "
                             "SELECT ?1, ?2, ?3, ?4, ?5, ?6, cost_cents, karat, weight_grams "
                             "FROM products WHERE tenant_id = ?1 AND id = ?4"));
    st.bind(1, tenant.str())
        .bind(2, inv.id)
        .bind(3, static_cast<std::int64_t>(i))
        .bind(4, it.product_id)
        .bind(5, it.quantity)
        .bind(6, it.unit_price_cents);
    if (auto r = st.run(); !r) return r;
    if (c.changes() != 1)
      return refuse(problem, "items[" + std::to_string(i) + "].productId", "no such product");
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------

SqliteRepository::SqliteRepository(Options o)
    : options_(std::move(o)), pool_(std::make_unique<detail::Pool>()) {}

SqliteRepository::~SqliteRepository() = default;

int SqliteRepository::latest_schema_version() noexcept {
  return kLatestVersion;
}

Result<std::unique_ptr<SqliteRepository>> SqliteRepository::open(const Options& options) {
  crypto::init();
  Options o = options;
  fs::path db_path(o.database_path);
  std::error_code fec;
  // Everything the store creates is private to the server's user (0700
  // directories, 0600 files: API.md section 6), whatever the umask.
  if (db_path.has_parent_path()) fec = files::make_private_dirs(db_path.parent_path());
  if (fec) {
    jeweler::logger().error("store: cannot create the directory of {}: {}", o.database_path,
                            fec.message());
    return jeweler::errc::unavailable;
  }
  if (o.uploads_dir.empty())
    o.uploads_dir =
        (db_path.has_parent_path() ? db_path.parent_path() / "uploads" : fs::path("uploads"))
            .string();
  fec = files::make_private_dirs(o.uploads_dir);
  if (fec) {
    jeweler::logger().error("store: cannot create {}: {}", o.uploads_dir, fec.message());
    return jeweler::errc::unavailable;
  }
  // SQLite creates a missing database file with 0644 (less the umask), and
  // its -wal and -shm files with the mode of the database file: creating the
  // file first with 0600 makes all three private.
  if (!o.database_path.empty() && o.database_path != ":memory:" &&
      !o.database_path.starts_with("file:")) {
    files::ensure_private_file(db_path, fec);
    if (fec) {
      jeweler::logger().error("store: cannot create {}: {}", o.database_path, fec.message());
      return jeweler::errc::unavailable;
    }
    if (files::readable_by_others(db_path))
      jeweler::logger().warn(
          "store: {} is readable by other users (password hashes, TOTP secrets): "
          "chmod 600 it and its -wal/-shm files",
          o.database_path);
  }
  if (o.connections < 1) o.connections = 1;

  std::unique_ptr<SqliteRepository> repo(new SqliteRepository(o));
  for (int i = 0; i < o.connections; ++i) {
    STORE_TRY(c, Connection::open(o.database_path, o.busy_timeout_ms));
    if (i == 0)
      if (auto r = migrate(**c); !r) return r.error();
    repo->pool_->add(std::move(*c));
  }
  return repo;
}

Result<int> SqliteRepository::schema_version() {
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  STORE_TRY(row, st.step());
  return static_cast<int>(st.i64(0));
}

// Tenants and users -----------------------------------------------------------

Result<Tenant> SqliteRepository::create_tenant(const TenantId& id, std::string_view name) {
  if (name.empty() || utf8_length(name) > limits::name_max || !valid_utf8(name))
    return jeweler::errc::invalid_argument;
  auto c = pool_->acquire();
  Tenant t{id, std::string(name), wall_ms()};
  STORE_STMT(st, c->prepare("INSERT INTO tenants(id, name, created_at) VALUES (?1, ?2, ?3)"));
  st.bind(1, id.str()).bind(2, t.name).bind(3, t.created_at);
  if (auto r = st.run(); !r) return r.error();
  return t;
}

Result<Tenant> SqliteRepository::get_tenant(const TenantId& id) {
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("SELECT name, created_at FROM tenants WHERE id = ?1"));
  st.bind(1, id.str());
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  return Tenant{id, st.text(0), st.i64(1)};
}

Result<User> SqliteRepository::create_user(const TenantId& tenant, const NewUser& nu,
                                           Problem* problem) {
  NewUser u = nu;
  u.email = normalize_email(u.email);
  if (auto p = validate(u)) return refuse(problem, *p);
  auto c = pool_->acquire();
  User user{UserId::from(crypto::random_id("usr_")),
            tenant,
            u.email,
            u.password_hash,
            u.role,
            u.totp_secret,
            wall_ms()};
  STORE_STMT(st,
             c->prepare("INSERT INTO users(" USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  st.bind(1, tenant.str())
      .bind(2, user.id.str())
      .bind(3, user.email)
      .bind(4, user.password_hash)
      .bind(5, to_string(user.role))
      .bind(6, user.totp_secret)
      .bind(7, user.created_at);
  if (auto r = st.run(); !r) {
    if (r.error() == jeweler::errc::conflict)
      return refuse(problem, "email", "a user with this email exists", jeweler::errc::conflict);
    return r.error();
  }
  return user;
}

Result<User> SqliteRepository::get_user(const TenantId& tenant, const UserId& id) {
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("SELECT " USER_COLS " FROM users WHERE tenant_id = ?1 AND id = ?2"));
  st.bind(1, tenant.str()).bind(2, id.str());
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  return read_user(st);
}

Result<User> SqliteRepository::find_user_by_email(const TenantId& tenant, std::string_view email) {
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("SELECT " USER_COLS " FROM users WHERE tenant_id = ?1 AND email = ?2"));
  st.bind(1, tenant.str()).bind(2, normalize_email(email));
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  return read_user(st);
}

Result<User> SqliteRepository::find_login_user(const std::optional<TenantId>& tenant,
                                               std::string_view email) {
  if (tenant) return find_user_by_email(*tenant, email);
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("SELECT " USER_COLS " FROM users WHERE email = ?1 LIMIT 2"));
  st.bind(1, normalize_email(email));
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  auto user = read_user(st);
  STORE_TRY(second, st.step());
  if (*second) return jeweler::errc::conflict;
  return user;
}

Result<User> SqliteRepository::set_user_totp_secret(const TenantId& tenant, const UserId& id,
                                                    const std::optional<std::string>& secret) {
  if (secret && !crypto::base32_decode(*secret)) return jeweler::errc::invalid_argument;
  {
    auto c = pool_->acquire();
    STORE_STMT(st,
               c->prepare("UPDATE users SET totp_secret = ?3 WHERE tenant_id = ?1 AND id = ?2"));
    st.bind(1, tenant.str()).bind(2, id.str()).bind(3, secret);
    if (auto r = st.run(); !r) return r.error();
    if (c->changes() == 0) return jeweler::errc::not_found;
  }
  return get_user(tenant, id);
}

Result<User> SqliteRepository::set_user_password_hash(const TenantId& tenant, const UserId& id,
                                                      std::string_view hash) {
  if (hash.empty()) return jeweler::errc::invalid_argument;
  {
    auto c = pool_->acquire();
    STORE_STMT(st,
               c->prepare("UPDATE users SET password_hash = ?3 WHERE tenant_id = ?1 AND id = ?2"));
    st.bind(1, tenant.str()).bind(2, id.str()).bind(3, hash);
    if (auto r = st.run(); !r) return r.error();
    if (c->changes() == 0) return jeweler::errc::not_found;
  }
  return get_user(tenant, id);
}

Result<std::vector<std::string>> SqliteRepository::user_permissions(const TenantId& tenant,
                                                                    const UserId& id) {
  STORE_TRY(user, get_user(tenant, id));
  return permissions_for(user->role);
}

// Customers -------------------------------------------------------------------

Result<Customer> SqliteRepository::create_customer(const TenantId& tenant, const NewCustomer& nc,
                                                   std::int64_t now_ms, Problem* problem) {
  if (auto p = validate(nc)) return refuse(problem, *p);
  Customer cu{crypto::random_id("cus_"), nc.name, nc.email, nc.phone, nc.notes, now_ms, now_ms};
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("INSERT INTO customers(tenant_id, " CUSTOMER_COLS
                            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  st.bind(1, tenant.str())
      .bind(2, cu.id)
      .bind(3, cu.name)
      .bind(4, cu.email)
      .bind(5, cu.phone)
      .bind(6, cu.notes)
      .bind(7, cu.created_at)
      .bind(8, cu.updated_at);
  if (auto r = st.run(); !r) {
    // The only constraint a valid customer can break is the tenant reference.
    if (r.error() == jeweler::errc::conflict) return jeweler::errc::not_found;
    return r.error();
  }
  return cu;
}

Result<Customer> SqliteRepository::get_customer(const TenantId& tenant, std::string_view id) {
  if (!valid_entity_id(id)) return jeweler::errc::not_found;
  auto c = pool_->acquire();
  STORE_STMT(
      st, c->prepare("SELECT " CUSTOMER_COLS " FROM customers WHERE tenant_id = ?1 AND id = ?2"));
  st.bind(1, tenant.str()).bind(2, id);
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  return read_customer(st);
}

Result<Page<Customer>> SqliteRepository::list_customers(const TenantId& tenant,
                                                        const PageRequest& page) {
  if (validate(page)) return jeweler::errc::invalid_argument;
  auto c = pool_->acquire();
  Transaction tx(*c);
  if (auto r = tx.begin(Transaction::Kind::read); !r) return r.error();
  Page<Customer> out;
  STORE_TRY(total, count_rows(*c, "SELECT COUNT(*) FROM customers WHERE tenant_id = ?1", tenant));
  out.total = *total;
  STORE_STMT(st, c->prepare("SELECT " CUSTOMER_COLS " FROM customers WHERE tenant_id = ?1 "
                            "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"));
  st.bind(1, tenant.str()).bind(2, page.limit).bind(3, page.offset);
  for (;;) {
    STORE_TRY(row, st.step());
    if (!*row) break;
    out.items.push_back(read_customer(st));
  }
  return out;
}

Result<Customer> SqliteRepository::update_customer(const TenantId& tenant, std::string_view id,
                                                   const CustomerPatch& patch, std::int64_t now_ms,
                                                   Problem* problem) {
  if (!valid_entity_id(id)) return jeweler::errc::not_found;
  if (auto p = validate(patch)) return refuse(problem, *p);
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("UPDATE customers SET name = COALESCE(?3, name), "
                            "email = COALESCE(?4, email), phone = COALESCE(?5, phone), "
                            "notes = COALESCE(?6, notes), updated_at = ?7 "
                            "WHERE tenant_id = ?1 AND id = ?2 RETURNING " CUSTOMER_COLS));
  st.bind(1, tenant.str())
      .bind(2, id)
      .bind(3, patch.name)
      .bind(4, patch.email)
      .bind(5, patch.phone)
      .bind(6, patch.notes)
      .bind(7, now_ms);
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  Customer cu = read_customer(st);
  STORE_TRY(done, st.step());  // completes the statement (and its implicit transaction)
  return cu;
}

// Products --------------------------------------------------------------------

Result<Product> SqliteRepository::create_product(const TenantId& tenant, const NewProduct& np,
                                                 std::int64_t now_ms, Problem* problem) {
  if (auto p = validate(np)) return refuse(problem, *p);
  Product pr{crypto::random_id("prd_"), np.sku,         np.name,       np.karat,
             np.weight_grams,           np.price_cents, np.cost_cents, np.stock,
             np.low_stock_threshold,    now_ms};
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("INSERT INTO products(tenant_id, " PRODUCT_COLS
                            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"));
  st.bind(1, tenant.str())
      .bind(2, pr.id)
      .bind(3, pr.sku)
      .bind(4, pr.name)
      .bind(5, pr.karat)
      .bind(6, pr.weight_grams)
      .bind(7, pr.price_cents)
      .bind(8, pr.cost_cents)
      .bind(9, pr.stock)
      .bind(10, pr.low_stock_threshold)
      .bind(11, pr.updated_at);
  if (auto r = st.run(); !r) {
    if (r.error() == jeweler::errc::conflict)
      return refuse(problem, "sku", "a product with this SKU exists", jeweler::errc::conflict);
    return r.error();
  }
  return pr;
}

Result<Product> SqliteRepository::get_product(const TenantId& tenant, std::string_view id) {
  if (!valid_entity_id(id)) return jeweler::errc::not_found;
  auto c = pool_->acquire();
  STORE_STMT(st,
             c->prepare("SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = ?1 AND id = ?2"));
  st.bind(1, tenant.str()).bind(2, id);
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  return read_product(st);
}

Result<Page<Product>> SqliteRepository::list_products(const TenantId& tenant,
                                                      const PageRequest& page) {
  if (validate(page)) return jeweler::errc::invalid_argument;
  auto c = pool_->acquire();
  Transaction tx(*c);
  if (auto r = tx.begin(Transaction::Kind::read); !r) return r.error();
  Page<Product> out;
  STORE_TRY(total, count_rows(*c, "SELECT COUNT(*) FROM products WHERE tenant_id = ?1", tenant));
  out.total = *total;
  STORE_STMT(st, c->prepare("SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = ?1 "
                            "ORDER BY sku, id LIMIT ?2 OFFSET ?3"));
  st.bind(1, tenant.str()).bind(2, page.limit).bind(3, page.offset);
  for (;;) {
    STORE_TRY(row, st.step());
    if (!*row) break;
    out.items.push_back(read_product(st));
  }
  return out;
}

Result<Product> SqliteRepository::update_product(const TenantId& tenant, std::string_view id,
                                                 const ProductPatch& patch, std::int64_t now_ms,
                                                 Problem* problem) {
  if (!valid_entity_id(id)) return jeweler::errc::not_found;
  if (auto p = validate(patch)) return refuse(problem, *p);
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("UPDATE products SET name = COALESCE(?3, name), "
                            "price_cents = COALESCE(?4, price_cents), stock = COALESCE(?5, stock), "
                            "low_stock_threshold = COALESCE(?6, low_stock_threshold), "
                            "updated_at = ?7 WHERE tenant_id = ?1 AND id = ?2 "
                            "RETURNING " PRODUCT_COLS));
  st.bind(1, tenant.str())
      .bind(2, id)
      .bind(3, patch.name)
      .bind(4, patch.price_cents)
      .bind(5, patch.stock)
      .bind(6, patch.low_stock_threshold)
      .bind(7, now_ms);
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  Product pr = read_product(st);
  STORE_TRY(done, st.step());
  return pr;
}

// Invoices --------------------------------------------------------------------

Result<Invoice> SqliteRepository::create_invoice(const TenantId& tenant, const NewInvoice& ni,
                                                 std::int64_t now_ms, Problem* problem) {
  if (auto p = validate(ni)) return refuse(problem, *p);
  auto c = pool_->acquire();
  Transaction tx(*c);
  if (auto r = tx.begin(Transaction::Kind::write); !r) return r.error();

  {
    STORE_STMT(st, c->prepare("SELECT 1 FROM customers WHERE tenant_id = ?1 AND id = ?2"));
    st.bind(1, tenant.str()).bind(2, ni.customer_id);
    STORE_TRY(row, st.step());
    // Not one of the tenant's customers (unknown, or another tenant's):
    // not_found, like a path id (API.md section 4), naming the field.
    if (!*row) return refuse(problem, "customerId", "no such customer", jeweler::errc::not_found);
  }

  Invoice inv;
  inv.id = crypto::random_id("inv_");
  inv.customer_id = ni.customer_id;
  inv.status = ni.status;
  inv.created_at = now_ms;
  inv.due_date = ni.due_date;
  if (inv.status == InvoiceStatus::due && !inv.due_date)
    inv.due_date = now_ms + std::int64_t{30} * 24 * 3600 * 1000;

  for (std::size_t i = 0; i < ni.items.size(); ++i) {
    const auto& item = ni.items[i];
    const std::string field = "items[" + std::to_string(i) + "]";
    std::int64_t price = 0, stock = 0;
    {
      STORE_STMT(st, c->prepare("SELECT price_cents, stock FROM products "
                                "WHERE tenant_id = ?1 AND id = ?2"));
      st.bind(1, tenant.str()).bind(2, item.product_id);
      STORE_TRY(row, st.step());
      if (!*row)
        return refuse(problem, field + ".productId", "no such product", jeweler::errc::not_found);
      price = st.i64(0);
      stock = st.i64(1);
    }
    if (stock < item.quantity)
      return refuse(problem, field + ".quantity",
                    "insufficient stock for product " + item.product_id + ": requested " +
                        std::to_string(item.quantity) + ", available " + std::to_string(stock),
                    jeweler::errc::conflict);
    {
      STORE_STMT(st, c->prepare("UPDATE products SET stock = stock - ?3, updated_at = ?4 "
                                "WHERE tenant_id = ?1 AND id = ?2 AND stock >= ?3"));
      st.bind(1, tenant.str()).bind(2, item.product_id).bind(3, item.quantity).bind(4, now_ms);
      if (auto r = st.run(); !r) return r.error();
      if (c->changes() != 1) return jeweler::errc::internal;  // cannot happen in the transaction
    }
    inv.items.push_back(InvoiceItem{item.product_id, item.quantity, price});
    inv.total_cents += price * item.quantity;
  }
  if (auto r = insert_invoice_rows(*c, tenant, inv, problem); !r) return r.error();
  if (auto r = tx.commit(); !r) return r.error();
  return inv;
}

Result<Invoice> SqliteRepository::get_invoice(const TenantId& tenant, std::string_view id) {
  if (!valid_entity_id(id)) return jeweler::errc::not_found;
  auto c = pool_->acquire();
  Transaction tx(*c);
  if (auto r = tx.begin(Transaction::Kind::read); !r) return r.error();
  Invoice inv;
  {
    STORE_STMT(
        st, c->prepare("SELECT " INVOICE_COLS " FROM invoices WHERE tenant_id = ?1 AND id = ?2"));
    st.bind(1, tenant.str()).bind(2, id);
    STORE_TRY(row, st.step());
    if (!*row) return jeweler::errc::not_found;
    STORE_TRY(head, read_invoice_head(st));
    inv = std::move(*head);
  }
  if (auto r = load_items(*c, tenant, inv); !r) return r.error();
  return inv;
}

Result<Page<Invoice>> SqliteRepository::list_invoices(const TenantId& tenant,
                                                      const PageRequest& page) {
  if (validate(page)) return jeweler::errc::invalid_argument;
  auto c = pool_->acquire();
  Transaction tx(*c);
  if (auto r = tx.begin(Transaction::Kind::read); !r) return r.error();
  Page<Invoice> out;
  STORE_TRY(total, count_rows(*c, "SELECT COUNT(*) FROM invoices WHERE tenant_id = ?1", tenant));
  out.total = *total;
  {
    STORE_STMT(st, c->prepare("SELECT " INVOICE_COLS " FROM invoices WHERE tenant_id = ?1 "
                              "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"));
    st.bind(1, tenant.str()).bind(2, page.limit).bind(3, page.offset);
    for (;;) {
      STORE_TRY(row, st.step());
      if (!*row) break;
      STORE_TRY(head, read_invoice_head(st));
      out.items.push_back(std::move(*head));
    }
  }
  for (auto& inv : out.items)
    if (auto r = load_items(*c, tenant, inv); !r) return r.error();
  return out;
}

// Gold price ------------------------------------------------------------------

Result<GoldPrice> SqliteRepository::get_gold_price(const TenantId& tenant) {
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("SELECT currency, price_per_gram_24k, updated_at FROM gold_prices "
                            "WHERE tenant_id = ?1"));
  st.bind(1, tenant.str());
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  return GoldPrice{st.text(0), st.f64(1), st.i64(2)};
}

Result<GoldPrice> SqliteRepository::put_gold_price(const TenantId& tenant, double price,
                                                   std::string_view currency, std::int64_t now_ms,
                                                   Problem* problem) {
  if (auto p = validate_gold_price(price, currency)) return refuse(problem, *p);
  auto c = pool_->acquire();
  STORE_STMT(st, c->prepare("INSERT INTO gold_prices(tenant_id, currency, price_per_gram_24k, "
                            "updated_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(tenant_id) DO UPDATE "
                            "SET currency = excluded.currency, "
                            "price_per_gram_24k = excluded.price_per_gram_24k, "
                            "updated_at = excluded.updated_at"));
  st.bind(1, tenant.str()).bind(2, currency).bind(3, price).bind(4, now_ms);
  if (auto r = st.run(); !r) {
    if (r.error() == jeweler::errc::conflict) return jeweler::errc::not_found;  // no such tenant
    return r.error();
  }
  return GoldPrice{std::string(currency), price, now_ms};
}

// Uploads ---------------------------------------------------------------------

Result<Upload> SqliteRepository::create_upload(const TenantId& tenant, const NewUpload& nu,
                                               std::int64_t now_ms, Problem* problem) {
  if (auto p = validate(nu, options_.upload_limit_bytes)) return refuse(problem, *p);
  Upload up{crypto::random_id("upl_"),
            nu.filename,
            static_cast<std::int64_t>(nu.bytes.size()),
            crypto::sha256_hex(nu.bytes),
            nu.content_type.empty() ? std::string("application/octet-stream") : nu.content_type,
            now_ms};
  // Tenant ids are [A-Za-z0-9_.@-] (no '/'), but "." and ".." are valid ids:
  // prefix the directory so it can never leave uploads_dir.
  const fs::path dir = fs::path(options_.uploads_dir) / ("t-" + tenant.str());
  const fs::path final_path = dir / up.id;
  const fs::path tmp_path = dir / (up.id + ".tmp");
  std::error_code ec;
  ec = files::make_private_dirs(dir);
  if (ec) {
    jeweler::logger().error("store: cannot create upload directory: {}", ec.message());
    return jeweler::errc::unavailable;
  }
  fs::remove(tmp_path, ec);  // a leftover of a crash: the file is created anew (0600)
  ec = files::write_private_file(tmp_path, nu.bytes);
  if (ec) {
    jeweler::logger().error("store: cannot write upload file: {}", ec.message());
    return jeweler::errc::unavailable;
  }
  fs::rename(tmp_path, final_path, ec);
  if (ec) {
    jeweler::logger().error("store: cannot rename upload file: {}", ec.message());
    fs::remove(tmp_path, ec);
    return jeweler::errc::unavailable;
  }
  auto c = pool_->acquire();
  auto inserted = [&]() -> Result<void> {
    STORE_STMT(st, c->prepare("INSERT INTO uploads(tenant_id, " UPLOAD_COLS
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    st.bind(1, tenant.str())
        .bind(2, up.id)
        .bind(3, up.filename)
        .bind(4, up.size)
        .bind(5, up.sha256)
        .bind(6, up.content_type)
        .bind(7, up.created_at);
    return st.run();
  }();
  if (!inserted) {
    fs::remove(final_path, ec);
    if (inserted.error() == jeweler::errc::conflict) return jeweler::errc::not_found;
    return inserted.error();
  }
  return up;
}

Result<Upload> SqliteRepository::get_upload(const TenantId& tenant, std::string_view id) {
  if (!valid_entity_id(id)) return jeweler::errc::not_found;
  auto c = pool_->acquire();
  STORE_STMT(st,
             c->prepare("SELECT " UPLOAD_COLS " FROM uploads WHERE tenant_id = ?1 AND id = ?2"));
  st.bind(1, tenant.str()).bind(2, id);
  STORE_TRY(row, st.step());
  if (!*row) return jeweler::errc::not_found;
  return read_upload(st);
}

Result<std::string> SqliteRepository::upload_path(const TenantId& tenant, std::string_view id) {
  STORE_TRY(up, get_upload(tenant, id));
  return (fs::path(options_.uploads_dir) / ("t-" + tenant.str()) / up->id).string();
}

// KPI -------------------------------------------------------------------------

Result<Kpi> SqliteRepository::compute_kpi(const TenantId& tenant, std::int64_t now_ms) {
  const KpiWindow w = KpiWindow::at(now_ms);
  auto c = pool_->acquire();
  Transaction tx(*c);  // one snapshot for all figures
  if (auto r = tx.begin(Transaction::Kind::read); !r) return r.error();
  Kpi k;
  k.last_updated = now_ms;
  {
    STORE_STMT(st, c->prepare("SELECT COALESCE(SUM(total_cents), 0) FROM invoices "
                              "WHERE tenant_id = ?1 AND created_at >= ?2 AND created_at <= ?3"));
    st.bind(1, tenant.str()).bind(2, w.day_start).bind(3, now_ms);
    STORE_TRY(row, st.step());
    k.today_sales_cents = st.i64(0);
  }
  {
    STORE_STMT(
        st, c->prepare(
                "SELECT COALESCE(SUM(ii.quantity * (ii.unit_price_cents - ii.unit_cost_cents)), 0) "
                "FROM invoices i JOIN invoice_items ii "
                "ON ii.tenant_id = i.tenant_id AND ii.invoice_id = i.id "
                "WHERE i.tenant_id = ?1 AND i.created_at >= ?2 AND i.created_at <= ?3"));
    st.bind(1, tenant.str()).bind(2, w.day_start).bind(3, now_ms);
    STORE_TRY(row, st.step());
    k.today_profit_cents = st.i64(0);
  }
  {
    STORE_STMT(st, c->prepare("SELECT COALESCE(SUM(ii.quantity * ii.weight_grams), 0.0) "
                              "FROM invoices i JOIN invoice_items ii "
                              "ON ii.tenant_id = i.tenant_id AND ii.invoice_id = i.id "
                              "WHERE i.tenant_id = ?1 AND i.created_at >= ?2 "
                              "AND i.created_at <= ?3 AND ii.karat > 0"));
    st.bind(1, tenant.str()).bind(2, w.month_start).bind(3, now_ms);
    STORE_TRY(row, st.step());
    // To the milligram: a sum of doubles drifts (486.9200000000001).
    k.gold_sold_mtd_grams = std::round(st.f64(0) * 1000.0) / 1000.0;
  }
  {
    STORE_STMT(st, c->prepare("SELECT COUNT(*) FROM customers "
                              "WHERE tenant_id = ?1 AND created_at >= ?2 AND created_at <= ?3"));
    st.bind(1, tenant.str()).bind(2, w.day_start).bind(3, now_ms);
    STORE_TRY(row, st.step());
    k.new_customers = st.i64(0);
  }
  {
    STORE_STMT(st, c->prepare("SELECT COUNT(*) FROM invoices WHERE tenant_id = ?1 "
                              "AND status = 'due' AND due_date < ?2"));
    st.bind(1, tenant.str()).bind(2, now_ms);
    STORE_TRY(row, st.step());
    k.overdue_invoices = st.i64(0);
  }
  {
    STORE_STMT(st, c->prepare("SELECT COUNT(*) FROM invoices WHERE tenant_id = ?1 "
                              "AND status = 'due' AND due_date >= ?2 AND due_date < ?3"));
    st.bind(1, tenant.str()).bind(2, now_ms).bind(3, w.due_soon_end);
    STORE_TRY(row, st.step());
    k.due_cheques = st.i64(0);
  }
  {
    STORE_STMT(st, c->prepare("SELECT COUNT(*) FROM products WHERE tenant_id = ?1 "
                              "AND stock <= low_stock_threshold"));
    st.bind(1, tenant.str());
    STORE_TRY(row, st.step());
    k.low_inventory_items = st.i64(0);
  }
  return k;
}

// Bulk ------------------------------------------------------------------------

Result<bool> SqliteRepository::empty() {
  auto c = pool_->acquire();
  auto st = c->prepare("SELECT EXISTS (SELECT 1 FROM tenants)");
  if (!st) return {boost::system::in_place_error, st.error()};
  auto row = st->step();
  if (!row) return {boost::system::in_place_error, row.error()};
  return st->i64(0) == 0;
}

Result<void> SqliteRepository::import(const Dataset& data) {
  auto c = pool_->acquire();
  Transaction tx(*c);
  if (auto r = tx.begin(Transaction::Kind::write); !r) return r;
  for (const auto& td : data.tenants) {
    const TenantId& t = td.tenant.id;
    {
      STORE_STMT(st, c->prepare("INSERT INTO tenants(id, name, created_at) VALUES (?1, ?2, ?3)"));
      st.bind(1, t.str()).bind(2, td.tenant.name).bind(3, td.tenant.created_at);
      if (auto r = st.run(); !r) return r;
    }
    for (const auto& u : td.users) {
      STORE_STMT(
          st, c->prepare("INSERT INTO users(" USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
      st.bind(1, t.str())
          .bind(2, u.id.str())
          .bind(3, normalize_email(u.email))
          .bind(4, u.password_hash)
          .bind(5, to_string(u.role))
          .bind(6, u.totp_secret)
          .bind(7, u.created_at);
      if (auto r = st.run(); !r) return r;
    }
    for (const auto& cu : td.customers) {
      STORE_STMT(st, c->prepare("INSERT INTO customers(tenant_id, " CUSTOMER_COLS
                                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
      st.bind(1, t.str())
          .bind(2, cu.id)
          .bind(3, cu.name)
          .bind(4, cu.email)
          .bind(5, cu.phone)
          .bind(6, cu.notes)
          .bind(7, cu.created_at)
          .bind(8, cu.updated_at);
      if (auto r = st.run(); !r) return r;
    }
    for (const auto& pr : td.products) {
      STORE_STMT(st, c->prepare("INSERT INTO products(tenant_id, " PRODUCT_COLS
                                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"));
      st.bind(1, t.str())
          .bind(2, pr.id)
          .bind(3, pr.sku)
          .bind(4, pr.name)
          .bind(5, pr.karat)
          .bind(6, pr.weight_grams)
          .bind(7, pr.price_cents)
          .bind(8, pr.cost_cents)
          .bind(9, pr.stock)
          .bind(10, pr.low_stock_threshold)
          .bind(11, pr.updated_at);
      if (auto r = st.run(); !r) return r;
    }
    for (const auto& inv : td.invoices)
      if (auto r = insert_invoice_rows(*c, t, inv, nullptr); !r) return r;
    if (td.gold_price) {
      STORE_STMT(st, c->prepare("INSERT INTO gold_prices(tenant_id, currency, price_per_gram_24k, "
                                "updated_at) VALUES (?1, ?2, ?3, ?4)"));
      st.bind(1, t.str())
          .bind(2, td.gold_price->currency)
          .bind(3, td.gold_price->price_per_gram_24k)
          .bind(4, td.gold_price->updated_at);
      if (auto r = st.run(); !r) return r;
    }
  }
  return tx.commit();
}

}  // namespace jeweler::store

#undef STORE_TRY
#undef STORE_STMT
#undef USER_COLS
#undef CUSTOMER_COLS
#undef PRODUCT_COLS
#undef INVOICE_COLS
#undef UPLOAD_COLS
