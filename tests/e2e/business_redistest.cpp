// End-to-end: conventions (API.md section 1), business resources, caching and
// tenant isolation (section 4), admin routes, uploads and bad inputs on every
// write route, against the real jeweler-server with the demo data.
#include "e2e_support.hpp"

#include <cmath>

using namespace e2e;

namespace {

class BusinessE2E : public SharedStackTest<BusinessE2E> {
 public:
  static Env settings() { return {{"UPLOAD_LIMIT_BYTES", "65536"}}; }
  static void after_start() {
    owner_ = token_of(port(), kOwner);
    clerk_ = token_of(port(), kClerk);
    argent_ = token_of(port(), kArgent);
  }

 protected:
  void SetUp() override {
    SharedStackTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_FALSE(owner_.empty());
    ASSERT_FALSE(clerk_.empty());
    ASSERT_FALSE(argent_.empty());
  }
  static HttpResponse get(const std::string& t, const std::string& token) {
    return call(port(), "GET", t, token);
  }
  /// Clears the aurum cache (admin route) so that the next read is a MISS.
  static void clear_cache(const std::string& admin = owner_) {
    auto r = call(port(), "DELETE", "/api/admin/cache", admin);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  static json::object first_item(const std::string& listing, const std::string& token) {
    auto o = obj(get(listing + "?limit=100", token));
    for (const auto& v : o["items"].as_array()) return v.as_object();
    ADD_FAILURE() << "empty listing " << listing;
    return {};
  }
  /// A product with at least `stock` pieces.
  static json::object product_with_stock(std::int64_t stock, const std::string& token) {
    auto o = obj(get("/api/products?limit=100", token));
    for (const auto& v : o["items"].as_array())
      if (num(v.as_object(), "stock") >= stock) return v.as_object();
    ADD_FAILURE() << "no product with stock " << stock;
    return {};
  }
  static std::string owner_, clerk_, argent_;
};
std::string BusinessE2E::owner_, BusinessE2E::clerk_, BusinessE2E::argent_;

void expect_hit(const HttpResponse& r, bool hit) {
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-cache"), hit ? "HIT" : "MISS") << r.body;
}

// --- conventions -------------------------------------------------------------------

TEST_F(BusinessE2E, ConventionsOnEveryResponse) {
  for (auto [tok, target] :
       std::vector<std::pair<std::string, std::string>>{{clerk_, "/api/customers"},
                                                        {clerk_, "/api/dashboard/kpi"},
                                                        {clerk_, "/api/customers/cus_nope"},
                                                        {"", "/api/customers"},
                                                        {clerk_, "/api/admin/cache/stats"}}) {
    SCOPED_TRACE(target);
    auto r = get(target, tok);
    EXPECT_EQ(r.header("cache-control"), "no-store");
    EXPECT_EQ(r.header("content-type"), "application/json; charset=utf-8");
    EXPECT_FALSE(r.header("x-request-id").empty());
  }
  // X-Request-Id: echoed when sane, otherwise generated.
  auto r = call(port(), "GET", "/api/customers?limit=1", clerk_, {},
                {{"X-Request-Id", "trace-abc.123_XYZ"}});
  EXPECT_EQ(r.header("x-request-id"), "trace-abc.123_XYZ");
  std::string max(128, 'a');
  EXPECT_EQ(
      call(port(), "GET", "/health/live", {}, {}, {{"X-Request-Id", max}}).header("x-request-id"),
      max);
  for (std::string bad : {std::string(129, 'a'), std::string("has space"), std::string("a/b"),
                          std::string("x\"y"), std::string("<script>")}) {
    auto e = call(port(), "GET", "/api/customers/cus_nope", clerk_, {}, {{"X-Request-Id", bad}});
    auto id = e.header("x-request-id");
    EXPECT_NE(id, bad);
    EXPECT_FALSE(id.empty());
    EXPECT_API_ERROR(e, 404, "not_found");
  }
  // Errors echo the request id in the body.
  auto e = call(port(), "GET", "/api/customers/cus_nope", clerk_, {}, {{"X-Request-Id", "req-42"}});
  EXPECT_API_ERROR(e, 404, "not_found");
  EXPECT_EQ(str(obj(e), "requestId"), "req-42");
}

TEST_F(BusinessE2E, BadPathParametersAre4xx) {
  for (std::string t : std::vector<std::string>{
           "/api/customers/%ZZ", "/api/customers/%", "/api/customers/%00",
           "/api/products/..%2F..%2Fetc%2Fpasswd", "/api/invoices/%E2%82",
           "/api/customers/" + std::string(300, 'x'), "/api/products/' OR 1=1 --",
           "/api/invoices/*", "/api/customers/%2A"}) {
    SCOPED_TRACE(t);
    auto r = get(t, clerk_);
    EXPECT_GE(r.status, 400) << r.body;
    EXPECT_LT(r.status, 500) << r.body;
    if (r.status != 400) {
      EXPECT_EQ(r.status, 404);
    }
  }
  auto r = call(port(), "PUT", "/api/customers/%ZZ", clerk_, R"({"name":"x"})");
  EXPECT_GE(r.status, 400);
  EXPECT_LT(r.status, 500);
}

// --- listings ----------------------------------------------------------------------

TEST_F(BusinessE2E, ListingsPageAndValidate) {
  for (std::string l : {"/api/customers", "/api/products", "/api/invoices"}) {
    SCOPED_TRACE(l);
    auto r = get(l, clerk_);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.header("x-cache").empty()) << "listings are not cached";
    auto o = obj(r);
    ASSERT_TRUE(o.contains("items") && o.at("items").is_array()) << r.body;
    auto total = num(o, "total");
    ASSERT_GE(total, 1);
    EXPECT_EQ(static_cast<std::int64_t>(o.at("items").as_array().size()),
              std::min<std::int64_t>(total, 50));
    auto two = obj(get(l + "?limit=2", clerk_));
    ASSERT_EQ(two.at("items").as_array().size(), std::min<std::size_t>(2, total));
    EXPECT_EQ(num(two, "total"), total);
    if (total >= 2) {
      auto second = obj(get(l + "?limit=1&offset=1", clerk_));
      ASSERT_EQ(second.at("items").as_array().size(), 1u);
      EXPECT_EQ(ser(second.at("items").as_array()[0]), ser(two.at("items").as_array()[1]));
    }
    auto past = obj(get(l + "?offset=" + std::to_string(total + 10), clerk_));
    EXPECT_TRUE(past.at("items").as_array().empty());
    EXPECT_EQ(num(past, "total"), total);
    EXPECT_EQ(get(l + "?limit=100", clerk_).status, 200);
    EXPECT_EQ(get(l + "?limit=1", clerk_).status, 200);
    for (std::string q :
         {"limit=0", "limit=101", "limit=abc", "limit=-1", "limit=", "limit=1.5", "offset=-1",
          "offset=abc", "limit=99999999999999999999", "limit=%27%3B%20DROP"}) {
      SCOPED_TRACE(q);
      auto e = get(l + "?" + q, clerk_);  // a query parameter, not JSON: 400 (API.md section 1)
      EXPECT_API_ERROR(e, 400, "bad_request");
      EXPECT_TRUE(e.body.find("\"field\":\"limit\"") != std::string::npos ||
                  e.body.find("\"field\":\"offset\"") != std::string::npos)
          << e.body;
    }
  }
}

// --- caching ---------------------------------------------------------------------------

TEST_F(BusinessE2E, KpiMissThenHit) {
  clear_cache();
  auto a = get("/api/dashboard/kpi", clerk_);
  expect_hit(a, false);
  auto o = obj(a);
  for (const char* k : {"todaySales", "todayProfit", "newCustomers", "goldSoldMTD",
                        "overdueInvoices", "dueCheques", "lowInventoryItems", "lastUpdated"})
    EXPECT_TRUE(o.contains(k)) << k << " in " << a.body;
  auto b = get("/api/dashboard/kpi", owner_);  // one tenant-wide entry
  expect_hit(b, true);
  EXPECT_EQ(a.body, b.body);
}

TEST_F(BusinessE2E, PermissionsMissThenHit) {
  clear_cache();
  auto a = get("/api/auth/permissions", clerk_);
  expect_hit(a, false);
  auto o = obj(a);
  EXPECT_EQ(str(o, "role"), "staff");
  EXPECT_TRUE(o.contains("permissions")) << a.body;
  expect_hit(get("/api/auth/permissions", clerk_), true);
  // Per user: the owner's are their own.
  auto w = get("/api/auth/permissions", owner_);
  expect_hit(w, false);
  EXPECT_EQ(str(obj(w), "role"), "admin");
  EXPECT_NE(w.body, a.body);
}

TEST_F(BusinessE2E, EntitiesMissThenHit) {
  auto c = first_item("/api/customers", clerk_);
  auto p = first_item("/api/products", clerk_);
  auto i = first_item("/api/invoices", clerk_);
  clear_cache();
  for (std::string t : {"/api/customers/" + str(c, "id"), "/api/products/" + str(p, "id"),
                        "/api/invoices/" + str(i, "id")}) {
    SCOPED_TRACE(t);
    auto a = get(t, clerk_);
    expect_hit(a, false);
    auto b = get(t, clerk_);
    expect_hit(b, true);
    EXPECT_EQ(a.body, b.body);
    EXPECT_EQ(str(obj(a), "id"), t.substr(t.rfind('/') + 1));
  }
  auto co = obj(get("/api/customers/" + str(c, "id"), clerk_));
  for (const char* k : {"id", "name", "email", "phone", "notes", "createdAt", "updatedAt"})
    EXPECT_TRUE(co.contains(k)) << k;
  auto po = obj(get("/api/products/" + str(p, "id"), clerk_));
  for (const char* k : {"id", "sku", "name", "karat", "weightGrams", "price", "stock",
                        "lowStockThreshold", "updatedAt"})
    EXPECT_TRUE(po.contains(k)) << k;
  auto io = obj(get("/api/invoices/" + str(i, "id"), clerk_));
  for (const char* k : {"id", "customerId", "items", "total", "status", "dueDate", "createdAt"})
    EXPECT_TRUE(io.contains(k)) << k;
  // Unknown ids are 404 (and not cached as something else).
  EXPECT_API_ERROR(get("/api/customers/cus_aaaaaaaaaaaaaaaaaaaaaaaaaa", clerk_), 404, "not_found");
  EXPECT_API_ERROR(get("/api/products/prd_aaaaaaaaaaaaaaaaaaaaaaaaaa", clerk_), 404, "not_found");
  EXPECT_API_ERROR(get("/api/invoices/inv_aaaaaaaaaaaaaaaaaaaaaaaaaa", clerk_), 404, "not_found");
}

TEST_F(BusinessE2E, PutCustomerInvalidatesAndStoresVerbatim) {
  auto c = first_item("/api/customers", clerk_);
  const std::string t = "/api/customers/" + str(c, "id");
  (void)get(t, clerk_);
  expect_hit(get(t, clerk_), true);
  const std::string sql = "Robert'); DROP TABLE customers;--";
  const std::string uni = "Zoë Ångström — 日本語 😀 \"quoted\" \\ back";
  json::object patch{{"name", sql}, {"notes", uni}, {"phone", "+1 555 0100"}};
  auto r = call(port(), "PUT", t, clerk_, ser(patch));
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = obj(r);
  EXPECT_EQ(str(o, "name"), sql);
  EXPECT_EQ(str(o, "notes"), uni);
  EXPECT_EQ(str(o, "phone"), "+1 555 0100");
  EXPECT_GE(num(o, "updatedAt"), num(c, "updatedAt"));
  auto after = get(t, clerk_);
  expect_hit(after, false);
  EXPECT_EQ(str(obj(after), "name"), sql);
  EXPECT_EQ(str(obj(after), "notes"), uni);
  expect_hit(get(t, owner_), true);
  // The table is still there; the listing shows the stored value.
  auto list = get("/api/customers?limit=100", clerk_);
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find("DROP TABLE customers"), std::string::npos);
  // An admin may write customers too.
  EXPECT_EQ(call(port(), "PUT", t, owner_, R"({"email":"new.address@example.com"})").status, 200);
  EXPECT_EQ(str(obj(get(t, clerk_)), "email"), "new.address@example.com");
}

