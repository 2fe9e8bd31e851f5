#include "store_fixture.hpp"

#include <jeweler/store/crypto.hpp>

#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

using namespace jeweler;
using namespace jeweler::store;
using jeweler::store::test::StoreTest;

namespace {

const TenantId kAurum = TenantId::from("aurum");
const TenantId kArgent = TenantId::from("argent");
constexpr std::int64_t kNow = 1710510310123;

class RepoTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_TRUE(repo_->create_tenant(kAurum, "Aurum"));
    ASSERT_TRUE(repo_->create_tenant(kArgent, "Argent"));
  }
  Customer customer(const TenantId& t, std::string name, std::int64_t at = kNow) {
    auto r = repo_->create_customer(t, NewCustomer{std::move(name), "", "", ""}, at, nullptr);
    EXPECT_TRUE(r);
    return r ? *r : Customer{};
  }
  Product product(const TenantId& t, std::string sku, std::int64_t price, std::int64_t stock) {
    auto r = repo_->create_product(
        t, NewProduct{sku, "Item " + sku, 22, 5.0, price, price / 2, stock, 1}, kNow, nullptr);
    EXPECT_TRUE(r);
    return r ? *r : Product{};
  }
  std::int64_t invoice_count(const TenantId& t) {
    auto r = repo_->list_invoices(t, PageRequest{1, 0});
    EXPECT_TRUE(r);
    return r ? r->total : -1;
  }
};

}  // namespace

