// Business routes of API.md section 4: KPI, gold price, customers, products,
// invoices (cache-aside through the cache service, X-Cache HIT|MISS,
// invalidation on writes) and uploads. Every store query and cache key is
// scoped by the caller's tenant: another tenant's id is 404.
#include <jeweler/app/routes/context.hpp>
#include <jeweler/store/json.hpp>

#include <spdlog/spdlog.h>

#include <cmath>
#include <string>
#include <unordered_map>

namespace jeweler::app::routes {

namespace {

constexpr int kKarats[] = {24, 22, 21, 18, 14, 10};

cache::KpiData to_cache(const store::Kpi& k) {
  cache::KpiData d;
  d.today_sales = store::cents_to_units(k.today_sales_cents);
  d.today_profit = store::cents_to_units(k.today_profit_cents);
  d.new_customers = k.new_customers;
  d.gold_sold_mtd = k.gold_sold_mtd_grams;
  d.overdue_invoices = k.overdue_invoices;
  d.due_cheques = k.due_cheques;
  d.low_inventory_items = k.low_inventory_items;
  d.last_updated = k.last_updated;
  return d;
}

cache::GoldPrice to_cache(const store::GoldPrice& g) {
  cache::GoldPrice c;
  c.currency = g.currency;
  for (int k : kKarats)  // money: rounded to cents
    c.price_per_gram[std::to_string(k) + "k"] = std::round(g.price_per_gram(k) * 100.0) / 100.0;
  c.updated_at = g.updated_at;
  return c;
}

/// Logs a cache invalidation that could not reach Redis (the entry expires
/// by its TTL; the write itself succeeded).
template <class R>
void log_stale(const R& r, std::string_view what, const http::Request& req) {
  if (!r)
    spdlog::warn(
        "{{\"msg\":\"cache invalidation failed\",\"what\":\"{}\",\"requestId\":\"{}\","
        "\"error\":\"{}\"}}",
        what, req.request_id, r.error().message());
}

std::optional<std::string_view> query(const http::Request& req, std::string_view name) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return std::nullopt;
  return std::string_view(it->second);
}

/// The {id} path parameter when it can be an entity id; nullopt -> 404.
std::optional<std::string> entity_id(const http::Request& req) {
  auto it = req.params.find("id");
  if (it == req.params.end() || !store::valid_entity_id(it->second)) return std::nullopt;
  return it->second;
}

http::Response not_found(std::string_view what) {
  return http::Response::make_error(404, "not_found", std::string(what) + " not found");
}

// --- KPI and gold price -----------------------------------------------------------

// The JSON of the last KPI this thread answered per tenant: the dashboard
// asks again and again for the same values until they are recomputed, and
// equal values give equal text. At most 256 tenants, then it starts over.
std::string kpi_body(const TenantId& t, const cache::KpiData& k) {
  struct Rendered {
    cache::KpiData value;
    std::string body;
  };
  thread_local std::unordered_map<std::string, Rendered> memo;
  auto it = memo.find(t.str());
  if (it != memo.end() && it->second.value == k) return it->second.body;
  auto body = http::to_json_text(cache::to_json(k));
  if (it == memo.end() && memo.size() >= 256) memo.clear();
  memo[t.str()] = Rendered{k, body};
  return body;
}

asio::awaitable<http::Response> kpi(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  if (auto* pf = req.context.get<Prefetched>(); pf && pf->tenant == c.tenant()) {
    // Read with the session check (one round trip); a miss goes on below.
    if (auto hit = s.cache.kpi_hit(c.tenant(), pf->reply)) {
      auto res = http::Response::json_text(kpi_body(c.tenant(), hit->value));
      set_x_cache(res, true);
      co_return res;
    }
  }
  cache::KpiLoader loader = [&s, &c]() -> asio::awaitable<Result<cache::KpiData>> {
    Result<store::Kpi> k = make_error_code(errc::internal);
    co_await s.blocking([&] { k = s.repo().compute_kpi(c.tenant(), now_ms()); });
    if (!k) co_return k.error();
    cache::KpiData out = to_cache(*k);
    co_return out;
  };
  auto r = co_await s.cache.get_or_set_kpi(c.tenant(), loader);
  if (!r) co_return from_error(r.error());
  auto res = http::Response::json_text(kpi_body(c.tenant(), r->value));
  set_x_cache(res, r->hit());
  co_return res;
}

asio::awaitable<http::Response> get_gold_price(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  cache::GoldPriceLoader loader = [&s, &c]() -> asio::awaitable<Result<cache::GoldPrice>> {
    Result<store::GoldPrice> g = make_error_code(errc::internal);
    co_await s.blocking([&] { g = s.repo().get_gold_price(c.tenant()); });
    if (!g) co_return g.error();
    cache::GoldPrice out = to_cache(*g);
    co_return out;
  };
  auto r = co_await s.cache.get_or_set_gold_price(c.tenant(), loader);
  if (!r) {
    if (r.error() == make_error_code(errc::not_found)) co_return not_found("Gold price");
    co_return from_error(r.error());
  }
  auto res = http::Response::json(cache::to_json(r->value));
  set_x_cache(res, r->hit());
  co_return res;
}

asio::awaitable<http::Response> put_gold_price(Services& s, http::Request& req) {
  if (auto denied = require_admin(req)) co_return std::move(*denied);
  const Caller& c = caller(req);
  http::Response error;
  auto body = json_object_body(req, error);
  if (!body) co_return error;
  store::Problem problem;
  std::string currency = "USD";
  Result<store::GoldPrice> current = make_error_code(errc::internal);
  co_await s.blocking([&] { current = s.repo().get_gold_price(c.tenant()); });
  if (current) currency = current->currency;
  boost::json::value bv = std::move(*body);
  auto put = store::parse_gold_price_put(bv, problem, currency);
  if (!put) co_return from_error(put.error(), &problem);
  Result<store::GoldPrice> g = make_error_code(errc::internal);
  co_await s.blocking([&] {
    g = s.repo().put_gold_price(c.tenant(), put->price_per_gram_24k, put->currency, now_ms(),
                                &problem);
  });
  if (!g) co_return from_error(g.error(), &problem);
  // Write-through: the new price replaces the cached one before we answer.
  const cache::GoldPrice cached = to_cache(*g);
  auto w = co_await s.cache.set_gold_price(c.tenant(), cached);
  log_stale(w, "gold-price", req);
  co_return http::Response::json(cache::to_json(cached));
}

// --- customers, products, invoices ------------------------------------------------------

/// A listing (not cached, API.md): ?limit= (1..100, default 50) & ?offset=.
template <class T, class List>
asio::awaitable<http::Response> list_page(Services& s, http::Request& req, List list) {
  const Caller& c = caller(req);
  store::Problem problem;
  auto page = store::parse_page_request(query(req, "limit"), query(req, "offset"), problem);
  if (!page) {
    if (page.error() == make_error_code(errc::invalid_argument))
      co_return bad_request(problem.field + " " + problem.message, problem.field);
    co_return from_error(page.error());
  }
  Result<store::Page<T>> r = make_error_code(errc::internal);
  co_await s.blocking([&] { r = list(s.repo(), c.tenant(), *page); });
  if (!r) co_return from_error(r.error());
  co_return http::Response::json(store::to_json(*r));
}

asio::awaitable<http::Response> list_customers(Services& s, http::Request& req) {
  co_return co_await list_page<store::Customer>(
      s, req, [](store::Repository& repo, const TenantId& t, const store::PageRequest& p) {
        return repo.list_customers(t, p);
      });
}

asio::awaitable<http::Response> list_products(Services& s, http::Request& req) {
  co_return co_await list_page<store::Product>(
      s, req, [](store::Repository& repo, const TenantId& t, const store::PageRequest& p) {
        return repo.list_products(t, p);
      });
}

asio::awaitable<http::Response> list_invoices(Services& s, http::Request& req) {
  co_return co_await list_page<store::Invoice>(
      s, req, [](store::Repository& repo, const TenantId& t, const store::PageRequest& p) {
        return repo.list_invoices(t, p);
      });
}

/// GET of one cached entity: namespace `ns`, loaded by `load` on a miss.
template <class Load>
asio::awaitable<http::Response> get_cached(Services& s, http::Request& req, std::string_view ns,
                                           std::string_view what, Load load) {
  const Caller& c = caller(req);
  auto id = entity_id(req);
  if (!id) co_return not_found(what);
  cache::JsonLoader loader = [&s, &c, &id, &load]() -> asio::awaitable<Result<boost::json::value>> {
    Result<boost::json::value> v = make_error_code(errc::internal);
    co_await s.blocking([&] { v = load(s.repo(), c.tenant(), *id); });
    co_return v;
  };
  auto r = co_await s.cache.get_or_set_json(c.tenant(), ns, *id, loader);
  if (!r) {
    if (r.error() == make_error_code(errc::not_found)) co_return not_found(what);
    co_return from_error(r.error());
  }
  auto res = http::Response::json(r->value);
  set_x_cache(res, r->hit());
  co_return res;
}

template <class T>
Result<boost::json::value> as_json(Result<T> r) {
  if (!r) return r.error();
  return store::to_json(*r);
}

asio::awaitable<http::Response> get_customer(Services& s, http::Request& req) {
  co_return co_await get_cached(
      s, req, cache::ns::customer, "Customer",
      [](store::Repository& repo, const TenantId& t, const std::string& id) {
        return as_json(repo.get_customer(t, id));
      });
}

asio::awaitable<http::Response> get_product(Services& s, http::Request& req) {
  co_return co_await get_cached(
      s, req, cache::ns::product, "Product",
      [](store::Repository& repo, const TenantId& t, const std::string& id) {
        return as_json(repo.get_product(t, id));
      });
}

asio::awaitable<http::Response> get_invoice(Services& s, http::Request& req) {
  co_return co_await get_cached(
      s, req, cache::ns::invoice, "Invoice",
      [](store::Repository& repo, const TenantId& t, const std::string& id) {
        return as_json(repo.get_invoice(t, id));
      });
}

asio::awaitable<http::Response> put_customer(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  auto id = entity_id(req);
  if (!id) co_return not_found("Customer");
  http::Response error;
  auto body = json_object_body(req, error);
  if (!body) co_return error;
  store::Problem problem;
  boost::json::value bv = std::move(*body);
  auto patch = store::parse_customer_patch(bv, problem);
  if (!patch) co_return from_error(patch.error(), &problem);
  Result<store::Customer> r = make_error_code(errc::internal);
  co_await s.blocking(
      [&] { r = s.repo().update_customer(c.tenant(), *id, *patch, now_ms(), &problem); });
  if (!r) {
    if (r.error() == make_error_code(errc::not_found)) co_return not_found("Customer");
    co_return from_error(r.error(), &problem);
  }
  auto d = co_await s.cache.del(c.tenant(), cache::ns::customer, *id);
  log_stale(d, "customer", req);
  co_return http::Response::json(store::to_json(*r));
}

asio::awaitable<http::Response> put_product(Services& s, http::Request& req) {
  if (auto denied = require_admin(req)) co_return std::move(*denied);
  const Caller& c = caller(req);
  auto id = entity_id(req);
  if (!id) co_return not_found("Product");
  http::Response error;
  auto body = json_object_body(req, error);
  if (!body) co_return error;
  store::Problem problem;
  boost::json::value bv = std::move(*body);
  auto patch = store::parse_product_patch(bv, problem);
  if (!patch) co_return from_error(patch.error(), &problem);
  Result<store::Product> r = make_error_code(errc::internal);
  co_await s.blocking(
      [&] { r = s.repo().update_product(c.tenant(), *id, *patch, now_ms(), &problem); });
  if (!r) {
    if (r.error() == make_error_code(errc::not_found)) co_return not_found("Product");
    co_return from_error(r.error(), &problem);
  }
  auto d = co_await s.cache.del(c.tenant(), cache::ns::product, *id);
  log_stale(d, "product", req);
  if (patch->stock || patch->low_stock_threshold) {  // lowInventoryItems may change
    auto k = co_await s.cache.invalidate_kpi(c.tenant());
    log_stale(k, "kpi", req);
  }
  co_return http::Response::json(store::to_json(*r));
}

asio::awaitable<http::Response> create_invoice(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  http::Response error;
  auto body = json_object_body(req, error);
  if (!body) co_return error;
  store::Problem problem;
  boost::json::value bv = std::move(*body);
  auto in = store::parse_new_invoice(bv, problem);
  if (!in) co_return from_error(in.error(), &problem);
  Result<store::Invoice> r = make_error_code(errc::internal);
  co_await s.blocking([&] { r = s.repo().create_invoice(c.tenant(), *in, now_ms(), &problem); });
  if (!r) co_return from_error(r.error(), &problem);
  // Stale now: the tenant's KPI and the products sold (stock).
  auto k = co_await s.cache.invalidate_kpi(c.tenant());
  log_stale(k, "kpi", req);
  for (const auto& item : r->items) {
    auto d = co_await s.cache.del(c.tenant(), cache::ns::product, item.product_id);
    log_stale(d, "product", req);
  }
  auto res = http::Response::json(store::to_json(*r), 201);
  res.headers.set("Location", "/api/invoices/" + r->id);
  co_return res;
}

asio::awaitable<http::Response> create_upload(Services& s, http::Request& req) {
  const Caller& c = caller(req);
  auto filename = req.header("X-Filename");
  if (!filename || filename->empty())
    co_return bad_request("X-Filename header is required", "X-Filename");
  store::NewUpload u;
  u.filename = std::string(*filename);
  u.content_type = std::string(req.header("Content-Type").value_or("application/octet-stream"));
  u.bytes = req.body;
  store::Problem problem;
  if (auto p = store::validate(u, s.shared->upload_limit)) {
    // Name and type come from headers: 400 like a missing name. The size
    // (a body without Content-Length is only measured here): 413.
    if (p->field == "filename") co_return bad_request("X-Filename " + p->message, "X-Filename");
    if (p->field == "contentType")
      co_return bad_request("Content-Type " + p->message, "Content-Type");
    co_return http::Response::make_error(413, "payload_too_large", p->message);
  }
  Result<store::Upload> r = make_error_code(errc::internal);
  co_await s.blocking([&] { r = s.repo().create_upload(c.tenant(), u, now_ms(), &problem); });
  if (!r) co_return from_error(r.error(), &problem);
  auto res = http::Response::json(store::to_json(*r), 201);
  co_return res;
}

}  // namespace