TEST_F(BusinessE2E, PutCustomerRefusalsStoreNothing) {
  auto c = first_item("/api/customers", clerk_);
  const std::string t = "/api/customers/" + str(c, "id");
  const std::string before = get(t, clerk_).body;
  auto bv = obj(get(t, clerk_));
  EXPECT_API_ERROR(call(port(), "PUT", t, clerk_, "{\"name\":"), 400, "invalid_json");
  EXPECT_API_ERROR(call(port(), "PUT", t, clerk_, "name=x"), 400, "invalid_json");
  for (std::string body :
       {std::string("[]"), std::string("\"x\""), std::string("null"), std::string("42"),
        std::string(R"({"name":5})"), std::string(R"({"name":null})"),
        std::string(R"({"name":["a"]})"), std::string(R"({"name":{"x":1}})"),
        std::string(R"({"name":"ok","id":"cus_hijack"})"),
        std::string(R"({"name":"ok","tenantId":"argent"})"),
        std::string(R"({"email":"not an email"})"),
        ser(json::object{{"name", "ok"}, {"notes", std::string(3000, 'n')}}),
        ser(json::object{{"name", std::string(300, 'x')}}),
        ser(json::object{{"name", std::string(200000, 'x')}}),
        ser(json::object{{"phone", std::string(100, '5')}})}) {
    SCOPED_TRACE(body.substr(0, 80));
    auto r = call(port(), "PUT", t, clerk_, body);
    EXPECT_API_ERROR(r, 422, "validation_failed");
  }
  auto now = obj(get(t, clerk_));
  EXPECT_EQ(str(now, "name"), str(bv, "name"));
  EXPECT_EQ(str(now, "notes"), str(bv, "notes"));
  EXPECT_EQ(str(now, "email"), str(bv, "email"));
  EXPECT_EQ(num(now, "updatedAt"), num(bv, "updatedAt"));
  // Unknown id: 404.
  EXPECT_API_ERROR(call(port(), "PUT", "/api/customers/cus_aaaaaaaaaaaaaaaaaaaaaaaaaa", clerk_,
                        R"({"name":"x"})"),
                   404, "not_found");
}

