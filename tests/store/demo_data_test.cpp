#include "store_fixture.hpp"

#include <jeweler/store/crypto.hpp>
#include <jeweler/store/demo_data.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

using namespace jeweler;
using namespace jeweler::store;
using jeweler::store::test::StoreTest;

namespace {
constexpr std::int64_t kNow = 1710510310123;  // 2024-03-15T13:45:10.123Z
}

TEST_F(StoreTest, DemoDataCountsLoginsAndKpi) {
  auto t0 = std::chrono::steady_clock::now();
  auto loaded = load_demo_data(*repo_, kNow);
  auto spent = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_TRUE(*loaded);
  std::printf(
      "[ info ] demo data loaded in %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(spent).count()));

  const auto aurum = TenantId::from("aurum"), argent = TenantId::from("argent");
  EXPECT_EQ(repo_->get_tenant(aurum)->id, aurum);
  EXPECT_EQ(repo_->list_customers(aurum, PageRequest{1, 0})->total, 400);
  EXPECT_EQ(repo_->list_products(aurum, PageRequest{1, 0})->total, 300);
  EXPECT_EQ(repo_->list_invoices(aurum, PageRequest{1, 0})->total, 6000);
  EXPECT_EQ(repo_->list_customers(argent, PageRequest{1, 0})->total, 250);
  EXPECT_EQ(repo_->list_products(argent, PageRequest{1, 0})->total, 187);
  EXPECT_EQ(repo_->list_invoices(argent, PageRequest{1, 0})->total, 3750);
  EXPECT_EQ(repo_->get_gold_price(aurum)->currency, "USD");
  EXPECT_EQ(repo_->get_gold_price(argent)->currency, "EUR");

  struct Login {
    const char* tenant;
    const char* email;
    const char* password;
    Role role;
    bool totp;
  };
  const Login logins[] = {
      {"aurum", "owner@aurum.example", "aurum-owner-pw", Role::admin, false},
      {"aurum", "clerk@aurum.example", "aurum-clerk-pw", Role::staff, false},
      {"aurum", "secure@aurum.example", "aurum-secure-pw", Role::staff, true},
      {"argent", "owner@argent.example", "argent-owner-pw", Role::admin, false},
  };
  for (const auto& l : logins) {
    auto u = repo_->find_login_user(std::nullopt, l.email);
    ASSERT_TRUE(u) << l.email;
    EXPECT_EQ(u->tenant_id.str(), l.tenant);
    EXPECT_EQ(u->role, l.role);
    EXPECT_EQ(u->password_hash.rfind("$argon2id$", 0), 0u);
    EXPECT_TRUE(crypto::verify_password(l.password, u->password_hash)) << l.email;
    EXPECT_FALSE(crypto::verify_password(std::string(l.password) + "x", u->password_hash));
    EXPECT_EQ(u->two_factor_enabled(), l.totp);
    if (l.totp) {
      EXPECT_EQ(*u->totp_secret, "JBSWY3DPEHPK3PXP");
    }
  }
  // Wrong tenant: not found.
  EXPECT_EQ(repo_->find_login_user(argent, "owner@aurum.example").error(), errc::not_found);

  // Every invoice references its tenant's rows and totals add up.
  auto page = repo_->list_invoices(aurum, PageRequest{100, 0});
  ASSERT_TRUE(page);
  for (const auto& inv : page->items) {
    std::int64_t sum = 0;
    for (const auto& it : inv.items) sum += it.quantity * it.unit_price_cents;
    EXPECT_EQ(sum, inv.total_cents);
    EXPECT_TRUE(repo_->get_customer(aurum, inv.customer_id));
    EXPECT_EQ(repo_->get_customer(argent, inv.customer_id).error(), errc::not_found);
    EXPECT_LE(inv.created_at, kNow);
  }

  // Informational timing (no assertion): median of 21 computations.
  std::vector<long long> us;
  Result<Kpi> k = errc::internal;
  for (int i = 0; i < 21; ++i) {
    t0 = std::chrono::steady_clock::now();
    k = repo_->compute_kpi(aurum, kNow);
    us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count());
  }
  std::sort(us.begin(), us.end());
  std::printf("[ info ] KPI (aurum, 6000 invoices): min %lld us, median %lld us, max %lld us\n",
              us.front(), us[us.size() / 2], us.back());
  ASSERT_TRUE(k);
  EXPECT_GT(k->today_sales_cents, 0);
  EXPECT_GT(k->today_profit_cents, 0);
  EXPECT_LT(k->today_profit_cents, k->today_sales_cents);
  EXPECT_EQ(k->new_customers, 3);
  EXPECT_GT(k->gold_sold_mtd_grams, 0);
  EXPECT_GT(k->overdue_invoices, 0);
  EXPECT_GT(k->due_cheques, 0);
  EXPECT_GT(k->low_inventory_items, 0);

  // A second start with --demo-data leaves the data as it is.
  auto again = load_demo_data(*repo_, kNow + 1000);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_EQ(repo_->list_invoices(aurum, PageRequest{1, 0})->total, 6000);
}

TEST(DemoData, DeterministicForTheSameNow) {
  DemoSize small{20, 10, 50};
  auto a = make_demo_dataset(kNow, small), b = make_demo_dataset(kNow, small);
  ASSERT_EQ(a.tenants.size(), 2u);
  ASSERT_EQ(a.tenants[0].invoices.size(), b.tenants[0].invoices.size());
  for (std::size_t i = 0; i < a.tenants[0].invoices.size(); ++i) {
    EXPECT_EQ(a.tenants[0].invoices[i].id, b.tenants[0].invoices[i].id);
    EXPECT_EQ(a.tenants[0].invoices[i].total_cents, b.tenants[0].invoices[i].total_cents);
  }
  EXPECT_EQ(a.tenants[1].customers[3].name, b.tenants[1].customers[3].name);
  std::set<std::string> ids;
  for (const auto& t : a.tenants)
    for (const auto& c : t.customers) ids.insert(c.id);
  EXPECT_EQ(ids.size(), a.tenants[0].customers.size() + a.tenants[1].customers.size());
}

TEST_F(StoreTest, DemoDataNotLoadedIntoANonEmptyStore) {
  ASSERT_TRUE(repo_->create_tenant(TenantId::from("acme"), "Acme"));
  auto r = load_demo_data(*repo_, kNow, DemoSize{10, 10, 20});
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(repo_->get_tenant(TenantId::from("aurum")).error(), errc::not_found);
}
