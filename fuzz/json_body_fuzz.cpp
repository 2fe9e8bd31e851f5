// libFuzzer target: the JSON request-body parsers of the routes
// (src/store/json.cpp: customers, products, invoices, gold price, paging).
//
// The first byte picks the parser, the rest is the body. A body that is not
// JSON must be refused by boost::json; a JSON body is given to the parser,
// which must answer with a value or a Problem naming what is wrong, never
// crash, throw or read out of bounds. Accepted values are checked against
// the documented ranges.
#include <jeweler/store/json.hpp>

#include <boost/json/parse.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "json body fuzz: %s\n", what);
  std::abort();
}

template <class R>
void expect_problem_when_refused(const R& r, const jeweler::store::Problem& p) {
  if (!r && p.message.empty()) fail("refused without a message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace jeweler::store;
  if (size == 0) return 0;
  const std::uint8_t which = data[0] % 5;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  if (which == 4) {
    // ?limit=&offset= as raw query values: "limit\0offset" (an absent one
    // when there is no NUL / nothing before it).
    auto nul = text.find('\0');
    std::optional<std::string_view> limit, offset;
    if (nul == std::string_view::npos) {
      limit = text;
    } else {
      if (nul > 0) limit = text.substr(0, nul);
      offset = text.substr(nul + 1);
    }
    Problem p;
    auto r = parse_page_request(limit, offset, p);
    expect_problem_when_refused(r, p);
    if (r && (r->limit < 1 || r->limit > 100 || r->offset < 0)) fail("page out of range");
    return 0;
  }

  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(text, ec);
  if (ec) return 0;
  Problem p;
  switch (which) {
    case 0: {
      auto r = parse_customer_patch(body, p);
      expect_problem_when_refused(r, p);
      break;
    }
    case 1: {
      auto r = parse_product_patch(body, p);
      expect_problem_when_refused(r, p);
      if (r && r->stock && *r->stock < 0) fail("negative stock accepted");
      if (r && r->price_cents && (*r->price_cents < 0 || *r->price_cents > limits::price_max_cents))
        fail("price out of range accepted");
      if (r && r->low_stock_threshold && *r->low_stock_threshold < 0)
        fail("negative threshold accepted");
      break;
    }
    case 2: {
      auto r = parse_new_invoice(body, p);
      expect_problem_when_refused(r, p);
      if (r) {
        for (const auto& item : r->items)
          if (item.quantity <= 0) fail("non-positive quantity accepted");
      }
      break;
    }
    case 3: {
      auto r = parse_gold_price_put(body, p, "USD");
      expect_problem_when_refused(r, p);
      if (r && !(std::isfinite(r->price_per_gram_24k) && r->price_per_gram_24k > 0 &&
                 r->price_per_gram_24k <= limits::gold_price_max && r->currency.size() == 3))
        fail("gold price out of range accepted");
      break;
    }
  }
  return 0;
}