TEST_F(BusinessE2E, DeeplyNestedAndOversizedBodiesAreRefusedCleanly) {
  auto c = first_item("/api/customers", clerk_);
  const std::string t = "/api/customers/" + str(c, "id");
  std::string deep(50000, '[');
  deep += std::string(50000, ']');
  auto r = call(port(), "PUT", t, clerk_, deep);
  EXPECT_GE(r.status, 400);
  EXPECT_LT(r.status, 500);
  std::string deep_obj;
  for (int i = 0; i < 10000; ++i) deep_obj += "{\"a\":";
  deep_obj += "1" + std::string(10000, '}');
  r = call(port(), "PUT", t, clerk_, deep_obj);
  EXPECT_GE(r.status, 400);
  EXPECT_LT(r.status, 500);
  // Body over BODY_LIMIT_BYTES (1 MiB): 413 before the body is read.
  jeweler::test::Conn conn(port());
  ASSERT_TRUE(conn.ok());
  conn.send("PUT " + t + " HTTP/1.1\r\nHost: x\r\nUser-Agent: " + kUA +
            "\r\nAuthorization: Bearer " + clerk_ +
            "\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n");
  auto big = conn.read_response(10s);
  ASSERT_TRUE(big);
  EXPECT_API_ERROR(*big, 413, "payload_too_large");
  // The server is fine afterwards.
  EXPECT_EQ(get(t, clerk_).status, 200);
}

