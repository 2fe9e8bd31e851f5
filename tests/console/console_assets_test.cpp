// The web console's embedded files and revalidation (src/app/console/,
// docs/console.md) without a server or a browser: what cmake/EmbedFiles.cmake
// generated, the file lookup, and If-None-Match matching.
#include <jeweler/app/console/assets.hpp>
#include <jeweler/app/console/console.hpp>

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace console = jeweler::app::console;

TEST(ConsoleAssets, EveryFileHasATypeAStrongEtagAndABody) {
  auto all = console::assets();
  ASSERT_GE(all.size(), 3u);
  const std::regex etag("\"[0-9a-f]{32}\"");
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& a = all[i];
    SCOPED_TRACE(std::string(a.name));
    EXPECT_FALSE(a.body.empty());
    EXPECT_FALSE(a.content_type.empty());
    EXPECT_TRUE(std::regex_match(std::string(a.etag), etag)) << a.etag;
    if (i > 0) {
      EXPECT_LT(all[i - 1].name, a.name) << "sorted by name (binary search)";
    }
    for (std::size_t j = 0; j < i; ++j) EXPECT_NE(all[j].etag, a.etag) << all[j].name;
  }
}

TEST(ConsoleAssets, TypesFollowTheExtension) {
  const auto* index = console::find_asset("index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  const auto* js = console::find_asset("app.js");
  ASSERT_NE(js, nullptr);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  const auto* css = console::find_asset("app.css");
  ASSERT_NE(css, nullptr);
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  const auto* svg = console::find_asset("favicon.svg");
  ASSERT_NE(svg, nullptr);
  EXPECT_EQ(svg->content_type, "image/svg+xml");
}

TEST(ConsoleAssets, OnlyEmbeddedNamesAreFound) {
  for (const char* name : {"", "index", "INDEX.HTML", "../index.html", "./app.js", "app.js/",
                           "app.js%00", "web/app.js", "/app.js"})
    EXPECT_EQ(console::find_asset(name), nullptr) << name;
}

TEST(ConsoleAssets, TheHtmlHasNoInlineScriptOrStyle) {
  const auto* index = console::find_asset("index.html");
  ASSERT_NE(index, nullptr);
  const std::string html(index->body);
  // Every <script> has a src; no <style>, style= or on*= handler attribute
  // (the Content-Security-Policy would refuse them).
  EXPECT_FALSE(std::regex_search(html, std::regex("<script(?![^>]*\\bsrc=)")));
  EXPECT_FALSE(
      std::regex_search(html, std::regex("<style|\\sstyle=|\\son[a-z]+=", std::regex::icase)));
}

TEST(ConsoleAssets, ThePolicyIsStrict) {
  const std::string csp(console::kContentSecurityPolicy);
  for (const char* d : {"default-src 'self'", "script-src 'self'", "style-src 'self'",
                        "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'",
                        "base-uri 'none'", "form-action 'self'", "object-src 'none'"})
    EXPECT_NE(csp.find(d), std::string::npos) << d;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
}

TEST(ConsoleEtag, IfNoneMatch) {
  const std::string_view tag = "\"0123456789abcdef0123456789abcdef\"";
  EXPECT_TRUE(console::etag_matches(tag, tag));
  EXPECT_TRUE(console::etag_matches("*", tag));
  EXPECT_TRUE(console::etag_matches(" * ", tag));
  EXPECT_TRUE(console::etag_matches("W/\"0123456789abcdef0123456789abcdef\"", tag));
  EXPECT_TRUE(console::etag_matches("\"old\", \"0123456789abcdef0123456789abcdef\"", tag));
  EXPECT_TRUE(console::etag_matches("\"old\",W/\"0123456789abcdef0123456789abcdef\" ", tag));
  EXPECT_FALSE(console::etag_matches("", tag));
  EXPECT_FALSE(console::etag_matches("\"old\"", tag));
  EXPECT_FALSE(console::etag_matches("0123456789abcdef0123456789abcdef", tag));  // unquoted
  EXPECT_FALSE(console::etag_matches("\"0123456789abcdef0123456789abcdef", tag));
  EXPECT_FALSE(console::etag_matches(",,", tag));
}
