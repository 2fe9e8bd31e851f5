#include <jeweler/http/router.hpp>
#include <jeweler/http/types.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <array>
#include <cmath>
#include <string>

using namespace jeweler::http;
namespace asio = boost::asio;

namespace {

Handler answer(std::string body) {
  return [body](Request&) -> asio::awaitable<Response> { co_return Response::text(body); };
}

Response run(const Router& router, Request& req) {
  asio::io_context io;
  auto f = asio::co_spawn(io, router.dispatch(req), asio::use_future);
  io.run();
  return f.get();
}

Request make(std::string method, std::string target) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  return r;
}

}  // namespace

TEST(Router, MatchesLiteralsAndParameters) {
  Router r;
  r.get("/api/customers", answer("list"));
  r.get("/api/customers/{id}", answer("one"));
  r.get("/api/customers/search", answer("search"));
  auto m = r.match("GET", "/api/customers/c-42");
  ASSERT_EQ(m.kind, RouteMatch::Kind::found);
  EXPECT_EQ(m.route->path_template, "/api/customers/{id}");
  EXPECT_EQ(m.params.at("id"), "c-42");
  // A literal segment wins over a parameter.
  m = r.match("GET", "/api/customers/search");
  ASSERT_EQ(m.kind, RouteMatch::Kind::found);
  EXPECT_EQ(m.route->path_template, "/api/customers/search");
  EXPECT_EQ(r.match("GET", "/api/customers").route->path_template, "/api/customers");
}

TEST(Router, NotFoundVersusMethodNotAllowed) {
  Router r;
  r.get("/items/{id}", answer("get"));
  r.del("/items/{id}", answer("del"));
  EXPECT_EQ(r.match("GET", "/nothing").kind, RouteMatch::Kind::not_found);
  EXPECT_EQ(r.match("GET", "/items").kind, RouteMatch::Kind::not_found);
  EXPECT_EQ(r.match("GET", "/items/1/extra").kind, RouteMatch::Kind::not_found);
  EXPECT_EQ(r.match("GET", "/items/").kind, RouteMatch::Kind::not_found);  // empty parameter
  auto m = r.match("POST", "/items/1");
  ASSERT_EQ(m.kind, RouteMatch::Kind::method_not_allowed);
  EXPECT_EQ(m.allow, "DELETE, GET, HEAD");
  EXPECT_EQ(r.match("HEAD", "/items/1").kind, RouteMatch::Kind::found);  // HEAD via GET
}

TEST(Router, DecodesSegmentsAfterSplitting) {
  Router r;
  r.get("/files/{name}", answer("f"));
  auto m = r.match("GET", "/files/a%2Fb%20c");
  ASSERT_EQ(m.kind, RouteMatch::Kind::found);
  EXPECT_EQ(m.params.at("name"), "a/b c");  // %2F stays inside the parameter
  EXPECT_EQ(r.match("GET", "/files/%zz").kind, RouteMatch::Kind::bad_request);
  EXPECT_EQ(r.match("GET", "/files/%4").kind, RouteMatch::Kind::bad_request);
  EXPECT_EQ(r.match("GET", "/files/a%00b").kind, RouteMatch::Kind::bad_request);
}

TEST(Router, RejectsBadTemplates) {
  Router r;
  EXPECT_THROW(r.get("no-slash", answer("x")), std::invalid_argument);
  EXPECT_THROW(r.get("/a/x{id}", answer("x")), std::invalid_argument);
  r.get("/a/{id}", answer("x"));
  EXPECT_THROW(r.get("/a/{id}", answer("y")), std::invalid_argument);
}

TEST(Router, ResolveAndDispatch) {
  Router r;
  RouteOptions big;
  big.body_limit = 10 << 20;
  big.name = "upload";
  r.post("/upload", answer("up"), big);
  r.get("/x/{id}", answer("x"));

  auto req = make("POST", "/upload?a=1");
  EXPECT_EQ(r.resolve(req, 1 << 20), std::size_t(10 << 20));
  EXPECT_EQ(req.route_name(), "upload");
  EXPECT_EQ(run(r, req).body, "up");

  auto nf = make("GET", "/nope");
  EXPECT_EQ(r.resolve(nf, 123), 123u);
  auto res = run(r, nf);
  EXPECT_EQ(res.status, 404u);
  ASSERT_TRUE(res.error);
  EXPECT_EQ(res.error->code, "not_found");
  EXPECT_EQ(nf.route_name(), "unmatched");

  auto na = make("PUT", "/x/1");
  r.resolve(na, 1);
  res = run(r, na);
  EXPECT_EQ(res.status, 405u);
  EXPECT_EQ(res.headers.get("allow").value_or(""), "GET, HEAD");
  EXPECT_EQ(res.error->code, "method_not_allowed");

  auto bad = make("GET", "/x/%G1");
  r.resolve(bad, 1);
  res = run(r, bad);
  EXPECT_EQ(res.status, 400u);
  EXPECT_EQ(res.error->code, "bad_request");
}