void add_business_routes(ThreadContext& t, Services& s) {
  const auto o = api_route();
  t.router.get("/api/dashboard/kpi", bind(s, kpi), o);
  s.prefetches.push_back({"GET", "/api/dashboard/kpi", [](Services& sv, const TenantId& tenant) {
                            return sv.cache.kpi_read(tenant);
                          }});
  t.router.get("/api/gold-price", bind(s, get_gold_price), o);
  t.router.put("/api/gold-price", bind(s, put_gold_price), o);
  t.router.get("/api/customers", bind(s, list_customers), o);
  t.router.get("/api/customers/{id}", bind(s, get_customer), o);
  t.router.put("/api/customers/{id}", bind(s, put_customer), o);
  t.router.get("/api/products", bind(s, list_products), o);
  t.router.get("/api/products/{id}", bind(s, get_product), o);
  t.router.put("/api/products/{id}", bind(s, put_product), o);
  t.router.get("/api/invoices", bind(s, list_invoices), o);
  t.router.get("/api/invoices/{id}", bind(s, get_invoice), o);
  const auto invoice = api_route("invoice");
  t.router.post("/api/invoices", bind(s, create_invoice), invoice);
  auto upload = api_route("upload");
  upload.body_limit = t.config.upload_limit;
  t.router.post("/api/uploads", bind(s, create_upload), upload);
}

}  // namespace jeweler::app::routes
