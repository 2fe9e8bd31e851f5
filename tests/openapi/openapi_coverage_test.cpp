// docs/openapi.yaml is the machine-readable form of API.md. These tests keep
// it honest:
//  * RouteCoverage: the real jeweler-server (JEWELER_TEST_ROUTES=1, private
//    redis-server) lists every route of its router at GET /__test/routes; the
//    set of (method, path) pairs under the document's `paths:` must equal it,
//    test-only routes aside. A route added to the server without being
//    documented, or documented without existing, fails with its name.
//  * Document: `openapi: 3.1.x`, and the ErrorCode schema lists exactly the
//    error codes of API.md section 1.
//
// No YAML library: a small line reader relies on the layout the document
// promises (path keys at 2 spaces of indentation under `paths:`, method keys
// at 4), which keeps the test free of extra dependencies.
#include "http_support.hpp"

#include <redis_server.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef JEWELER_OPENAPI_PATH
#error "JEWELER_OPENAPI_PATH must name docs/openapi.yaml"
#endif

using namespace jeweler::test;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

/// "GET /api/customers/{id}"
using RouteSet = std::set<std::string>;

const std::set<std::string> kHttpMethods = {"get",   "put",  "post",    "delete",
                                            "patch", "head", "options", "trace"};

/// The 14 error codes of API.md section 1.
const std::set<std::string> kErrorCodes = {"bad_request",
                                           "invalid_json",
                                           "validation_failed",
                                           "unauthorized",
                                           "forbidden",
                                           "two_factor_required",
                                           "not_found",
                                           "method_not_allowed",
                                           "conflict",
                                           "payload_too_large",
                                           "unsupported_media_type",
                                           "rate_limited",
                                           "service_unavailable",
                                           "internal"};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

std::size_t indent_of(const std::string& line) {
  std::size_t n = 0;
  while (n < line.size() && line[n] == ' ') ++n;
  return n;
}

/// Blank lines and comment-only lines carry no structure.
bool is_blank_or_comment(const std::string& line) {
  std::string t = trim(line);
  return t.empty() || t[0] == '#';
}

/// Drops a trailing " # comment" (outside quotes, good enough for keys).
std::string strip_comment(const std::string& s) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#' && (i == 0 || s[i - 1] == ' ')) {
      return trim(s.substr(0, i));
    }
  }
  return trim(s);
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front())
    return s.substr(1, s.size() - 2);
  return s;
}

/// The key of a "key:" or "key: value" line (trimmed, unquoted); empty when
/// the line is not a mapping key.
std::string key_of(const std::string& line, std::string* value = nullptr) {
  std::string t = strip_comment(line);
  if (t.empty() || t[0] == '-') return {};
  // The key ends at the first ':' followed by a space or the end of line,
  // outside quotes.
  char quote = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ':' && (i + 1 == t.size() || t[i + 1] == ' ')) {
      if (value) *value = trim(t.substr(i + 1));
      return unquote(trim(t.substr(0, i)));
    }
  }
  return {};
}

struct ParsedPaths {
  RouteSet routes;
  std::vector<std::string> problems;  // layout errors, duplicates
  bool found_paths = false;
};

