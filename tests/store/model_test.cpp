#include <jeweler/store/model.hpp>

#include <gtest/gtest.h>

#include <algorithm>

using namespace jeweler::store;

TEST(Validation, Utf8) {
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("Zoë Müller 💍 金"));
  EXPECT_FALSE(valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(utf8_length("Zoë💍"), 4u);
}

TEST(Validation, Email) {
  EXPECT_TRUE(valid_email("owner@aurum.example"));
  EXPECT_TRUE(valid_email("first.last+tag@sub.example.co"));
  EXPECT_FALSE(valid_email("no-at.example"));
  EXPECT_FALSE(valid_email("a@b"));
  EXPECT_FALSE(valid_email("a@@b.example"));
  EXPECT_FALSE(valid_email("a b@c.example"));
  EXPECT_FALSE(valid_email("@c.example"));
  EXPECT_FALSE(valid_email("a@.example"));
  EXPECT_FALSE(valid_email("x'; DROP TABLE users;--@c.example"));
  EXPECT_FALSE(valid_email(std::string(250, 'a') + "@c.example"));
  EXPECT_EQ(normalize_email("  Owner@Aurum.EXAMPLE "), "owner@aurum.example");
}

TEST(Validation, Customer) {
  EXPECT_FALSE(validate(NewCustomer{"Ana", "", "", ""}));
  EXPECT_FALSE(validate(NewCustomer{"Zoë 💍", "z@e.example", "+1 (555) 010-2030", "line1\nline2"}));
  EXPECT_EQ(validate(NewCustomer{"", "", "", ""})->field, "name");
  EXPECT_EQ(validate(NewCustomer{"   ", "", "", ""})->field, "name");
  EXPECT_EQ(validate(NewCustomer{std::string(201, 'x'), "", "", ""})->field, "name");
  EXPECT_FALSE(validate(NewCustomer{std::string(200, 'x'), "", "", ""}));
  EXPECT_EQ(validate(NewCustomer{"a\x01", "", "", ""})->field, "name");
  EXPECT_EQ(validate(NewCustomer{"a", "bad", "", ""})->field, "email");
  EXPECT_EQ(validate(NewCustomer{"a", "", "555-CALL", ""})->field, "phone");
  EXPECT_EQ(validate(NewCustomer{"a", "", "", std::string(2001, 'n')})->field, "notes");
  EXPECT_EQ(validate(CustomerPatch{})->field, "");
  CustomerPatch p;
  p.notes = "ok";
  EXPECT_FALSE(validate(p));
}

TEST(Validation, ProductAndInvoice) {
  ProductPatch pp;
  pp.stock = -1;
  EXPECT_EQ(validate(pp)->field, "stock");
  pp.stock = 5;
  pp.price_cents = limits::price_max_cents + 1;
  EXPECT_EQ(validate(pp)->field, "price");
  pp.price_cents = 0;
  EXPECT_FALSE(validate(pp));

  NewInvoice inv{"cus_1", {{"prd_1", 1}}, InvoiceStatus::paid, std::nullopt};
  EXPECT_FALSE(validate(inv));
  inv.items.push_back({"prd_1", 2});
  EXPECT_EQ(validate(inv)->field, "items[1].productId");
  inv.items.back().product_id = "prd_2";
  inv.items.back().quantity = 0;
  EXPECT_EQ(validate(inv)->field, "items[1].quantity");
  inv.items.clear();
  EXPECT_EQ(validate(inv)->field, "items");
  inv.items.assign(101, NewInvoiceItem{"p", 1});
  EXPECT_EQ(validate(inv)->field, "items");
  NewInvoice bad_customer{"x' OR '1'='1", {{"prd_1", 1}}, InvoiceStatus::paid, std::nullopt};
  EXPECT_EQ(validate(bad_customer)->field, "customerId");
}

TEST(Validation, GoldPriceAndPage) {
  EXPECT_FALSE(validate_gold_price(65.4, "USD"));
  EXPECT_EQ(validate_gold_price(0, "USD")->field, "pricePerGram24k");
  EXPECT_EQ(validate_gold_price(-1, "USD")->field, "pricePerGram24k");
  EXPECT_EQ(validate_gold_price(65.4, "usd")->field, "currency");
  EXPECT_EQ(validate_gold_price(65.4, "EURO")->field, "currency");
  EXPECT_EQ(validate(PageRequest{0, 0})->field, "limit");
  EXPECT_EQ(validate(PageRequest{101, 0})->field, "limit");
  EXPECT_EQ(validate(PageRequest{10, -1})->field, "offset");
  EXPECT_FALSE(validate(PageRequest{100, 5}));
}

TEST(Permissions, PerRole) {
  const auto& admin = permissions_for(Role::admin);
  const auto& staff = permissions_for(Role::staff);
  auto has = [](const std::vector<std::string>& v, const char* p) {
    return std::find(v.begin(), v.end(), p) != v.end();
  };
  EXPECT_TRUE(has(admin, "products:write"));
  EXPECT_TRUE(has(admin, "gold-price:write"));
  EXPECT_TRUE(has(admin, "admin:cache"));
  EXPECT_FALSE(has(staff, "products:write"));
  EXPECT_FALSE(has(staff, "gold-price:write"));
  EXPECT_FALSE(has(staff, "admin:sessions"));
  EXPECT_TRUE(has(staff, "customers:write"));
  EXPECT_TRUE(has(staff, "invoices:write"));
  EXPECT_TRUE(std::is_sorted(admin.begin(), admin.end()));
  for (const auto& p : staff) EXPECT_TRUE(has(admin, p.c_str())) << p;
  EXPECT_EQ(parse_role("admin"), Role::admin);
  EXPECT_FALSE(parse_role("root"));
}

TEST(KpiWindow, UtcDayAndMonth) {
  // 2024-03-15T13:45:10.123Z
  const std::int64_t now = 1710510310123;
  auto w = KpiWindow::at(now);
  EXPECT_EQ(w.day_start, 1710460800000);    // 2024-03-15T00:00:00Z
  EXPECT_EQ(w.month_start, 1709251200000);  // 2024-03-01T00:00:00Z
  EXPECT_EQ(w.due_soon_end, now + 7LL * 86400000);
}