TEST_F(StoreTest, CreatesParentDirectoryAndMigratesOnce) {
  EXPECT_TRUE(std::filesystem::exists(dir_ / "db" / "jeweler.db"));
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "db" / "uploads"));
  auto v = repo_->schema_version();
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, SqliteRepository::latest_schema_version());
  ASSERT_TRUE(repo_->create_tenant(TenantId::from("aurum"), "Aurum"));
  repo_.reset();
  // Re-opening (twice) keeps data and version; no migration runs again.
  for (int i = 0; i < 2; ++i) {
    auto again = SqliteRepository::open(options_);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*(*again)->schema_version(), SqliteRepository::latest_schema_version());
    EXPECT_TRUE((*again)->get_tenant(TenantId::from("aurum")));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(options_.database_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_version", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), SqliteRepository::latest_schema_version());
  sqlite3_finalize(st);
  // WAL is on.
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(StoreTest, RefusesASchemaNewerThanTheBinary) {
  repo_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(options_.database_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "INSERT INTO schema_version VALUES (999, 0)", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto r = SqliteRepository::open(options_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::internal);
}

TEST_F(StoreTest, UnopenablePathIsUnavailable) {
  Options o;
  o.database_path = (dir_ / "file-not-dir").string();
  std::ofstream(o.database_path) << "x";
  o.database_path += "/jeweler.db";  // parent is a regular file
  auto r = SqliteRepository::open(o);
  ASSERT_FALSE(r);
  EXPECT_TRUE(is_unavailable(r.error()));
}

TEST(StoreOptions, FromEnv) {
  auto o = Options::from_env([](std::string_view name) -> std::optional<std::string> {
    if (name == "DATABASE_PATH") return "/tmp/x/y.db";
    if (name == "UPLOAD_LIMIT_BYTES") return "2048";
    return std::nullopt;
  });
  EXPECT_EQ(o.database_path, "/tmp/x/y.db");
  EXPECT_EQ(o.upload_limit_bytes, 2048);
  auto d = Options::from_env([](std::string_view) { return std::optional<std::string>(); });
  EXPECT_EQ(d.database_path, "./var/jeweler.db");
  EXPECT_THROW(Options::from_env([](std::string_view name) -> std::optional<std::string> {
                 if (name == "UPLOAD_LIMIT_BYTES") return "lots";
                 return std::nullopt;
               }),
               std::exception);
}

TEST_F(RepoTest, CustomersCrudAndPagination) {
  Problem pr;
  auto c = repo_->create_customer(kAurum, NewCustomer{"Ana", "ana@x.example", "+1 555", "vip"},
                                  1000, &pr);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id.rfind("cus_", 0), 0u);
  auto got = repo_->get_customer(kAurum, c->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "Ana");
  EXPECT_EQ(got->email, "ana@x.example");
  EXPECT_EQ(got->created_at, 1000);

  CustomerPatch patch;
  patch.phone = "+44 20 7946 0000";
  auto up = repo_->update_customer(kAurum, c->id, patch, 2000, &pr);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->phone, "+44 20 7946 0000");
  EXPECT_EQ(up->name, "Ana");  // untouched
  EXPECT_EQ(up->notes, "vip");
  EXPECT_EQ(up->created_at, 1000);
  EXPECT_EQ(up->updated_at, 2000);
  EXPECT_EQ(repo_->get_customer(kAurum, c->id)->phone, "+44 20 7946 0000");

  CustomerPatch bad;
  bad.email = "not-an-email";
  auto r = repo_->update_customer(kAurum, c->id, bad, 3000, &pr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::invalid_argument);
  EXPECT_EQ(pr.field, "email");
  EXPECT_EQ(repo_->get_customer(kAurum, c->id)->updated_at, 2000);  // nothing stored

  for (int i = 0; i < 12; ++i) customer(kAurum, "C" + std::to_string(i), 5000 + i);
  auto page = repo_->list_customers(kAurum, PageRequest{5, 0});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total, 13);
  ASSERT_EQ(page->items.size(), 5u);
  EXPECT_EQ(page->items[0].name, "C11");  // newest first
  auto last = repo_->list_customers(kAurum, PageRequest{5, 10});
  ASSERT_EQ(last->items.size(), 3u);
  EXPECT_EQ(last->items[2].name, "Ana");
  EXPECT_TRUE(repo_->list_customers(kAurum, PageRequest{5, 100})->items.empty());
  EXPECT_EQ(repo_->list_customers(kAurum, PageRequest{0, 0}).error(), errc::invalid_argument);
  EXPECT_EQ(repo_->list_customers(kAurum, PageRequest{101, 0}).error(), errc::invalid_argument);

  EXPECT_EQ(repo_->get_customer(kAurum, "cus_missing").error(), errc::not_found);
  EXPECT_EQ(repo_->get_customer(kAurum, "../../etc").error(), errc::not_found);
  EXPECT_EQ(repo_->update_customer(kAurum, "cus_missing", patch, 1, &pr).error(), errc::not_found);
}

TEST_F(RepoTest, ProductsCrudAndSkuUnique) {
  Problem pr;
  auto p = repo_->create_product(kAurum, NewProduct{"AUR-1", "Ring", 22, 4.25, 129999, 90000, 7, 2},
                                 100, &pr);
  ASSERT_TRUE(p);
  auto got = repo_->get_product(kAurum, p->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->price_cents, 129999);
  EXPECT_EQ(got->cost_cents, 90000);
  EXPECT_DOUBLE_EQ(got->weight_grams, 4.25);
  EXPECT_EQ(got->karat, 22);

  auto dup =
      repo_->create_product(kAurum, NewProduct{"AUR-1", "Other", 18, 1, 1, 1, 1, 1}, 100, &pr);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error(), errc::conflict);
  EXPECT_EQ(pr.field, "sku");
  // Same SKU in another tenant is fine.
  EXPECT_TRUE(
      repo_->create_product(kArgent, NewProduct{"AUR-1", "Other", 18, 1, 1, 1, 1, 1}, 100, &pr));

  ProductPatch patch;
  patch.price_cents = 150000;
  patch.stock = 0;
  auto up = repo_->update_product(kAurum, p->id, patch, 200, &pr);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->price_cents, 150000);
  EXPECT_EQ(up->stock, 0);
  EXPECT_EQ(up->name, "Ring");
  EXPECT_EQ(up->low_stock_threshold, 2);
  EXPECT_EQ(up->updated_at, 200);

  ProductPatch neg;
  neg.stock = -3;
  EXPECT_EQ(repo_->update_product(kAurum, p->id, neg, 300, &pr).error(), errc::invalid_argument);
  EXPECT_EQ(repo_->get_product(kAurum, p->id)->stock, 0);

  product(kAurum, "AUR-0", 1, 1);
  auto list = repo_->list_products(kAurum, PageRequest{});
  ASSERT_TRUE(list);
  EXPECT_EQ(list->total, 2);
  EXPECT_EQ(list->items[0].sku, "AUR-0");  // by SKU
}