/// The (method, path) pairs under the top-level `paths:` key: path keys at
/// exactly 2 spaces of indentation, method keys at exactly 4; the section ends
/// at the next top-level key.
ParsedPaths parse_openapi_paths(const std::string& text) {
  ParsedPaths out;
  auto lines = lines_of(text);
  std::size_t i = 0;
  for (; i < lines.size(); ++i) {
    if (indent_of(lines[i]) == 0 && !is_blank_or_comment(lines[i]) && key_of(lines[i]) == "paths") {
      out.found_paths = true;
      ++i;
      break;
    }
  }
  if (!out.found_paths) return out;
  std::set<std::string> seen_paths;
  std::string path;
  for (; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (is_blank_or_comment(line)) continue;
    if (line[indent_of(line)] == '\t') {
      out.problems.push_back("line " + std::to_string(i + 1) + ": tab indentation");
      continue;
    }
    const std::size_t indent = indent_of(line);
    if (indent == 0) break;  // next top-level key
    if (indent == 2) {
      std::string value;
      std::string key = key_of(line, &value);
      if (key.empty() || key[0] != '/' || !value.empty()) {
        out.problems.push_back("line " + std::to_string(i + 1) +
                               ": expected a path key at 2 spaces: " + trim(line));
        path.clear();
        continue;
      }
      if (!seen_paths.insert(key).second)
        out.problems.push_back("line " + std::to_string(i + 1) + ": duplicate path " + key);
      path = key;
    } else if (indent == 4 && !path.empty()) {
      std::string key = key_of(line);
      std::string lower = key;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!kHttpMethods.contains(lower)) continue;  // parameters, summary, ...
      std::string upper = lower;
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (!out.routes.insert(upper + " " + path).second)
        out.problems.push_back("line " + std::to_string(i + 1) + ": duplicate " + upper + " " +
                               path);
    }
  }
  return out;
}

/// Values of the `enum:` of the component schema `name` (block list or flow
/// list), read by indentation.
std::set<std::string> schema_enum(const std::string& text, const std::string& name) {
  std::set<std::string> out;
  auto lines = lines_of(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (is_blank_or_comment(lines[i]) || key_of(lines[i]) != name) continue;
    const std::size_t schema_indent = indent_of(lines[i]);
    for (std::size_t j = i + 1; j < lines.size(); ++j) {
      if (is_blank_or_comment(lines[j])) continue;
      if (indent_of(lines[j]) <= schema_indent) break;
      std::string value;
      if (key_of(lines[j], &value) != "enum") continue;
      if (!value.empty()) {  // enum: [a, b, c]
        if (value.front() == '[' && value.back() == ']') {
          std::istringstream items(value.substr(1, value.size() - 2));
          std::string item;
          while (std::getline(items, item, ',')) out.insert(unquote(trim(item)));
        }
        return out;
      }
      const std::size_t enum_indent = indent_of(lines[j]);
      for (std::size_t k = j + 1; k < lines.size(); ++k) {
        if (is_blank_or_comment(lines[k])) continue;
        if (indent_of(lines[k]) < enum_indent) break;
        std::string t = strip_comment(lines[k]);
        if (t.size() < 2 || t[0] != '-' || t[1] != ' ') break;
        out.insert(unquote(trim(t.substr(2))));
      }
      return out;
    }
  }
  return out;
}

std::string join(const RouteSet& s) {
  std::string out;
  for (const auto& r : s) out += "\n  " + r;
  return out.empty() ? std::string("\n  (none)") : out;
}

RouteSet difference(const RouteSet& a, const RouteSet& b) {
  RouteSet out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

}  // namespace

// The line reader itself, on a small document.
TEST(OpenApiReader, ReadsPathsAndMethodsByIndentation) {
  const std::string doc =
      "openapi: 3.1.0\n"
      "info:\n"
      "  title: x\n"
      "paths:\n"
      "  # a comment\n"
      "  /a:\n"
      "    get:\n"
      "      summary: 'get: a'\n"
      "      description: |\n"
      "        post:\n"
      "    post: {summary: x}\n"
      "  '/b/{id}':\n"
      "    parameters:\n"
      "      - name: id\n"
      "    put:\n"
      "      responses: {}\n"
      "    delete:  # comment\n"
      "      responses: {}\n"
      "\n"
      "components:\n"
      "  /c:\n"
      "    get: {}\n";
  auto p = parse_openapi_paths(doc);
  EXPECT_TRUE(p.found_paths);
  EXPECT_TRUE(p.problems.empty()) << p.problems.front();
  EXPECT_EQ(p.routes, (RouteSet{"GET /a", "POST /a", "PUT /b/{id}", "DELETE /b/{id}"}));
}

