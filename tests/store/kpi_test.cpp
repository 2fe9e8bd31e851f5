// KPI on a small hand-made dataset with exact expected figures.
#include "store_fixture.hpp"

using namespace jeweler;
using namespace jeweler::store;
using jeweler::store::test::StoreTest;

namespace {

// 2024-03-15T13:45:10.123Z
constexpr std::int64_t kNow = 1710510310123;
constexpr std::int64_t kDayStart = 1710460800000;    // 2024-03-15T00:00Z
constexpr std::int64_t kMonthStart = 1709251200000;  // 2024-03-01T00:00Z
constexpr std::int64_t kHour = 3600LL * 1000;
constexpr std::int64_t kDay = 24 * kHour;

Dataset hand_made() {
  Dataset ds;
  Dataset::TenantData aurum{Tenant{TenantId::from("aurum"), "Aurum", 0}, {}, {}, {}, {}, {}};
  aurum.customers = {
      Customer{"c1", "Old", "", "", "", kMonthStart - 10 * kDay, kMonthStart - 10 * kDay},
      Customer{"c2", "New today", "", "", "", kDayStart + kHour, kDayStart + kHour},
      Customer{"c3", "Yesterday", "", "", "", kDayStart - 1, kDayStart - 1},
      Customer{"c4", "Future", "", "", "", kNow + 1, kNow + 1},  // not yet "today"
  };
  //                 id    sku   name  karat weight price  cost  stock thr
  aurum.products = {
      Product{"p1", "S1", "Gold 22k", 22, 10.0, 100000, 80000, 5, 2, 0},
      Product{"p2", "S2", "Gold 18k", 18, 2.5, 25000, 15000, 1, 3, 0},  // low
      Product{"p3", "S3", "Silver", 0, 50.0, 8000, 2000, 2, 2, 0},      // low (<=)
  };
  auto inv = [](std::string id, std::int64_t at, std::vector<InvoiceItem> items, InvoiceStatus st,
                std::optional<std::int64_t> due) {
    std::int64_t total = 0;
    for (auto& i : items) total += i.quantity * i.unit_price_cents;
    return Invoice{std::move(id), "c1", std::move(items), total, st, due, at};
  };
  aurum.invoices = {
      // today: sales 208000, profit 2*20000 + 6000 = 46000, gold 20 g (silver excluded)
      inv("i1", kDayStart + 9 * kHour, {{"p1", 2, 100000}, {"p3", 1, 8000}}, InvoiceStatus::paid,
          {}),
      // today: sales 25000, profit 10000, gold 2.5 g; due in 3 days → due cheque
      inv("i2", kDayStart + 12 * kHour, {{"p2", 1, 25000}}, InvoiceStatus::due, kNow + 3 * kDay),
      // yesterday: gold 10 g MTD; overdue by 1 ms
      inv("i3", kDayStart - kHour, {{"p1", 1, 100000}}, InvoiceStatus::due, kNow - 1),
      // last month's last millisecond: no MTD gold; due exactly now + 7 d → not counted
      inv("i4", kMonthStart - 1, {{"p1", 1, 100000}}, InvoiceStatus::due, kNow + 7 * kDay),
      // first millisecond of the month: gold 2 * 2.5 = 5 g
      inv("i5", kMonthStart, {{"p2", 2, 25000}}, InvoiceStatus::paid, {}),
      // two days ago, silver: due within the week (last ms) → due cheque
      inv("i6", kDayStart - 2 * kDay, {{"p3", 1, 8000}}, InvoiceStatus::due, kNow + 7 * kDay - 1),
      // paid with a past due date: never overdue
      inv("i7", kDayStart - 3 * kDay, {{"p3", 1, 8000}}, InvoiceStatus::paid, kNow - kDay),
      // created after "now" (clock skew): not in today's figures
      inv("i8", kNow + 1, {{"p1", 1, 100000}}, InvoiceStatus::paid, {}),
  };
  ds.tenants.push_back(std::move(aurum));

  Dataset::TenantData argent{Tenant{TenantId::from("argent"), "Argent", 0}, {}, {}, {}, {}, {}};
  argent.customers = {Customer{"x1", "Argent buyer", "", "", "", kDayStart + 1, kDayStart + 1}};
  argent.products = {Product{"q1", "Q1", "Gold 24k", 24, 100.0, 999900, 1, 0, 0, 0}};
  argent.invoices = {Invoice{
      "j1", "x1", {{"q1", 1, 999900}}, 999900, InvoiceStatus::due, kNow - 5, kDayStart + 2}};
  ds.tenants.push_back(std::move(argent));
  return ds;
}

}  // namespace