TEST_F(RepoTest, TenantScopingEverywhere) {
  Customer c = customer(kAurum, "Aurum's customer");
  Product p = product(kAurum, "A-1", 10000, 5);
  auto inv = repo_->create_invoice(kAurum, NewInvoice{c.id, {{p.id, 1}}, InvoiceStatus::paid, {}},
                                   kNow, nullptr);
  ASSERT_TRUE(inv);
  auto upl =
      repo_->create_upload(kAurum, NewUpload{"a.txt", "text/plain", "aurum secret"}, kNow, nullptr);
  ASSERT_TRUE(upl);
  ASSERT_TRUE(repo_->put_gold_price(kAurum, 65.0, "USD", kNow, nullptr));

  Problem pr;
  EXPECT_EQ(repo_->get_customer(kArgent, c.id).error(), errc::not_found);
  EXPECT_EQ(repo_->get_product(kArgent, p.id).error(), errc::not_found);
  EXPECT_EQ(repo_->get_invoice(kArgent, inv->id).error(), errc::not_found);
  EXPECT_EQ(repo_->get_upload(kArgent, upl->id).error(), errc::not_found);
  EXPECT_EQ(repo_->upload_path(kArgent, upl->id).error(), errc::not_found);
  EXPECT_EQ(repo_->get_gold_price(kArgent).error(), errc::not_found);

  CustomerPatch cp;
  cp.name = "hijacked";
  EXPECT_EQ(repo_->update_customer(kArgent, c.id, cp, kNow, &pr).error(), errc::not_found);
  ProductPatch pp;
  pp.stock = 999;
  EXPECT_EQ(repo_->update_product(kArgent, p.id, pp, kNow, &pr).error(), errc::not_found);
  EXPECT_EQ(repo_->get_customer(kAurum, c.id)->name, "Aurum's customer");
  EXPECT_EQ(repo_->get_product(kAurum, p.id)->stock, 4);

  // Argent cannot sell aurum's products nor bill aurum's customers.
  Customer ac = customer(kArgent, "Argent's customer");
  Product ap = product(kArgent, "G-1", 100, 5);
  auto x1 = repo_->create_invoice(kArgent, NewInvoice{c.id, {{ap.id, 1}}, InvoiceStatus::paid, {}},
                                  kNow, &pr);
  EXPECT_EQ(x1.error(), errc::not_found);  // as if it did not exist
  EXPECT_EQ(pr.field, "customerId");
  auto x2 = repo_->create_invoice(kArgent, NewInvoice{ac.id, {{p.id, 1}}, InvoiceStatus::paid, {}},
                                  kNow, &pr);
  EXPECT_EQ(x2.error(), errc::not_found);
  EXPECT_EQ(pr.field, "items[0].productId");
  EXPECT_EQ(repo_->get_product(kAurum, p.id)->stock, 4);
  EXPECT_EQ(repo_->get_product(kArgent, ap.id)->stock, 5);

  EXPECT_EQ(repo_->list_customers(kArgent, PageRequest{})->total, 1);
  EXPECT_EQ(repo_->list_customers(kArgent, PageRequest{})->items[0].id, ac.id);
  EXPECT_EQ(repo_->list_products(kArgent, PageRequest{})->total, 1);
  EXPECT_EQ(invoice_count(kArgent), 0);
  EXPECT_EQ(invoice_count(kAurum), 1);

  // A tenant that does not exist cannot get rows either.
  auto ghost = TenantId::from("ghost");
  EXPECT_EQ(repo_->create_customer(ghost, NewCustomer{"x", "", "", ""}, kNow, &pr).error(),
            errc::not_found);
}

