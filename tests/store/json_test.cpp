#include <jeweler/store/json.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

using namespace jeweler::store;
namespace json = boost::json;

TEST(Json, EntitiesUseTheApiFieldNames) {
  Product p{"prd_1", "AUR-R22-0001", "Ring", 22, 4.5, 123456, 100000, 3, 2, 1700000000000};
  auto v = to_json(p).as_object();
  EXPECT_EQ(v.size(), 9u);
  EXPECT_EQ(v.at("price").to_number<double>(), 1234.56);
  EXPECT_EQ(v.at("lowStockThreshold").as_int64(), 2);
  EXPECT_FALSE(v.contains("cost"));
  EXPECT_FALSE(v.contains("cost_cents"));

  Invoice inv{"inv_1", "cus_1", {{"prd_1", 2, 1050}}, 2100, InvoiceStatus::due, 99, 5};
  auto iv = to_json(inv).as_object();
  EXPECT_EQ(iv.at("total").to_number<double>(), 21.0);
  EXPECT_EQ(iv.at("status").as_string(), "due");
  EXPECT_EQ(iv.at("dueDate").as_int64(), 99);
  EXPECT_EQ(iv.at("items").as_array()[0].as_object().at("unitPrice").to_number<double>(), 10.5);
  inv.due_date.reset();
  EXPECT_TRUE(to_json(inv).as_object().at("dueDate").is_null());

  GoldPrice g{"USD", 60.0, 1};
  auto gv = to_json(g).as_object();
  auto per = gv.at("pricePerGram").as_object();
  EXPECT_EQ(per.at("24k").to_number<double>(), 60.0);
  EXPECT_EQ(per.at("22k").to_number<double>(), 55.0);
  EXPECT_EQ(per.at("21k").to_number<double>(), 52.5);
  EXPECT_EQ(per.at("18k").to_number<double>(), 45.0);
  EXPECT_EQ(per.at("14k").to_number<double>(), 35.0);
  EXPECT_EQ(per.at("10k").to_number<double>(), 25.0);

  Kpi k{150000, 30000, 5, 250.5, 3, 2, 8, 42};
  auto kv = to_json(k).as_object();
  for (const char* f : {"todaySales", "todayProfit", "newCustomers", "goldSoldMTD",
                        "overdueInvoices", "dueCheques", "lowInventoryItems", "lastUpdated"})
    EXPECT_TRUE(kv.contains(f)) << f;
  EXPECT_EQ(kv.at("todaySales").to_number<double>(), 1500.0);
  EXPECT_EQ(kv.size(), 8u);
  // Integral amounts are written as integers, others as numbers with decimals.
  EXPECT_TRUE(kv.at("todaySales").is_int64());
  EXPECT_EQ(json::serialize(to_json(Kpi{150001, 0, 0, 0, 0, 0, 0, 0}).at("todaySales")),
            json::serialize(json::value(1500.01)));
  EXPECT_EQ(json::serialize(per.at("21k")), json::serialize(json::value(52.5)));
  EXPECT_EQ(json::serialize(per.at("22k")), "55");
}