TEST_F(StoreTest, KpiExactFiguresOnHandMadeData) {
  ASSERT_TRUE(repo_->import(hand_made()));
  auto k = repo_->compute_kpi(TenantId::from("aurum"), kNow);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->today_sales_cents, 233000);
  EXPECT_EQ(k->today_profit_cents, 56000);
  EXPECT_EQ(k->new_customers, 1);
  EXPECT_DOUBLE_EQ(k->gold_sold_mtd_grams, 37.5);
  EXPECT_EQ(k->overdue_invoices, 1);
  EXPECT_EQ(k->due_cheques, 2);
  EXPECT_EQ(k->low_inventory_items, 2);
  EXPECT_EQ(k->last_updated, kNow);

  auto a = repo_->compute_kpi(TenantId::from("argent"), kNow);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->today_sales_cents, 999900);
  EXPECT_EQ(a->today_profit_cents, 999899);
  EXPECT_EQ(a->new_customers, 1);
  EXPECT_DOUBLE_EQ(a->gold_sold_mtd_grams, 100.0);
  EXPECT_EQ(a->overdue_invoices, 1);
  EXPECT_EQ(a->due_cheques, 0);
  EXPECT_EQ(a->low_inventory_items, 1);

  auto none = repo_->compute_kpi(TenantId::from("nobody"), kNow);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->today_sales_cents, 0);
  EXPECT_EQ(none->low_inventory_items, 0);
}

TEST_F(StoreTest, KpiFollowsNewInvoicesAndProductChanges) {
  ASSERT_TRUE(repo_->import(hand_made()));
  const auto aurum = TenantId::from("aurum");
  Problem pr;
  // Sell 3 of p1 (stock 5 → 2 = threshold → low) as a due invoice in 2 days.
  auto inv = repo_->create_invoice(
      aurum, NewInvoice{"c2", {{"p1", 3}}, InvoiceStatus::due, kNow + 2 * kDay}, kNow, &pr);
  ASSERT_TRUE(inv) << pr.message;
  auto k = repo_->compute_kpi(aurum, kNow);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->today_sales_cents, 233000 + 300000);
  EXPECT_EQ(k->today_profit_cents, 56000 + 60000);
  EXPECT_DOUBLE_EQ(k->gold_sold_mtd_grams, 37.5 + 30.0);
  EXPECT_EQ(k->due_cheques, 3);
  EXPECT_EQ(k->low_inventory_items, 3);
  // Restock p2: no longer low.
  ProductPatch patch;
  patch.stock = 10;
  ASSERT_TRUE(repo_->update_product(aurum, "p2", patch, kNow, &pr));
  EXPECT_EQ(repo_->compute_kpi(aurum, kNow)->low_inventory_items, 2);
  // Next day: today's figures restart, month-to-date does not.
  auto tomorrow = repo_->compute_kpi(aurum, kDayStart + kDay + kHour);
  ASSERT_TRUE(tomorrow);
  EXPECT_EQ(tomorrow->today_sales_cents, 0);
  EXPECT_EQ(tomorrow->today_profit_cents, 0);
  EXPECT_EQ(tomorrow->new_customers, 0);
  // Month to date now also counts i8 (created at kNow + 1): 10 g more.
  EXPECT_DOUBLE_EQ(tomorrow->gold_sold_mtd_grams, 37.5 + 30.0 + 10.0);
}

// Grams are summed as doubles; the figure is given to the milligram, without
// the drift of the sum (0.1 + 0.2 = 0.30000000000000004).
TEST_F(StoreTest, KpiGoldGramsHaveNoFloatingPointDrift) {
  Dataset ds;
  Dataset::TenantData t{Tenant{TenantId::from("aurum"), "Aurum", 0}, {}, {}, {}, {}, {}};
  t.customers = {Customer{"c1", "Buyer", "", "", "", kMonthStart, kMonthStart}};
  t.products = {Product{"p1", "S1", "Ring", 18, 0.1, 1000, 500, 9, 0, 0},
                Product{"p2", "S2", "Chain", 18, 0.2, 1000, 500, 9, 0, 0}};
  t.invoices = {
      Invoice{"i1", "c1", {{"p1", 1, 1000}}, 1000, InvoiceStatus::paid, {}, kDayStart + 1},
      Invoice{"i2", "c1", {{"p2", 1, 1000}}, 1000, InvoiceStatus::paid, {}, kDayStart + 2}};
  ds.tenants.push_back(std::move(t));
  ASSERT_TRUE(repo_->import(ds));
  auto k = repo_->compute_kpi(TenantId::from("aurum"), kNow);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->gold_sold_mtd_grams, 0.3);
}