TEST_F(RepoTest, InvoiceTransaction) {
  Customer c = customer(kAurum, "Buyer");
  Product a = product(kAurum, "A", 12345, 5);
  Product b = product(kAurum, "B", 1000, 2);
  Problem pr;

  auto inv = repo_->create_invoice(
      kAurum, NewInvoice{c.id, {{a.id, 2}, {b.id, 1}}, InvoiceStatus::due, std::nullopt}, kNow,
      &pr);
  ASSERT_TRUE(inv) << pr.message;
  EXPECT_EQ(inv->total_cents, 2 * 12345 + 1000);
  EXPECT_EQ(inv->status, InvoiceStatus::due);
  ASSERT_TRUE(inv->due_date);
  EXPECT_EQ(*inv->due_date, kNow + 30LL * 86400000);
  ASSERT_EQ(inv->items.size(), 2u);
  EXPECT_EQ(inv->items[0].unit_price_cents, 12345);
  EXPECT_EQ(repo_->get_product(kAurum, a.id)->stock, 3);
  EXPECT_EQ(repo_->get_product(kAurum, b.id)->stock, 1);
  EXPECT_EQ(repo_->get_product(kAurum, a.id)->updated_at, kNow);

  auto back = repo_->get_invoice(kAurum, inv->id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->customer_id, c.id);
  EXPECT_EQ(back->total_cents, inv->total_cents);
  ASSERT_EQ(back->items.size(), 2u);
  EXPECT_EQ(back->items[1].product_id, b.id);
  EXPECT_EQ(back->items[1].quantity, 1);

  // Later price changes do not alter the invoice.
  ProductPatch pp;
  pp.price_cents = 1;
  ASSERT_TRUE(repo_->update_product(kAurum, a.id, pp, kNow, &pr));
  EXPECT_EQ(repo_->get_invoice(kAurum, inv->id)->items[0].unit_price_cents, 12345);

  // Short stock on the second line: conflict, and the first line's decrement
  // is rolled back.
  auto shortage = repo_->create_invoice(
      kAurum, NewInvoice{c.id, {{a.id, 1}, {b.id, 2}}, InvoiceStatus::paid, {}}, kNow, &pr);
  ASSERT_FALSE(shortage);
  EXPECT_EQ(shortage.error(), errc::conflict);
  EXPECT_EQ(pr.field, "items[1].quantity");
  EXPECT_NE(pr.message.find("available 1"), std::string::npos) << pr.message;
  EXPECT_EQ(repo_->get_product(kAurum, a.id)->stock, 3);
  EXPECT_EQ(repo_->get_product(kAurum, b.id)->stock, 1);
  EXPECT_EQ(invoice_count(kAurum), 1);

  // Unknown product on the second line: nothing written either.
  auto unknown = repo_->create_invoice(
      kAurum, NewInvoice{c.id, {{a.id, 1}, {"prd_nope", 1}}, InvoiceStatus::paid, {}}, kNow, &pr);
  EXPECT_EQ(unknown.error(), errc::not_found);  // not one of the tenant's: like a path id
  EXPECT_EQ(pr.field, "items[1].productId");
  EXPECT_EQ(repo_->get_product(kAurum, a.id)->stock, 3);
  EXPECT_EQ(invoice_count(kAurum), 1);

  auto no_customer = repo_->create_invoice(
      kAurum, NewInvoice{"cus_nope", {{a.id, 1}}, InvoiceStatus::paid, {}}, kNow, &pr);
  EXPECT_EQ(no_customer.error(), errc::not_found);
  EXPECT_EQ(pr.field, "customerId");
  EXPECT_EQ(pr.message, "no such customer");

  // Exactly the remaining stock is fine; paid with explicit due date kept.
  auto exact = repo_->create_invoice(kAurum, NewInvoice{c.id, {{a.id, 3}}, InvoiceStatus::paid, 77},
                                     kNow + 1, &pr);
  ASSERT_TRUE(exact);
  EXPECT_EQ(*exact->due_date, 77);
  EXPECT_EQ(repo_->get_product(kAurum, a.id)->stock, 0);

  auto page = repo_->list_invoices(kAurum, PageRequest{10, 0});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total, 2);
  EXPECT_EQ(page->items[0].id, exact->id);  // newest first
  EXPECT_EQ(page->items[1].items.size(), 2u);
}

