// The origin rules of API.md section 2 (cross-site request check) and of
// CORS_ALLOWED_ORIGINS, without a server: normalization, the own-origin
// comparison with Host, and the decision table of cross_site().
#include <jeweler/http/origin.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

using namespace jeweler::http;

namespace {

Request request(std::string method, std::string host,
                std::vector<std::pair<std::string, std::string>> headers = {}) {
  Request r;
  r.method = std::move(method);
  if (!host.empty()) r.headers.add("Host", std::move(host));
  for (auto& [k, v] : headers) r.headers.add(k, v);
  return r;
}

}  // namespace

TEST(Origin, Normalize) {
  EXPECT_EQ(normalize_origin("https://App.Example"), "https://app.example");
  EXPECT_EQ(normalize_origin("https://app.example:443"), "https://app.example");
  EXPECT_EQ(normalize_origin("http://app.example:80"), "http://app.example");
  EXPECT_EQ(normalize_origin("http://app.example:443"), "http://app.example:443");
  EXPECT_EQ(normalize_origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(normalize_origin("http://[::1]:8080"), "http://[::1]:8080");
  EXPECT_EQ(normalize_origin("https://app.example/"), "https://app.example");
  for (const char* bad :
       {"null", "*", "", "app.example", "ftp://app.example", "https://app.example/path",
        "https://user@app.example", "https://app.example:0", "https://app.example:99999",
        "https://app.example:", "https://", "https://a b", "https://[zz]", "https://app.example?x",
        "https://app.example\r\nX: y"})
    EXPECT_FALSE(normalize_origin(bad)) << bad;
}

TEST(Origin, ParseList) {
  auto l = parse_origin_list(" https://a.example, http://b.example:8080 ,,https://A.example:443");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0], "https://a.example");
  EXPECT_EQ(l[1], "http://b.example:8080");
  EXPECT_THROW(parse_origin_list("https://a.example,*"), std::invalid_argument);
  EXPECT_THROW(parse_origin_list("a.example"), std::invalid_argument);
  EXPECT_TRUE(parse_origin_list("").empty());
}

TEST(Origin, UnsafeMethods) {
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE", "BREW"}) EXPECT_TRUE(unsafe_method(m));
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE"}) EXPECT_FALSE(unsafe_method(m));
}

TEST(Origin, SameOriginComparesWithHost) {
  auto r = request("POST", "127.0.0.1:8080");
  EXPECT_TRUE(same_origin_as_host("http://127.0.0.1:8080", r));
  EXPECT_TRUE(same_origin_as_host("https://127.0.0.1:8080", r));  // TLS may end at a proxy
  EXPECT_FALSE(same_origin_as_host("http://127.0.0.1:8081", r));
  EXPECT_FALSE(same_origin_as_host("http://127.0.0.1", r));
  auto d = request("POST", "Shop.Example");
  EXPECT_TRUE(same_origin_as_host("https://shop.example", d));
  EXPECT_TRUE(same_origin_as_host("http://shop.example", d));
  auto p = request("POST", "shop.example:443");
  EXPECT_TRUE(same_origin_as_host("https://shop.example", p));
  EXPECT_FALSE(same_origin_as_host("http://shop.example", p));
  EXPECT_FALSE(same_origin_as_host("null", d));
  EXPECT_FALSE(same_origin_as_host("http://shop.example", request("POST", "")));
}

TEST(Origin, CrossSiteDecisions) {
  OriginPolicy none;
  OriginPolicy lists;
  lists.allowed = {"https://partner.example"};
  lists.cors = {"https://app.example"};
  const std::string host = "api.example";

  // No browser signal (curl, a server): not cross-site.
  EXPECT_FALSE(cross_site(request("POST", host), none));
  // Same origin by either signal.
  EXPECT_FALSE(cross_site(request("POST", host, {{"Sec-Fetch-Site", "same-origin"}}), none));
  EXPECT_FALSE(cross_site(request("POST", host, {{"Origin", "https://api.example"}}), none));
  EXPECT_FALSE(cross_site(
      request("POST", host, {{"Sec-Fetch-Site", "same-origin"}, {"Origin", "https://api.example"}}),
      none));
  // A user typing the URL / a bookmark.
  EXPECT_FALSE(cross_site(request("POST", host, {{"Sec-Fetch-Site", "none"}}), none));
  // Another site by Sec-Fetch-Site.
  EXPECT_TRUE(cross_site(request("POST", host, {{"Sec-Fetch-Site", "cross-site"}}), none));
  EXPECT_TRUE(cross_site(request("POST", host, {{"Sec-Fetch-Site", "same-site"}}), none));
  EXPECT_TRUE(cross_site(request("POST", host, {{"Sec-Fetch-Site", " Cross-Site "}}), none));
  // Another site by Origin (old browsers send no Sec-Fetch-Site).
  EXPECT_TRUE(cross_site(request("POST", host, {{"Origin", "https://evil.example"}}), none));
  EXPECT_TRUE(cross_site(request("POST", host, {{"Origin", "null"}}), none));
  EXPECT_TRUE(cross_site(request("POST", host, {{"Origin", "https://api.example:8443"}}), none));
  // Origin wins over a forged-looking Sec-Fetch-Site only when listed.
  EXPECT_TRUE(
      cross_site(request("POST", host,
                         {{"Sec-Fetch-Site", "same-origin"}, {"Origin", "https://evil.example"}}),
                 none));
  // ALLOWED_ORIGINS and CORS_ALLOWED_ORIGINS are both allowed, even though
  // the browser says cross-site (it always does for them).
  for (const char* o :
       {"https://partner.example", "https://app.example", "https://APP.example:443"}) {
    EXPECT_FALSE(
        cross_site(request("POST", host, {{"Origin", o}, {"Sec-Fetch-Site", "cross-site"}}), lists))
        << o;
    EXPECT_TRUE(
        cross_site(request("POST", host, {{"Origin", o}, {"Sec-Fetch-Site", "cross-site"}}), none))
        << o;
  }
  EXPECT_TRUE(
      cross_site(request("POST", host,
                         {{"Origin", "https://other.example"}, {"Sec-Fetch-Site", "cross-site"}}),
                 lists));
  EXPECT_TRUE(lists.csrf_allowed("https://app.example"));
  EXPECT_TRUE(lists.cors_allowed("https://app.example"));
  EXPECT_TRUE(lists.csrf_allowed("https://partner.example"));
  EXPECT_FALSE(lists.cors_allowed("https://partner.example"));  // CSRF list does not grant CORS
}

TEST(Origin, JsonMediaType) {
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_json_media_type(" application/json ;charset=UTF-8"));
  EXPECT_FALSE(is_json_media_type("text/plain"));
  EXPECT_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_media_type("multipart/form-data; boundary=x"));
  EXPECT_FALSE(is_json_media_type("application/jsonp"));
  EXPECT_FALSE(is_json_media_type(""));
}