TEST(Json, CustomerPatchIsStrict) {
  Problem pr;
  auto ok = parse_customer_patch(json::parse(R"({"name":"Zoë","notes":"x'; DROP TABLE--"})"), pr);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok->name, "Zoë");
  EXPECT_FALSE(ok->email);
  EXPECT_FALSE(parse_customer_patch(json::parse(R"({"name":5})"), pr));
  EXPECT_EQ(pr.field, "name");
  EXPECT_FALSE(parse_customer_patch(json::parse(R"({"id":"other"})"), pr));
  EXPECT_EQ(pr.field, "id");
  EXPECT_FALSE(parse_customer_patch(json::parse(R"([])"), pr));
  EXPECT_FALSE(parse_customer_patch(json::parse(R"({})"), pr));
  EXPECT_FALSE(parse_customer_patch(json::parse(R"({"email":"nope"})"), pr));
  EXPECT_EQ(pr.field, "email");
}

TEST(Json, ProductPatchNumbers) {
  Problem pr;
  auto ok = parse_product_patch(json::parse(R"({"price":1299.99,"stock":4})"), pr);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok->price_cents, 129999);
  EXPECT_EQ(*ok->stock, 4);
  EXPECT_EQ(*parse_product_patch(json::parse(R"({"price":0.1})"), pr)->price_cents, 10);
  EXPECT_EQ(*parse_product_patch(json::parse(R"({"stock":5.0})"), pr)->stock, 5);
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"price":1.001})"), pr));
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"price":-1})"), pr));
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"price":"12"})"), pr));
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"price":1e300})"), pr));
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"stock":1.5})"), pr));
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"stock":true})"), pr));
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"stock":18446744073709551615})"), pr));
  EXPECT_EQ(pr.field, "stock");
  EXPECT_FALSE(parse_product_patch(json::parse(R"({"sku":"X"})"), pr));
}

TEST(Json, NewInvoice) {
  Problem pr;
  auto ok = parse_new_invoice(
      json::parse(R"({"customerId":"cus_1","items":[{"productId":"prd_1","quantity":2}],
                      "status":"due","dueDate":1700000000000})"),
      pr);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->items.size(), 1u);
  EXPECT_EQ(ok->status, InvoiceStatus::due);
  EXPECT_EQ(*ok->due_date, 1700000000000);
  auto bad = [&](const char* text) { return !parse_new_invoice(json::parse(text), pr); };
  EXPECT_TRUE(bad(R"({"items":[{"productId":"p","quantity":1}]})"));
  EXPECT_EQ(pr.field, "customerId");
  EXPECT_TRUE(bad(R"({"customerId":"c","items":[]})"));
  EXPECT_TRUE(bad(R"({"customerId":"c","items":{}})"));
  EXPECT_TRUE(bad(R"({"customerId":"c","items":[{"productId":"p"}]})"));
  EXPECT_EQ(pr.field, "items[0].quantity");
  EXPECT_TRUE(bad(R"({"customerId":"c","items":[{"productId":"p","quantity":0}]})"));
  EXPECT_TRUE(bad(R"({"customerId":"c","items":[{"productId":"p","quantity":1,"unitPrice":1}]})"));
  EXPECT_EQ(pr.field, "items[0].unitPrice");
  EXPECT_TRUE(
      bad(R"({"customerId":"c","items":[{"productId":"p","quantity":1}],"status":"open"})"));
  EXPECT_TRUE(bad(R"({"customerId":"c","items":[{"productId":"p","quantity":1}],"total":1})"));
}

TEST(Json, GoldPriceAndPage) {
  Problem pr;
  auto g = parse_gold_price_put(json::parse(R"({"pricePerGram24k":70})"), pr, "EUR");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->currency, "EUR");
  EXPECT_EQ(g->price_per_gram_24k, 70.0);
  EXPECT_FALSE(parse_gold_price_put(json::parse(R"({"currency":"USD"})"), pr));
  EXPECT_FALSE(parse_gold_price_put(json::parse(R"({"pricePerGram24k":0})"), pr));
  EXPECT_FALSE(parse_gold_price_put(json::parse(R"({"pricePerGram24k":"70"})"), pr));

  auto p = parse_page_request(std::nullopt, std::nullopt, pr);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->limit, 50);
  EXPECT_EQ(p->offset, 0);
  p = parse_page_request("100", "20", pr);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->limit, 100);
  EXPECT_EQ(p->offset, 20);
  EXPECT_FALSE(parse_page_request("0", std::nullopt, pr));
  EXPECT_FALSE(parse_page_request("101", std::nullopt, pr));
  EXPECT_FALSE(parse_page_request("-1", std::nullopt, pr));
  EXPECT_FALSE(parse_page_request("5", "x", pr));
  EXPECT_FALSE(parse_page_request("", std::nullopt, pr));
  EXPECT_FALSE(parse_page_request("99999999999999999999", std::nullopt, pr));
}