TEST_F(RepoTest, ConcurrentInvoicesNeverOversell) {
  Customer c = customer(kAurum, "Crowd");
  Product p = product(kAurum, "HOT", 100, 40);
  std::atomic<int> ok{0}, conflict{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        auto r = repo_->create_invoice(
            kAurum, NewInvoice{c.id, {{p.id, 1}}, InvoiceStatus::paid, {}}, kNow, nullptr);
        if (r)
          ++ok;
        else if (r.error() == errc::conflict)
          ++conflict;
        else
          ++other;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_EQ(conflict.load(), 20);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(repo_->get_product(kAurum, p.id)->stock, 0);
  EXPECT_EQ(invoice_count(kAurum), 40);
}

TEST_F(RepoTest, SqlMetacharactersAndUnicodeStoredVerbatim) {
  const std::string evil = "Robert'); DROP TABLE customers;-- \"%_\\* ?1 $x";
  const std::string uni = "Zoë Ørsted-Łukasz 💍 金の指輪 مرحبا";
  const std::string notes = "line1\nline2\t'quoted' \"double\" -- /* c */ ; %";
  Problem pr;
  auto c =
      repo_->create_customer(kAurum, NewCustomer{evil, "o'brien@x.example", "", notes}, kNow, &pr);
  ASSERT_TRUE(c) << pr.message;
  auto u = repo_->create_customer(kAurum, NewCustomer{uni, "", "", uni}, kNow, &pr);
  ASSERT_TRUE(u);
  auto back = repo_->get_customer(kAurum, c->id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->name, evil);
  EXPECT_EQ(back->notes, notes);
  EXPECT_EQ(back->email, "o'brien@x.example");
  EXPECT_EQ(repo_->get_customer(kAurum, u->id)->name, uni);
  EXPECT_EQ(repo_->get_customer(kAurum, u->id)->notes, uni);
  EXPECT_EQ(repo_->list_customers(kAurum, PageRequest{})->total, 2);  // table intact

  // Metacharacters in ids and emails simply match nothing.
  EXPECT_EQ(repo_->get_customer(kAurum, "' OR '1'='1").error(), errc::not_found);
  EXPECT_EQ(repo_->find_user_by_email(kAurum, "' OR 1=1 --").error(), errc::not_found);
  EXPECT_EQ(repo_->find_login_user(std::nullopt, "%").error(), errc::not_found);

  CustomerPatch patch;
  patch.name = "名前 '; DELETE FROM customers; --";
  auto up = repo_->update_customer(kAurum, u->id, patch, kNow, &pr);
  ASSERT_TRUE(up);
  EXPECT_EQ(repo_->get_customer(kAurum, u->id)->name, *patch.name);
  EXPECT_EQ(repo_->list_customers(kAurum, PageRequest{})->total, 2);

  // Invalid UTF-8 and control characters are refused, nothing stored.
  EXPECT_EQ(repo_->create_customer(kAurum, NewCustomer{"bad\xFF", "", "", ""}, kNow, &pr).error(),
            errc::invalid_argument);
  EXPECT_EQ(
      repo_->create_customer(kAurum, NewCustomer{std::string("nul\0x", 5), "", "", ""}, kNow, &pr)
          .error(),
      errc::invalid_argument);
  EXPECT_EQ(repo_->list_customers(kAurum, PageRequest{})->total, 2);
}

TEST_F(RepoTest, UsersLoginLookupAndPermissions) {
  Problem pr;
  auto owner = repo_->create_user(
      kAurum, NewUser{"Owner@Aurum.example", "$argon2id$fake", Role::admin, std::nullopt}, &pr);
  ASSERT_TRUE(owner) << pr.message;
  EXPECT_EQ(owner->email, "owner@aurum.example");
  auto dup = repo_->create_user(kAurum, NewUser{"owner@aurum.example", "h", Role::staff, {}}, &pr);
  EXPECT_EQ(dup.error(), errc::conflict);

  EXPECT_EQ(repo_->find_user_by_email(kAurum, " OWNER@aurum.example")->id, owner->id);
  EXPECT_EQ(repo_->find_user_by_email(kArgent, "owner@aurum.example").error(), errc::not_found);
  EXPECT_EQ(repo_->get_user(kAurum, owner->id)->role, Role::admin);
  EXPECT_EQ(repo_->get_user(kArgent, owner->id).error(), errc::not_found);
  EXPECT_EQ(repo_->find_login_user(std::nullopt, "owner@aurum.example")->tenant_id, kAurum);
  EXPECT_EQ(repo_->find_login_user(kArgent, "owner@aurum.example").error(), errc::not_found);

  // The same email in two tenants: ambiguous without a tenant.
  auto twin =
      repo_->create_user(kArgent, NewUser{"owner@aurum.example", "h2", Role::staff, {}}, &pr);
  ASSERT_TRUE(twin);
  EXPECT_EQ(repo_->find_login_user(std::nullopt, "owner@aurum.example").error(), errc::conflict);
  EXPECT_EQ(repo_->find_login_user(kArgent, "owner@aurum.example")->id, twin->id);
  EXPECT_EQ(repo_->find_login_user(kAurum, "owner@aurum.example")->id, owner->id);

  EXPECT_EQ(*repo_->user_permissions(kAurum, owner->id), permissions_for(Role::admin));
  EXPECT_EQ(*repo_->user_permissions(kArgent, twin->id), permissions_for(Role::staff));
  EXPECT_EQ(repo_->user_permissions(kArgent, owner->id).error(), errc::not_found);

  auto with2fa = repo_->set_user_totp_secret(kAurum, owner->id, std::string("JBSWY3DPEHPK3PXP"));
  ASSERT_TRUE(with2fa);
  EXPECT_TRUE(with2fa->two_factor_enabled());
  EXPECT_EQ(repo_->set_user_totp_secret(kArgent, owner->id, std::nullopt).error(), errc::not_found);
  EXPECT_EQ(repo_->set_user_totp_secret(kAurum, owner->id, std::string("not base32!")).error(),
            errc::invalid_argument);
  EXPECT_FALSE(repo_->set_user_totp_secret(kAurum, owner->id, std::nullopt)->two_factor_enabled());
  EXPECT_EQ(repo_->set_user_password_hash(kAurum, owner->id, "new")->password_hash, "new");
}

TEST_F(RepoTest, GoldPrice) {
  EXPECT_EQ(repo_->get_gold_price(kAurum).error(), errc::not_found);
  Problem pr;
  ASSERT_TRUE(repo_->put_gold_price(kAurum, 60.0, "USD", 10, &pr));
  ASSERT_TRUE(repo_->put_gold_price(kArgent, 55.5, "EUR", 11, &pr));
  auto g = repo_->put_gold_price(kAurum, 72.0, "GBP", 20, &pr);
  ASSERT_TRUE(g);
  auto back = repo_->get_gold_price(kAurum);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->currency, "GBP");
  EXPECT_DOUBLE_EQ(back->price_per_gram_24k, 72.0);
  EXPECT_DOUBLE_EQ(back->price_per_gram(18), 54.0);
  EXPECT_EQ(back->updated_at, 20);
  EXPECT_EQ(repo_->get_gold_price(kArgent)->currency, "EUR");
  EXPECT_EQ(repo_->put_gold_price(kAurum, -1, "USD", 30, &pr).error(), errc::invalid_argument);
  EXPECT_EQ(repo_->get_gold_price(kAurum)->updated_at, 20);
}