TEST(OpenApiDocument, IsOpenApi31AndListsEveryErrorCode) {
  const std::string text = read_file(JEWELER_OPENAPI_PATH);
  ASSERT_FALSE(text.empty()) << "cannot read " << JEWELER_OPENAPI_PATH;

  std::string version;
  for (const auto& line : lines_of(text)) {
    std::string value;
    if (indent_of(line) == 0 && !is_blank_or_comment(line) && key_of(line, &value) == "openapi") {
      version = unquote(value);
      break;
    }
  }
  ASSERT_TRUE(version.starts_with("3.1.")) << "openapi: " << version;
  const std::string patch = version.substr(4);
  EXPECT_TRUE(!patch.empty() &&
              std::all_of(patch.begin(), patch.end(), [](char c) { return c >= '0' && c <= '9'; }))
      << "openapi: " << version;

  // Every code is in the ErrorCode schema's enum, and nothing else is.
  auto codes = schema_enum(text, "ErrorCode");
  RouteSet expected(kErrorCodes.begin(), kErrorCodes.end());
  EXPECT_EQ(codes, expected) << "missing from ErrorCode:" << join(difference(expected, codes))
                             << "\nnot an API.md code:" << join(difference(codes, expected));
  // ... and each one is mentioned where it can happen (responses, examples).
  for (const auto& code : kErrorCodes) {
    std::size_t uses = 0;
    for (std::size_t pos = text.find(code); pos != std::string::npos;
         pos = text.find(code, pos + 1)) {
      auto word = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
      bool before = pos == 0 || !word(text[pos - 1]);
      bool after = pos + code.size() >= text.size() || !word(text[pos + code.size()]);
      if (before && after) ++uses;
    }
    EXPECT_GE(uses, 2u) << code << " is only in the enum";
  }

  // The `paths:` section reads cleanly (layout the coverage test relies on).
  auto paths = parse_openapi_paths(text);
  ASSERT_TRUE(paths.found_paths) << "no top-level paths:";
  for (const auto& p : paths.problems) ADD_FAILURE() << p;
  EXPECT_FALSE(paths.routes.empty());
}

TEST(OpenApiCoverage, DocumentedRoutesEqualServerRoutes) {
  const std::string text = read_file(JEWELER_OPENAPI_PATH);
  ASSERT_FALSE(text.empty()) << "cannot read " << JEWELER_OPENAPI_PATH;
  auto documented = parse_openapi_paths(text);
  ASSERT_TRUE(documented.found_paths) << "no top-level paths: in " << JEWELER_OPENAPI_PATH;
  for (const auto& p : documented.problems) ADD_FAILURE() << p;

  RedisServer redis;
  const std::string data_dir = make_temp_dir("openapi");
  RouteSet served;
  std::string server_output;
  {
    ServerProcess server({{"REDIS_URL", redis.url()},
                          {"DATABASE_PATH", data_dir + "/jeweler.db"},
                          {"REDIS_KEY_PREFIX", "openapi:"}});
    auto port = server.wait_listening();
    ASSERT_NE(port, 0) << server.output();
    auto r = http_request(port, "GET", "/__test/routes");
    ASSERT_TRUE(r) << "no answer from GET /__test/routes\n" << server.output();
    ASSERT_EQ(r->status, 200) << r->body;
    auto v = json::parse(r->body);
    for (const auto& e : v.at("routes").as_array()) {
      std::string method(e.at("method").as_string());
      std::string path(e.at("path").as_string());
      if (method == "HEAD") continue;
      if (path.starts_with("/__test") || path.starts_with("/api/__test")) continue;
      served.insert(method + " " + path);
    }
    server.signal(SIGTERM);
    server.wait_exit(20s);
  }
  std::error_code ec;
  fs::remove_all(data_dir, ec);

  ASSERT_TRUE(served.contains("GET /health"))
      << "unexpected /__test/routes answer:" << join(served);
  const RouteSet undocumented = difference(served, documented.routes);
  const RouteSet not_served = difference(documented.routes, served);
  EXPECT_TRUE(undocumented.empty())
      << "served by jeweler-server but missing from docs/openapi.yaml:" << join(undocumented);
  EXPECT_TRUE(not_served.empty()) << "in docs/openapi.yaml but not served by jeweler-server:"
                                  << join(not_served);
}