TEST(Headers, CaseInsensitive) {
  Headers h;
  h.set("Content-Type", "a");
  EXPECT_EQ(h.get("content-type").value_or(""), "a");
  h.set("CONTENT-TYPE", "b");
  EXPECT_EQ(h.all().size(), 1u);
  h.add("Set-Cookie", "x=1");
  h.add("set-cookie", "y=2");
  EXPECT_EQ(h.all().size(), 3u);
  h.erase("SET-COOKIE");
  EXPECT_FALSE(h.has("set-cookie"));
}

TEST(PercentDecode, Cases) {
  EXPECT_EQ(percent_decode("a%20b").value(), "a b");
  EXPECT_EQ(percent_decode("a+b", true).value(), "a b");
  EXPECT_EQ(percent_decode("a+b").value(), "a+b");
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("%2"));
  EXPECT_FALSE(percent_decode("%x1"));
  EXPECT_FALSE(percent_decode("%00"));
}

TEST(Chain, RunsMiddlewareInOrder) {
  std::string trace;
  auto mw = [&trace](std::string name) -> Middleware {
    return [&trace, name](Request& req, Next next) -> asio::awaitable<Response> {
      trace += name + ">";
      auto r = co_await next(req);
      trace += "<" + name;
      co_return r;
    };
  };
  auto h = chain({mw("a"), mw("b")}, [&trace](Request&) -> asio::awaitable<Response> {
    trace += "h";
    co_return Response{};
  });
  asio::io_context io;
  Request req;
  auto f = asio::co_spawn(io, h(req), asio::use_future);
  io.run();
  f.get();
  EXPECT_EQ(trace, "a>b>h<b<a");
}

TEST(JsonText, PlainDecimalNumbersAndTheSameDocument) {
  boost::json::value v =
      boost::json::parse(R"({"a":65.4,"b":0.5,"c":0.0,"d":499.74,"e":-12,"f":18446744073709551615,)"
                         R"("g":[true,false,null,1e-7],"h":{"q\"\\\n":"\u0001é"},"i":1e21})");
  const std::string text = jeweler::http::to_json_text(v);
  EXPECT_EQ(text, R"({"a":65.4,"b":0.5,"c":0.0,"d":499.74,"e":-12,"f":18446744073709551615,)"
                  R"("g":[true,false,null,1e-07],"h":{"q\"\\\n":"\u0001é"},"i":1e+21})");
  EXPECT_EQ(boost::json::parse(text), v);  // reads back as the same document
  EXPECT_EQ(jeweler::http::to_json_text(boost::json::value(std::nan(""))), "null");
}

// Middleware results by type: one value per type, replaced by a later set,
// and a pointer from get() stays valid while values of other types are added.
TEST(RequestContext, OneValuePerTypeAndStablePointers) {
  struct Big {
    std::string text;
    std::array<char, 64> pad{};
  };
  RequestContext ctx;
  EXPECT_EQ(ctx.get<int>(), nullptr);
  ctx.set(Big{"first"});
  Big* big = ctx.get<Big>();
  ASSERT_NE(big, nullptr);
  ctx.set(7);
  ctx.set(std::string("s"));
  ctx.set(2.5);
  EXPECT_EQ(ctx.get<Big>(), big);
  EXPECT_EQ(big->text, "first");
  ctx.set(8);
  EXPECT_EQ(*ctx.get<int>(), 8);
  const RequestContext& cref = ctx;
  ASSERT_NE(cref.get<std::string>(), nullptr);
  EXPECT_EQ(*cref.get<std::string>(), "s");
  EXPECT_EQ(cref.get<long>(), nullptr);
}