TEST_F(RepoTest, Uploads) {
  const std::string bytes = std::string("binary\0data\xFF", 12);
  Problem pr;
  auto up = repo_->create_upload(kAurum, NewUpload{"Récépissé 'x'.pdf", "application/pdf", bytes},
                                 kNow, &pr);
  ASSERT_TRUE(up) << pr.message;
  EXPECT_EQ(up->size, 12);
  EXPECT_EQ(up->sha256, crypto::sha256_hex(bytes));
  EXPECT_EQ(up->filename, "Récépissé 'x'.pdf");
  auto path = repo_->upload_path(kAurum, up->id);
  ASSERT_TRUE(path);
  std::ifstream in(*path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), bytes);
  EXPECT_EQ(repo_->get_upload(kAurum, up->id)->sha256, up->sha256);

  EXPECT_EQ(repo_->create_upload(kAurum, NewUpload{"../../etc/passwd", "", "x"}, kNow, &pr).error(),
            errc::invalid_argument);
  EXPECT_EQ(repo_->create_upload(kAurum, NewUpload{"", "", "x"}, kNow, &pr).error(),
            errc::invalid_argument);
  auto empty = repo_->create_upload(kAurum, NewUpload{"empty.bin", "", ""}, kNow, &pr);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->content_type, "application/octet-stream");

  Options small = options_;
  small.database_path = (dir_ / "small" / "s.db").string();
  small.upload_limit_bytes = 4;
  auto repo2 = SqliteRepository::open(small);
  ASSERT_TRUE(repo2);
  ASSERT_TRUE((*repo2)->create_tenant(kAurum, "Aurum"));
  auto big = (*repo2)->create_upload(kAurum, NewUpload{"big.bin", "", "12345"}, kNow, &pr);
  ASSERT_FALSE(big);
  EXPECT_NE(pr.message.find("larger"), std::string::npos);
  EXPECT_TRUE((*repo2)->create_upload(kAurum, NewUpload{"ok.bin", "", "1234"}, kNow, &pr));
}