TEST_F(BusinessE2E, ProductsAdminWritesStaffReads) {
  auto p = first_item("/api/products", clerk_);
  const std::string t = "/api/products/" + str(p, "id");
  (void)get(t, clerk_);
  expect_hit(get(t, clerk_), true);
  EXPECT_API_ERROR(call(port(), "PUT", t, clerk_, R"({"price":1})"), 403, "forbidden");
  expect_hit(get(t, clerk_), true);  // a refused write invalidates nothing
  EXPECT_EQ(str(obj(get(t, clerk_)), "name"), str(p, "name"));

  auto r = call(port(), "PUT", t, owner_,
                R"({"price":1234.56,"stock":17,"lowStockThreshold":3,"name":"Renamed Ring"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = obj(r);
  EXPECT_NEAR(dbl(o.at("price")), 1234.56, 1e-9);
  EXPECT_EQ(num(o, "stock"), 17);
  EXPECT_EQ(num(o, "lowStockThreshold"), 3);
  EXPECT_EQ(str(o, "name"), "Renamed Ring");
  EXPECT_EQ(str(o, "sku"), str(p, "sku"));
  auto after = get(t, clerk_);
  expect_hit(after, false);
  EXPECT_EQ(num(obj(after), "stock"), 17);

  for (std::string body :
       {std::string(R"({"price":-1})"), std::string(R"({"price":1.234})"),
        std::string(R"({"price":"12"})"), std::string(R"({"price":1e300})"),
        std::string(R"({"stock":-1})"), std::string(R"({"stock":1.5})"),
        std::string(R"({"stock":"3"})"), std::string(R"({"stock":99999999999})"),
        std::string(R"({"sku":"NEW-SKU"})"), std::string(R"({"karat":24})"),
        std::string(R"({"name":""})"), std::string(R"({"name":7})"), std::string("[]")}) {
    SCOPED_TRACE(body);
    EXPECT_API_ERROR(call(port(), "PUT", t, owner_, body), 422, "validation_failed");
  }
  EXPECT_API_ERROR(call(port(), "PUT", t, owner_, "{"), 400, "invalid_json");
  auto same = obj(get(t, clerk_));
  EXPECT_EQ(num(same, "stock"), 17);
  EXPECT_NEAR(dbl(same.at("price")), 1234.56, 1e-9);
  EXPECT_API_ERROR(
      call(port(), "PUT", "/api/products/prd_aaaaaaaaaaaaaaaaaaaaaaaaaa", owner_, R"({"stock":1})"),
      404, "not_found");
}

TEST_F(BusinessE2E, GoldPriceWriteThroughAndDerivedKarats) {
  clear_cache();
  auto a = get("/api/gold-price", clerk_);
  expect_hit(a, false);
  auto o = obj(a);
  EXPECT_FALSE(str(o, "currency").empty());
  ASSERT_TRUE(o.contains("pricePerGram") && o.at("pricePerGram").is_object()) << a.body;
  const auto& pp = o.at("pricePerGram").as_object();
  for (const char* k : {"24k", "22k", "21k", "18k", "14k", "10k"}) EXPECT_TRUE(pp.contains(k)) << k;
  double p24 = dbl(pp.at("24k"));
  EXPECT_NEAR(dbl(pp.at("22k")), p24 * 22 / 24, 0.0051);
  EXPECT_TRUE(o.contains("updatedAt"));
  expect_hit(get("/api/gold-price", clerk_), true);

  EXPECT_API_ERROR(call(port(), "PUT", "/api/gold-price", clerk_, R"({"pricePerGram24k":1})"), 403,
                   "forbidden");
  auto argent_before = get("/api/gold-price", argent_).body;
  auto r = call(port(), "PUT", "/api/gold-price", owner_, R"({"pricePerGram24k":80.5})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto po = obj(r).at("pricePerGram").as_object();
  const std::pair<const char*, double> karats[] = {{"24k", 24}, {"22k", 22}, {"21k", 21},
                                                   {"18k", 18}, {"14k", 14}, {"10k", 10}};
  for (auto [k, n] : karats) EXPECT_NEAR(dbl(po.at(k)), 80.5 * n / 24, 0.0051) << k;
  // Write-through: the next read is served from the cache with the new price.
  auto after = get("/api/gold-price", clerk_);
  expect_hit(after, true);
  EXPECT_NEAR(dbl(obj(after).at("pricePerGram").as_object().at("24k")), 80.5, 1e-9);
  EXPECT_NEAR(dbl(obj(after).at("pricePerGram").as_object().at("22k")), 73.79, 0.0051);
  // Another tenant's price does not move.
  auto ab = parse(HttpResponse{200, {}, argent_before});
  auto aa = obj(get("/api/gold-price", argent_));
  EXPECT_EQ(ser(aa.at("pricePerGram")), ser(ab.as_object().at("pricePerGram")));

  r = call(port(), "PUT", "/api/gold-price", owner_, R"({"pricePerGram24k":90,"currency":"EUR"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str(obj(r), "currency"), "EUR");
  for (std::string body :
       {std::string("{}"), std::string(R"({"pricePerGram24k":-5})"),
        std::string(R"({"pricePerGram24k":"80"})"), std::string(R"({"pricePerGram24k":0})"),
        std::string(R"({"pricePerGram24k":1e308})"),
        std::string(R"({"pricePerGram24k":80,"currency":"'; DROP--"})"),
        std::string(R"({"pricePerGram24k":80,"currency":5})"),
        std::string(R"({"pricePerGram24k":80,"extra":1})")}) {
    SCOPED_TRACE(body);
    EXPECT_API_ERROR(call(port(), "PUT", "/api/gold-price", owner_, body), 422,
                     "validation_failed");
  }
  EXPECT_API_ERROR(call(port(), "PUT", "/api/gold-price", owner_, "{]"), 400, "invalid_json");
  auto still = obj(get("/api/gold-price", clerk_));
  EXPECT_EQ(str(still, "currency"), "EUR");
  EXPECT_NEAR(dbl(still.at("pricePerGram").as_object().at("24k")), 90, 1e-9);
}

TEST_F(BusinessE2E, CreateInvoiceDecrementsStockAndInvalidatesKpi) {
  auto cust = first_item("/api/customers", clerk_);
  auto prod = product_with_stock(3, clerk_);
  ASSERT_FALSE(prod.empty());
  const std::string pt = "/api/products/" + str(prod, "id");
  const auto stock = num(obj(get(pt, clerk_)), "stock");
  expect_hit(get(pt, clerk_), true);
  (void)get("/api/dashboard/kpi", clerk_);
  expect_hit(get("/api/dashboard/kpi", clerk_), true);
  const auto invoices_before = num(obj(get("/api/invoices?limit=1", clerk_)), "total");

  json::object body{
      {"customerId", str(cust, "id")},
      {"items", json::array{json::object{{"productId", str(prod, "id")}, {"quantity", 2}}}},
      {"status", "due"},
      {"dueDate", unix_ms() + 86400000}};
  auto r = call(port(), "POST", "/api/invoices", clerk_, ser(body));
  ASSERT_EQ(r.status, 201) << r.body;
  auto inv = obj(r);
  EXPECT_FALSE(str(inv, "id").empty());
  EXPECT_EQ(r.header("location"), "/api/invoices/" + str(inv, "id"));
  EXPECT_EQ(str(inv, "customerId"), str(cust, "id"));
  EXPECT_EQ(str(inv, "status"), "due");
  ASSERT_TRUE(inv.contains("items") && inv.at("items").is_array());
  ASSERT_EQ(inv.at("items").as_array().size(), 1u);
  const auto& item = inv.at("items").as_array()[0].as_object();
  EXPECT_EQ(str(item, "productId"), str(prod, "id"));
  EXPECT_EQ(num(item, "quantity"), 2);
  EXPECT_NEAR(dbl(item.at("unitPrice")), dbl(prod.at("price")), 1e-6) << "price from the product";
  EXPECT_NEAR(dbl(inv.at("total")), 2 * dbl(prod.at("price")), 1e-6);

  auto p2 = get(pt, clerk_);
  expect_hit(p2, false);
  EXPECT_EQ(num(obj(p2), "stock"), stock - 2);
  expect_hit(get("/api/dashboard/kpi", clerk_), false);
  auto ig = get("/api/invoices/" + str(inv, "id"), clerk_);
  EXPECT_EQ(ig.status, 200);
  EXPECT_EQ(str(obj(ig), "id"), str(inv, "id"));
  expect_hit(get("/api/invoices/" + str(inv, "id"), clerk_), true);
  EXPECT_EQ(num(obj(get("/api/invoices?limit=1", clerk_)), "total"), invoices_before + 1);
  // Admins may create invoices too; default status is one of the two.
  json::object b2{
      {"customerId", str(cust, "id")},
      {"items", json::array{json::object{{"productId", str(prod, "id")}, {"quantity", 1}}}}};
  auto r2 = call(port(), "POST", "/api/invoices", owner_, ser(b2));
  ASSERT_EQ(r2.status, 201) << r2.body;
  auto st = str(obj(r2), "status");
  EXPECT_TRUE(st == "paid" || st == "due") << st;
  EXPECT_EQ(num(obj(get(pt, clerk_)), "stock"), stock - 3);
}

TEST_F(BusinessE2E, InvoiceConflictAndRefusalsStoreNothing) {
  auto cust = first_item("/api/customers", clerk_);
  auto prod = product_with_stock(1, clerk_);
  const std::string pid = str(prod, "id");
  const std::string pt = "/api/products/" + pid;
  const auto stock = num(obj(get(pt, clerk_)), "stock");
  const auto total = num(obj(get("/api/invoices?limit=1", clerk_)), "total");
  auto mk = [&](json::value items, json::object extra = {}) {
    json::object b = std::move(extra);
    b["customerId"] = str(cust, "id");
    b["items"] = std::move(items);
    return ser(b);
  };
  auto one = [&](const std::string& p, json::value q) {
    return json::array{json::object{{"productId", p}, {"quantity", std::move(q)}}};
  };
  auto r = call(port(), "POST", "/api/invoices", clerk_, mk(one(pid, stock + 1)));
  EXPECT_API_ERROR(r, 409, "conflict");
  // Short on the second line: nothing of the first line is kept either.
  auto other = product_with_stock(1, clerk_);
  json::array two{json::object{{"productId", pid}, {"quantity", 1}},
                  json::object{{"productId", pid}, {"quantity", stock}}};
  r = call(port(), "POST", "/api/invoices", clerk_, mk(two));
  EXPECT_TRUE(r.status == 409 || r.status == 422) << r.body;

  for (std::string body :
       {mk(one(pid, 0)), mk(one(pid, -1)), mk(one(pid, 1.5)), mk(one(pid, "2")),
        mk(one(pid, 10001)), mk(json::array{}), mk("notarray"),
        mk(one(pid, 1), {{"status", "refunded"}}), mk(one(pid, 1), {{"dueDate", "tomorrow"}}),
        mk(one(pid, 1), {{"total", 1}}),
        mk(json::array{json::object{{"productId", pid}, {"quantity", 1}, {"unitPrice", 0.01}}}),
        mk(json::array{json::object{{"quantity", 1}}}), mk(json::array{1, 2}),
        ser(json::object{{"items", one(pid, 1)}}),
        ser(json::object{{"customerId", 5}, {"items", one(pid, 1)}}), std::string("[]"),
        std::string("{}")}) {
    SCOPED_TRACE(body);
    EXPECT_API_ERROR(call(port(), "POST", "/api/invoices", clerk_, body), 422, "validation_failed");
  }
  EXPECT_API_ERROR(call(port(), "POST", "/api/invoices", clerk_, "{\"customerId\":"), 400,
                   "invalid_json");
  // Unknown customer / product, SQL in ids: refused, not stored.
  for (std::string body :
       {mk(one("prd_aaaaaaaaaaaaaaaaaaaaaaaaaa", 1)), mk(one("'; DROP TABLE products;--", 1)),
        ser(json::object{{"customerId", "cus_aaaaaaaaaaaaaaaaaaaaaaaaaa"}, {"items", one(pid, 1)}}),
        ser(json::object{{"customerId", "' OR '1'='1"}, {"items", one(pid, 1)}})}) {
    SCOPED_TRACE(body);
    auto e = call(port(), "POST", "/api/invoices", clerk_, body);
    EXPECT_GE(e.status, 400) << e.body;
    EXPECT_LT(e.status, 500) << e.body;
    EXPECT_NE(e.status, 201);
  }
  EXPECT_EQ(num(obj(get(pt, clerk_)), "stock"), stock);
  EXPECT_EQ(num(obj(get("/api/invoices?limit=1", clerk_)), "total"), total);
  EXPECT_EQ(get("/api/products?limit=1", clerk_).status, 200);
  (void)other;
}

// --- tenant isolation ------------------------------------------------------------------

TEST_F(BusinessE2E, AnotherTenantsIdsAre404) {
  auto c = first_item("/api/customers", clerk_);
  auto p = first_item("/api/products", clerk_);
  auto i = first_item("/api/invoices", clerk_);
  const std::string ct = "/api/customers/" + str(c, "id"), pt = "/api/products/" + str(p, "id"),
                    it = "/api/invoices/" + str(i, "id");
  (void)get(ct, clerk_);  // cached for aurum: must not leak either
  (void)get(pt, clerk_);
  (void)get(it, clerk_);
  for (const auto& t : {ct, pt, it}) {
    SCOPED_TRACE(t);
    EXPECT_API_ERROR(get(t, argent_), 404, "not_found");
  }
  const auto before = get(ct, clerk_).body;
  EXPECT_API_ERROR(call(port(), "PUT", ct, argent_, R"({"name":"Stolen"})"), 404, "not_found");
  EXPECT_API_ERROR(call(port(), "PUT", pt, argent_, R"({"stock":0})"), 404, "not_found");
  auto ac = first_item("/api/customers", argent_);
  json::object b{
      {"customerId", str(ac, "id")},
      {"items", json::array{json::object{{"productId", str(p, "id")}, {"quantity", 1}}}}};
  auto r = call(port(), "POST", "/api/invoices", argent_, ser(b));  // aurum's product
  EXPECT_API_ERROR(r, 404, "not_found");
  EXPECT_NE(r.body.find("items[0].productId"), std::string::npos) << r.body;
  json::object b2{{"customerId", str(c, "id")},
                  {"items", json::array{json::object{
                                {"productId", str(first_item("/api/products", argent_), "id")},
                                {"quantity", 1}}}}};
  r = call(port(), "POST", "/api/invoices", argent_, ser(b2));  // aurum's customer
  EXPECT_API_ERROR(r, 404, "not_found");
  EXPECT_NE(r.body.find("customerId"), std::string::npos) << r.body;
  EXPECT_EQ(str(obj(get(ct, clerk_)), "name"), str(obj(HttpResponse{200, {}, before}), "name"));
  EXPECT_EQ(num(obj(get(pt, clerk_)), "stock"), num(obj(get(pt, owner_)), "stock"));
  // Listings are per tenant.
  auto al = get("/api/customers?limit=100", argent_).body;
  EXPECT_EQ(al.find(str(c, "id")), std::string::npos);
  auto apl = get("/api/products?limit=100", argent_).body;
  EXPECT_EQ(apl.find(str(p, "id")), std::string::npos);
  auto ail = get("/api/invoices?limit=100", argent_).body;
  EXPECT_EQ(ail.find(str(i, "id")), std::string::npos);
}

TEST_F(BusinessE2E, AnotherTenantsAdminNeverInvalidatesOurCache) {
  auto c = first_item("/api/customers", clerk_);
  const std::string ct = "/api/customers/" + str(c, "id");
  (void)get(ct, clerk_);
  (void)get("/api/dashboard/kpi", clerk_);
  (void)get("/api/gold-price", clerk_);
  expect_hit(get(ct, clerk_), true);
  for (std::string q : {"", "?pattern=*", "?pattern=customer:*", "?pattern=*customer*",
                        "?pattern=**", "?pattern=..%2Faurum%3A*", "?pattern=aurum:*",
                        "?pattern=*aurum*", "?pattern=jeweler:*", "?pattern=%5Ba-z%5D*",
                        "?pattern=%3F*", "?pattern=*%3A*%3A*", "?pattern=kpi", "?pattern=%5C*"}) {
    SCOPED_TRACE(q);
    auto r = call(port(), "DELETE", "/api/admin/cache" + q, argent_);
    EXPECT_LT(r.status, 500) << r.body;
    if (r.status == 200) {
      EXPECT_GE(num(obj(r), "invalidated"), 0);
    } else {
      EXPECT_API_ERROR(r, 400, "bad_request");
    }
  }
  for (std::string q : std::vector<std::string>{"?pattern=%7Ba%7D", "?pattern=a%20b",
                                                "?pattern=", "?pattern=" + std::string(300, 'x')}) {
    SCOPED_TRACE(q);
    auto r = call(port(), "DELETE", "/api/admin/cache" + q, argent_);
    EXPECT_API_ERROR(r, 400, "bad_request");
  }
  expect_hit(get(ct, clerk_), true);
  expect_hit(get("/api/dashboard/kpi", clerk_), true);
  expect_hit(get("/api/gold-price", clerk_), true);
  // Our own admin's glob cannot reach argent's entries either.
  (void)get("/api/dashboard/kpi", argent_);
  expect_hit(get("/api/dashboard/kpi", argent_), true);
  ASSERT_EQ(call(port(), "DELETE", "/api/admin/cache?pattern=*", owner_).status, 200);
  expect_hit(get("/api/dashboard/kpi", argent_), true);
  expect_hit(get(ct, clerk_), false);
}

// --- admin routes ---------------------------------------------------------------------

TEST_F(BusinessE2E, AdminRoutesAreForAdminsOnly) {
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/api/admin/cache/stats"},
      {"DELETE", "/api/admin/cache"},
      {"DELETE", "/api/admin/cache?pattern=customer:*"},
      {"GET", "/api/admin/sessions/stats"},
      {"DELETE", "/api/admin/users/usr_aaaaaaaaaaaaaaaaaaaaaaaaaa/sessions"}};
  for (auto& [m, t] : routes) {
    SCOPED_TRACE(m + " " + t);
    EXPECT_API_ERROR(call(port(), m, t, clerk_), 403, "forbidden");
    EXPECT_API_ERROR(call(port(), m, t), 401, "unauthorized");
  }
  // The clerk's own sessions were not touched by the refused force logout.
  EXPECT_EQ(get("/api/auth/me", clerk_).status, 200);

  auto s = get("/api/admin/cache/stats", owner_);
  ASSERT_EQ(s.status, 200) << s.body;
  auto so = obj(s);
  for (const char* k : {"hits", "misses", "hitRatio", "sets", "invalidations", "keysHeld"})
    EXPECT_TRUE(so.contains(k)) << k << " in " << s.body;
  auto ss = get("/api/admin/sessions/stats", owner_);
  ASSERT_EQ(ss.status, 200) << ss.body;
  EXPECT_TRUE(parse(ss).is_object());

  // Tenant-wide invalidation empties our cache; pattern invalidation only matches.
  auto c = first_item("/api/customers", clerk_);
  auto p = first_item("/api/products", clerk_);
  const std::string ct = "/api/customers/" + str(c, "id"), pt = "/api/products/" + str(p, "id");
  (void)get(ct, clerk_);
  (void)get(pt, clerk_);
  auto held = num(obj(get("/api/admin/cache/stats", owner_)), "keysHeld");
  EXPECT_GE(held, 2);
  auto r = call(port(), "DELETE", "/api/admin/cache?pattern=customer:*", owner_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(num(obj(r), "invalidated"), 1);
  expect_hit(get(pt, clerk_), true);
  expect_hit(get(ct, clerk_), false);
  r = call(port(), "DELETE", "/api/admin/cache", owner_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(num(obj(r), "invalidated"), 2);
  expect_hit(get(pt, clerk_), false);
  expect_hit(get(ct, clerk_), false);
}

TEST_F(BusinessE2E, AdminForceLogoutOwnTenantOnly) {
  auto me = obj(get("/api/auth/me", clerk_));
  const std::string clerk_id = str(me.at("session").as_object(), "userId");
  ASSERT_FALSE(clerk_id.empty());
  const std::string t = "/api/admin/users/" + clerk_id + "/sessions";
  // Another tenant's admin cannot see or end our users' sessions.
  EXPECT_API_ERROR(call(port(), "DELETE", t, argent_), 404, "not_found");
  EXPECT_EQ(get("/api/auth/me", clerk_).status, 200);
  EXPECT_API_ERROR(
      call(port(), "DELETE", "/api/admin/users/usr_aaaaaaaaaaaaaaaaaaaaaaaaaa/sessions", owner_),
      404, "not_found");
  auto bad = call(port(), "DELETE", "/api/admin/users/%ZZ/sessions", owner_);
  EXPECT_GE(bad.status, 400);
  EXPECT_LT(bad.status, 500);

  auto second = token_of(port(), kClerk);
  auto r = call(port(), "DELETE", t, owner_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(num(obj(r), "destroyed"), 2);
  EXPECT_API_ERROR(get("/api/auth/me", clerk_), 401, "unauthorized");
  EXPECT_EQ(get("/api/auth/me", second).status, 401);
  EXPECT_EQ(get("/api/auth/me", owner_).status, 200);
  clerk_ = token_of(port(), kClerk);
}

TEST_F(BusinessE2E, AdminStatsArePerTenant) {
  auto a = get("/api/admin/sessions/stats", owner_);
  ASSERT_EQ(a.status, 200) << a.body;
  auto ao = obj(a);
  EXPECT_GE(num(ao, "liveSessions"), 2) << a.body;  // owner + clerk at least
  EXPECT_GE(num(ao, "usersWithSessions"), 2) << a.body;
  auto g = obj(get("/api/admin/sessions/stats", argent_));
  EXPECT_GE(num(g, "liveSessions"), 1);
  EXPECT_LT(num(g, "usersWithSessions"), num(ao, "usersWithSessions")) << "argent has one user";
  // Cache keys are counted per tenant.
  ASSERT_EQ(call(port(), "DELETE", "/api/admin/cache", argent_).status, 200);
  (void)get("/api/dashboard/kpi", clerk_);
  (void)get("/api/gold-price", clerk_);
  EXPECT_EQ(num(obj(get("/api/admin/cache/stats", argent_)), "keysHeld"), 0);
  EXPECT_GE(num(obj(get("/api/admin/cache/stats", owner_)), "keysHeld"), 2);
}

TEST_F(BusinessE2E, ProductStockChangeInvalidatesKpi) {
  auto p = product_with_stock(1, clerk_);
  (void)get("/api/dashboard/kpi", clerk_);
  expect_hit(get("/api/dashboard/kpi", clerk_), true);
  auto r = call(port(), "PUT", "/api/products/" + str(p, "id"), owner_,
                R"({"stock":0,"lowStockThreshold":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto k = get("/api/dashboard/kpi", clerk_);
  expect_hit(k, false);
  EXPECT_GE(num(obj(k), "lowInventoryItems"), 1);
  // Now out of stock: any invoice for it is a conflict.
  auto c = first_item("/api/customers", clerk_);
  json::object b{
      {"customerId", str(c, "id")},
      {"items", json::array{json::object{{"productId", str(p, "id")}, {"quantity", 1}}}}};
  EXPECT_API_ERROR(call(port(), "POST", "/api/invoices", clerk_, ser(b)), 409, "conflict");
}

TEST_F(BusinessE2E, HealthAndMetrics) {
  auto h = get("/health", "");
  ASSERT_EQ(h.status, 200) << h.body;
  auto ho = obj(h);
  EXPECT_EQ(str(ho, "status"), "ok");
  ASSERT_TRUE(ho.contains("redis") && ho.at("redis").is_object());
  const auto& rd = ho.at("redis").as_object();
  EXPECT_EQ(str(rd, "status"), "up");
  EXPECT_EQ(str(rd, "mode"), "standalone");
  EXPECT_TRUE(rd.contains("latencyMs"));
  EXPECT_TRUE(ho.contains("uptimeSeconds"));
  EXPECT_FALSE(str(ho, "version").empty());
  EXPECT_EQ(get("/health/live", "").status, 200);
  EXPECT_EQ(get("/health/ready", "").status, 200);
  // No session needed, not rate limited.
  EXPECT_TRUE(h.header("x-ratelimit-limit").empty());

  auto c = first_item("/api/customers", clerk_);
  (void)get("/api/customers/" + str(c, "id"), clerk_);
  (void)get("/api/customers/" + str(c, "id"), clerk_);
  auto m = get("/metrics", "");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.header("content-type").find("text/plain"), std::string::npos);
  for (const char* f :
       {"jeweler_http_requests_total{", "jeweler_http_request_duration_seconds_bucket{",
        "jeweler_ratelimit_decisions_total{", "jeweler_cache_requests_total{",
        "jeweler_sessions_active", "jeweler_redis_command_duration_seconds_bucket",
        "jeweler_redis_reconnects_total", "jeweler_redis_up 1"})
    EXPECT_NE(m.body.find(f), std::string::npos) << f;
  EXPECT_NE(m.body.find("policy=\"api\""), std::string::npos);
  EXPECT_NE(m.body.find("decision=\"allowed\""), std::string::npos);
  // Route labels are patterns: no ids, tokens or emails in the metrics.
  EXPECT_EQ(m.body.find(str(c, "id")), std::string::npos);
  EXPECT_EQ(m.body.find(clerk_), std::string::npos);
  EXPECT_EQ(m.body.find("aurum.example"), std::string::npos);
}

TEST_F(BusinessE2E, OversizedHeaderBlockIs431) {
  auto r = call(port(), "GET", "/api/customers?limit=1", clerk_, {},
                {{"X-Padding", std::string(20 * 1024, 'p')}});
  EXPECT_EQ(r.status, 431) << r.body;
  EXPECT_EQ(r.header("cache-control"), "no-store");
  EXPECT_EQ(get("/api/customers?limit=1", clerk_).status, 200);
}

// --- uploads ---------------------------------------------------------------------------

TEST_F(BusinessE2E, UploadsStoreFilesWithTheirDigest) {
  Headers h{{"X-Filename", "receipt 2024 — ünïcode.txt"}, {"Content-Type", "text/plain"}};
  const std::string content = "hello, jeweler\n";
  auto r = call(port(), "POST", "/api/uploads", clerk_, content, h);
  ASSERT_EQ(r.status, 201) << r.body;
  auto o = obj(r);
  for (const char* k : {"id", "filename", "size", "sha256", "contentType", "createdAt"})
    EXPECT_TRUE(o.contains(k)) << k << " in " << r.body;
  EXPECT_EQ(num(o, "size"), static_cast<std::int64_t>(content.size()));
  EXPECT_EQ(str(o, "sha256"), jeweler::store::crypto::sha256_hex(content));
  EXPECT_EQ(str(o, "contentType"), "text/plain");
  EXPECT_FALSE(str(o, "filename").empty());

  std::string binary(60000, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 7 + 3);
  r = call(port(), "POST", "/api/uploads", owner_, binary,
           {{"X-Filename", "blob.bin"}, {"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(num(obj(r), "size"), 60000);
  EXPECT_EQ(str(obj(r), "sha256"), jeweler::store::crypto::sha256_hex(binary));
  auto id1 = str(o, "id");
  EXPECT_NE(str(obj(r), "id"), id1);

  // Missing or empty name: 4xx error shape.
  r = call(port(), "POST", "/api/uploads", clerk_, content, {{"Content-Type", "text/plain"}});
  EXPECT_API_ERROR(r, 400, "bad_request");  // a header, not JSON: 400 (API.md section 1)
  r = call(port(), "POST", "/api/uploads", clerk_, content, {{"X-Filename", ""}});
  EXPECT_API_ERROR(r, 400, "bad_request");
  // Names that try to escape, or too long: refused (a header: 400 naming it).
  for (std::string n : std::vector<std::string>{"../../etc/passwd", "/abs/path", "a\\b.txt", "..",
                                                std::string(400, 'n')}) {
    SCOPED_TRACE(n);
    r = call(port(), "POST", "/api/uploads", clerk_, content, {{"X-Filename", n}});
    EXPECT_API_ERROR(r, 400, "bad_request");
    EXPECT_NE(r.body.find("\"field\":\"X-Filename\""), std::string::npos) << r.body;
  }
  r = call(port(), "POST", "/api/uploads", clerk_, content,
           {{"X-Filename", "ok.txt"}, {"Content-Type", "text/plain; x=\"\xc3\xa9\""}});
  EXPECT_API_ERROR(r, 400, "bad_request");
  EXPECT_NE(r.body.find("\"field\":\"Content-Type\""), std::string::npos) << r.body;
  // Content-Length over UPLOAD_LIMIT_BYTES: 413 before the body is read.
  jeweler::test::Conn conn(port());
  ASSERT_TRUE(conn.ok());
  conn.send("POST /api/uploads HTTP/1.1\r\nHost: x\r\nUser-Agent: " + kUA +
            "\r\nAuthorization: Bearer " + clerk_ +
            "\r\nX-Filename: big.bin\r\nContent-Length: 65537\r\n\r\n");
  auto big = conn.read_response(10s);
  ASSERT_TRUE(big);
  EXPECT_API_ERROR(*big, 413, "payload_too_large");
  // Staff without a session: 401.
  EXPECT_API_ERROR(call(port(), "POST", "/api/uploads", {}, content, {{"X-Filename", "x.txt"}}),
                   401, "unauthorized");
}

}  // namespace