// Issue 14.5: the store creates its directories 0700 and its files 0600
// (database, -wal, -shm, uploads) even under umask 000: the modes are set
// explicitly, not left to the umask.
TEST(StorePrivateFiles, CreatedPrivateWhateverTheUmask) {
  namespace fs = std::filesystem;
  auto root = jeweler::store::test::make_temp_dir();
  const mode_t old = ::umask(0);
  Options o;
  o.database_path = (root / "data" / "deep" / "jeweler.db").string();
  auto r = SqliteRepository::open(o);
  ::umask(old);
  ASSERT_TRUE(r) << r.error().message();
  auto& repo = **r;
  ASSERT_TRUE(repo.create_tenant(kAurum, "Aurum"));
  const mode_t wide = ::umask(0);
  auto up = repo.create_upload(kAurum, NewUpload{"a.txt", "text/plain", "secret"}, kNow, nullptr);
  ::umask(wide);
  ASSERT_TRUE(up);
  auto mode = [](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return -1;
    return static_cast<int>(st.st_mode & 0777);
  };
  const fs::path data = root / "data";
  for (const auto& d :
       {data, data / "deep", data / "deep" / "uploads", data / "deep" / "uploads" / "t-aurum"})
    EXPECT_EQ(mode(d), 0700) << d;
  for (const char* f : {"jeweler.db", "jeweler.db-wal", "jeweler.db-shm"})
    EXPECT_EQ(mode(data / "deep" / f), 0600) << f;
  EXPECT_EQ(mode(data / "deep" / "uploads" / "t-aurum" / up->id), 0600);
  r->reset();
  fs::remove_all(root);
}
