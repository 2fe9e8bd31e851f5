// Security of the HTTP layer (issue 14, findings 2-4; issue 19, CORS), on the
// real jeweler-server with the demo data:
//  * nothing is read before it is allowed: an authenticated route answers
//    401 before the body, no memory follows a declared length, a per-address
//    connection cap and a process-wide body budget (HTTP_BODY_MEMORY_BYTES),
//    and the "many anonymous connections trickling bodies" attack keeps the
//    server's RSS bounded while a normal client is served;
//  * CSRF: JSON routes take application/json only (415), cookie-authenticated
//    unsafe requests from another site are refused (403), Bearer is exempt;
//  * framing per RFC 9112 (raw sockets): Transfer-Encoding / Content-Length /
//    Host faults are 400 (or 501) and close, and the chunked-then-gzip
//    smuggling case gets a single answer;
//  * CORS for CORS_ALLOWED_ORIGINS, in agreement with the CSRF rules.
#include "e2e_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace e2e {
namespace {

using jeweler::test::Conn;

/// A value of /proc/PID/status ("VmRSS", "VmHWM") in KiB; -1 if unreadable.
long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  return -1;
}

/// The value of an unlabelled series on GET /metrics; -1 if absent.
double metric(std::uint16_t port, const std::string& name) {
  auto r = jeweler::test::http_request(port, "GET", "/metrics");
  if (!r) return -1;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::strtod(line.c_str() + name.size() + 1, nullptr);
  return -1;
}

/// Polls the metric until `pred` holds; the last value read.
template <class Pred>
double wait_metric(std::uint16_t port, const std::string& name, Pred pred,
                   std::chrono::milliseconds timeout = 20s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  double v = metric(port, name);
  while (!pred(v) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
    v = metric(port, name);
  }
  return v;
}

std::string head(const std::string& method, const std::string& target,
                 const std::vector<std::string>& lines) {
  std::string h =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + kUA + "\r\n";
  for (const auto& l : lines) h += l + "\r\n";
  return h + "\r\n";
}

void expect_error_body(const HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_FALSE(r.header("x-request-id").empty());
  auto v = parse(r);
  ASSERT_TRUE(v.is_object()) << r.body;
  EXPECT_EQ(str(v.as_object(), "error"), code) << r.body;
}

/// The server's cookie for a session token (what a browser sends back).
Headers cookie(const std::string& token, Headers more = {}) {
  more["Cookie"] = "sid=" + token;
  return more;
}

// ---------------------------------------------------------------------------
// One server with both origin lists set: bodies, CSRF, framing, CORS.

class HttpSecurity : public SharedStackTest<HttpSecurity> {
 public:
  static Env settings() {
    return {{"ALLOWED_ORIGINS", "https://partner.example"},
            {"CORS_ALLOWED_ORIGINS", "https://app.example, http://localhost:5173"}};
  }
  static void after_start() {
    owner_ = token_of(port(), kOwner);
    clerk_ = token_of(port(), kClerk);
  }
  static inline std::string owner_, clerk_;
};

// --- 14.2: nothing read before it is allowed --------------------------------

TEST_F(HttpSecurity, AuthenticatedRouteAnswers401BeforeTheBody) {
  // A 10 MiB upload announced, not one byte of it sent: the answer cannot
  // wait for the body (the body timeout is 30 s; this waits 10 s at most).
  Conn c(port());
  c.send(head("POST", "/api/uploads",
              {"Content-Type: application/octet-stream", "X-Filename: big.bin",
               "Content-Length: 10485760"}));
  auto r = c.read_response(10s);
  ASSERT_TRUE(r) << "no answer before the body";
  expect_error_body(*r, 401, "unauthorized");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer(5s));

  // The same with a body within the default limit, and with a chunked one.
  Conn d(port());
  d.send(
      head("POST", "/api/invoices", {"Content-Type: application/json", "Content-Length: 1000000"}));
  r = d.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 401, "unauthorized");
  Conn e(port());
  e.send(head("POST", "/api/uploads", {"X-Filename: a.bin", "Transfer-Encoding: chunked"}) +
         "10\r\n0123456789abcdef\r\n");
  r = e.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 401, "unauthorized");
  EXPECT_TRUE(e.closed_by_peer(5s));  // chunked: cannot be skipped safely

  // A session of the wrong kind is refused before the body as well: 403
  // two_factor_required for a pending 2FA session.
  auto pending = login(port(), kSecure);
  ASSERT_EQ(pending.status(), 200) << pending.res.body;
  Conn f(port());
  f.send(head(
      "POST", "/api/uploads",
      {"Authorization: Bearer " + pending.token, "X-Filename: a.bin", "Content-Length: 5000000"}));
  r = f.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 403, "two_factor_required");
}

TEST_F(HttpSecurity, RefusedSmallBodyIsSkippedAndTheConnectionKept) {
  // Head first, body after the 401: the server drops the body and reads
  // the next request on the same connection.
  const std::string body = R"({"customerId":"x","items":[]})";
  Conn c(port());
  c.send(
      head("POST", "/api/invoices",
           {"Content-Type: application/json", "Content-Length: " + std::to_string(body.size())}));
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 401, "unauthorized");
  EXPECT_NE(r->header("connection"), "close");
  c.send(body);
  c.send(head("GET", "/api/auth/me", {"Authorization: Bearer " + owner_}));
  r = c.read_response(10s);
  ASSERT_TRUE(r) << "connection not reusable after a skipped body";
  EXPECT_EQ(r->status, 200) << r->body;
  // Head and body in one go, then a pipelined request: both answered in
  // order, the body never taken for a request.
  Conn d(port());
  d.send(
      head("POST", "/api/invoices",
           {"Content-Type: application/json",
            "Content-Length: " + std::to_string(std::string("GET /x HTTP/1.1\r\n\r\n").size())}) +
      "GET /x HTTP/1.1\r\n\r\n" + head("GET", "/health/live", {}));
  r = d.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = d.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(HttpSecurity, AllowedBodiesAreStillRead) {
  // Expect: 100-continue is answered only once the request is allowed.
  std::string file(3 << 20, 'u');
  Conn c(port());
  c.send(head("POST", "/api/uploads",
              {"Authorization: Bearer " + clerk_, "X-Filename: scan.bin",
               "Content-Type: application/octet-stream", "Expect: 100-continue",
               "Content-Length: " + std::to_string(file.size())}));
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 100);
  c.send(file);
  r = c.read_response(20s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(num(obj(*r), "size"), 3 << 20);
  // Without a session the 100 never comes: the final answer does, and the
  // connection closes (the client may not send the body at all).
  Conn d(port());
  d.send(head("POST", "/api/uploads",
              {"X-Filename: scan.bin", "Expect: 100-continue", "Content-Length: 100"}));
  r = d.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(d.closed_by_peer(5s));
  // Chunked, authorized.
  Conn e(port());
  e.send(head("POST", "/api/uploads",
              {"Authorization: Bearer " + clerk_, "X-Filename: c.txt", "Content-Type: text/plain",
               "Transfer-Encoding: chunked"}) +
         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  r = e.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(num(obj(*r), "size"), 11);
  // Over the limit by Content-Length: 413 before reading, after auth.
  Conn f(port());
  f.send(head("POST", "/api/invoices",
              {"Authorization: Bearer " + clerk_, "Content-Type: application/json",
               "Content-Length: 2000000"}));
  r = f.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 413, "payload_too_large");
}

// --- 14.3: CSRF ---------------------------------------------------------------

TEST_F(HttpSecurity, JsonRoutesRefuseOtherContentTypes) {
  const std::string creds = R"({"email":"clerk@aurum.example","password":"aurum-clerk-pw"})";
  // The classic cross-site form post: text/plain, no preflight needed.
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data; boundary=x", "application/jsonx"}) {
    auto r = call(port(), "POST", "/api/auth/login", {}, creds, {{"Content-Type", type}});
    EXPECT_API_ERROR(r, 415, "unsupported_media_type");
  }
  // No Content-Type at all with a body.
  auto raw =
      jeweler::test::http_request(port(), "POST", "/api/auth/login", {{"User-Agent", kUA}}, creds);
  ASSERT_TRUE(raw);
  EXPECT_API_ERROR(*raw, 415, "unsupported_media_type");
  // Parameters are fine.
  auto ok = call(port(), "POST", "/api/auth/login", {}, creds,
                 {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  ok = call(port(), "POST", "/api/auth/login", {}, creds, {{"Content-Type", "Application/JSON"}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  // Authenticated JSON routes too (PUT and POST), before any change.
  auto ids = ids_of(port(), owner_, "/api/customers", 1);
  ASSERT_FALSE(ids.empty());
  auto r = call(port(), "PUT", "/api/customers/" + ids[0], owner_, R"({"notes":"csrf"})",
                {{"Content-Type", "text/plain"}});
  EXPECT_API_ERROR(r, 415, "unsupported_media_type");
  auto now = call(port(), "GET", "/api/customers/" + ids[0], owner_);
  EXPECT_NE(str(obj(now), "notes"), "csrf");
  r = call(port(), "POST", "/api/invoices", owner_, R"({"customerId":"x","items":[]})",
           {{"Content-Type", "text/plain"}});
  EXPECT_API_ERROR(r, 415, "unsupported_media_type");
  // Uploads take any type.
  r = call(port(), "POST", "/api/uploads", clerk_, "plain text file",
           {{"Content-Type", "text/plain"}, {"X-Filename", "n.txt"}});
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST_F(HttpSecurity, CookieAuthenticatedCrossSiteRequestsAreRefused) {
  auto l = login(port(), kClerk);
  ASSERT_EQ(l.status(), 200);
  const std::string t = l.token;
  const std::string refresh = "/api/auth/refresh";
  // The issue's case: a cross-site text/plain form creating an invoice
  // with the cookie. Refused for the origin (403) before the type (415).
  auto r = call(port(), "POST", "/api/invoices", {}, R"({"customerId":"x","items":[]})",
                cookie(t, {{"Content-Type", "text/plain"},
                           {"Origin", "https://evil.example"},
                           {"Sec-Fetch-Site", "cross-site"}}));
  EXPECT_API_ERROR(r, 403, "forbidden");
  // Each signal on its own.
  for (const Headers& h : std::vector<Headers>{{{"Sec-Fetch-Site", "cross-site"}},
                                               {{"Sec-Fetch-Site", "same-site"}},
                                               {{"Origin", "https://evil.example"}},
                                               {{"Origin", "null"}},
                                               {{"Origin", "http://127.0.0.1:1"}},
                                               {{"Origin", "https://partner.example.evil"}}}) {
    r = call(port(), "POST", refresh, {}, {}, cookie(t, h));
    EXPECT_API_ERROR(r, 403, "forbidden");
    r = call(port(), "DELETE", "/api/auth/sessions/nope", {}, {}, cookie(t, h));
    EXPECT_API_ERROR(r, 403, "forbidden");
  }
  // Still rate limited (the refusal is an /api answer like any other).
  r = call(port(), "POST", refresh, {}, {}, cookie(t, {{"Sec-Fetch-Site", "cross-site"}}));
  EXPECT_FALSE(r.header("x-ratelimit-limit").empty());
  // The same browser on the server's own origin (the web console): allowed.
  // http_request sends "Host: 127.0.0.1".
  r = call(port(), "POST", refresh, {}, {},
           cookie(t, {{"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://127.0.0.1"}}));
  EXPECT_EQ(r.status, 200) << r.body;
  r = call(port(), "POST", refresh, {}, {}, cookie(t, {{"Sec-Fetch-Site", "same-origin"}}));
  EXPECT_EQ(r.status, 200) << r.body;
  r = call(port(), "POST", refresh, {}, {}, cookie(t, {{"Sec-Fetch-Site", "none"}}));
  EXPECT_EQ(r.status, 200) << r.body;
  // No browser signal (curl, scripts): allowed.
  r = call(port(), "POST", refresh, {}, {}, cookie(t));
  EXPECT_EQ(r.status, 200) << r.body;
  // ALLOWED_ORIGINS and CORS_ALLOWED_ORIGINS: allowed, though the browser
  // says cross-site.
  for (const char* o :
       {"https://partner.example", "https://app.example", "http://localhost:5173"}) {
    r = call(port(), "POST", refresh, {}, {},
             cookie(t, {{"Origin", o}, {"Sec-Fetch-Site", "cross-site"}}));
    EXPECT_EQ(r.status, 200) << o << " " << r.body;
  }
  // Safe methods are not subject to the check.
  r = call(port(), "GET", "/api/auth/me", {}, {},
           cookie(t, {{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}}));
  EXPECT_EQ(r.status, 200) << r.body;
  // Bearer carries no ambient credential: exempt, whatever the headers say.
  r = call(port(), "POST", refresh, t, {},
           {{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}});
  EXPECT_EQ(r.status, 200) << r.body;
  // The cookie was never used by the refused requests: the session lives.
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", t).status, 200);
}

TEST_F(HttpSecurity, CrossSiteLoginIsRefused) {
  // Login CSRF (logging the victim into the attacker's account): the same
  // origin rule applies to login, which has no session yet.
  const std::string creds = R"({"email":"clerk@aurum.example","password":"aurum-clerk-pw"})";
  auto r = call(port(), "POST", "/api/auth/login", {}, creds,
                {{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}});
  EXPECT_API_ERROR(r, 403, "forbidden");
  EXPECT_TRUE(r.header("set-cookie").empty());
  r = call(port(), "POST", "/api/auth/login", {}, creds, {{"Origin", "https://evil.example"}});
  EXPECT_API_ERROR(r, 403, "forbidden");
  r = call(port(), "POST", "/api/auth/login", {}, creds,
           {{"Origin", "http://127.0.0.1"}, {"Sec-Fetch-Site", "same-origin"}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = call(port(), "POST", "/api/auth/login", {}, creds,
           {{"Origin", "https://app.example"}, {"Sec-Fetch-Site", "cross-site"}});
  EXPECT_EQ(r.status, 200) << r.body;
}

// --- 14.4: framing (RFC 9112) --------------------------------------------------

/// Sends `raw` on a fresh connection: the one answer, and whether the
/// server closed the connection after it without answering anything else.
struct RawOutcome {
  std::optional<HttpResponse> first;
  std::optional<HttpResponse> second;
  bool closed = false;
};
RawOutcome send_raw(std::uint16_t port, const std::string& raw) {
  Conn c(port);
  c.send(raw);
  RawOutcome o;
  o.first = c.read_response(10s);
  o.second = c.read_response(2s);
  o.closed = c.closed_by_peer(5s);
  return o;
}

TEST_F(HttpSecurity, SmugglingWithChunkedThenGzipGetsOneAnswer) {
  // Before the fix: the body was taken for the next request (two answers).
  const std::string smuggled =
      "GET /api/auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
      "Bearer " +
      owner_ + "\r\nUser-Agent: " + kUA + "\r\n\r\n";
  for (const char* te : {"chunked, gzip", "chunked,identity", "gzip", "foo"}) {
    auto o = send_raw(
        port(), head("POST", "/api/auth/login",
                     {"Content-Type: application/json", std::string("Transfer-Encoding: ") + te}) +
                    smuggled);
    ASSERT_TRUE(o.first) << te;
    expect_error_body(*o.first, 400, "bad_request");
    EXPECT_EQ(o.first->header("connection"), "close") << te;
    EXPECT_FALSE(o.second) << te << ": a second answer (smuggled request served)";
    EXPECT_TRUE(o.closed) << te;
  }
}

TEST_F(HttpSecurity, FramingFaultsAre400AndClose) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"TE then CL",
       head("POST", "/__test/echo", {"Transfer-Encoding: chunked", "Content-Length: 5"}) +
           "0\r\n\r\n"},
      {"CL then TE",
       head("POST", "/__test/echo", {"Content-Length: 5", "Transfer-Encoding: chunked"}) +
           "0\r\n\r\n"},
      {"gzip then CL",
       head("POST", "/__test/echo", {"Transfer-Encoding: gzip", "Content-Length: 5"}) + "hello"},
      {"chunked twice",
       head("POST", "/__test/echo", {"Transfer-Encoding: chunked, chunked"}) + "0\r\n\r\n"},
      {"chunked on two lines",
       head("POST", "/__test/echo", {"Transfer-Encoding: chunked", "Transfer-Encoding: chunked"}) +
           "0\r\n\r\n"},
      {"empty TE", head("POST", "/__test/echo", {"Transfer-Encoding: ,"}) + "0\r\n\r\n"},
      {"differing CL list", head("POST", "/__test/echo", {"Content-Length: 5, 6"}) + "hello!"},
      {"differing CL lines",
       head("POST", "/__test/echo", {"Content-Length: 5", "Content-Length: 6"}) + "hello!"},
      {"two Host", head("GET", "/health/live", {"Host: evil.example"})},
      {"HTTP/1.0 with TE",
       "POST /__test/echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
  };
  for (const auto& [name, raw] : cases) {
    auto o = send_raw(port(), raw + head("GET", "/health/live", {}));
    ASSERT_TRUE(o.first) << name;
    EXPECT_EQ(o.first->status, 400) << name << ": " << o.first->body;
    EXPECT_FALSE(o.first->header("x-request-id").empty()) << name;
    EXPECT_FALSE(o.second) << name << ": answered the request after it";
    EXPECT_TRUE(o.closed) << name;
  }
  // Equal Content-Length values are one length (RFC 9110 8.6): accepted.
  Conn c(port());
  c.send(head("POST", "/__test/echo", {"Content-Length: 5, 5"}) + "hello");
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(num(obj(*r), "bytes"), 5);
}

TEST_F(HttpSecurity, UnimplementedTransferCodingIs501AndClose) {
  // RFC 9112 6.1: a coding the server does not understand -> 501. Only
  // chunked is implemented; before, gzip was silently ignored.
  for (const std::string& te :
       {std::string("Transfer-Encoding: gzip, chunked"),
        std::string("Transfer-Encoding: deflate,chunked"),
        std::string("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked")}) {
    auto o = send_raw(port(), head("POST", "/__test/echo", {te}) + "5\r\nhello\r\n0\r\n\r\n" +
                                  head("GET", "/health/live", {}));
    ASSERT_TRUE(o.first) << te;
    EXPECT_EQ(o.first->status, 501) << te << ": " << o.first->body;
    EXPECT_FALSE(o.second) << te;
    EXPECT_TRUE(o.closed) << te;
  }
  // Plain chunked still works, with a parameter-free last coding.
  Conn c(port());
  c.send(head("POST", "/__test/echo", {"Transfer-Encoding: chunked"}) + "5\r\nhello\r\n0\r\n\r\n");
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(num(obj(*r), "bytes"), 5);
}

// --- issue 19: CORS -------------------------------------------------------------

TEST_F(HttpSecurity, CorsPreflightForListedOriginsOnly) {
  Headers pre{{"Origin", "https://app.example"},
              {"Access-Control-Request-Method", "POST"},
              {"Access-Control-Request-Headers", "authorization, content-type"}};
  auto r = call(port(), "OPTIONS", "/api/invoices", {}, {}, pre);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.header("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(r.header("access-control-allow-credentials"), "true");
  auto methods = r.header("access-control-allow-methods");
  for (const char* m : {"GET", "POST", "PUT", "DELETE"})
    EXPECT_NE(methods.find(m), std::string::npos) << methods;
  auto allowed = r.header("access-control-allow-headers");
  EXPECT_NE(allowed.find("Authorization"), std::string::npos) << allowed;
  EXPECT_NE(allowed.find("Content-Type"), std::string::npos) << allowed;
  EXPECT_FALSE(r.header("access-control-max-age").empty());
  EXPECT_NE(r.header("vary").find("Origin"), std::string::npos);
  EXPECT_FALSE(r.header("x-request-id").empty());
  // The second listed origin too; not the CSRF-only one, not others.
  pre["Origin"] = "http://localhost:5173";
  EXPECT_EQ(
      call(port(), "OPTIONS", "/api/auth/login", {}, {}, pre).header("access-control-allow-origin"),
      "http://localhost:5173");
  for (const char* o : {"https://partner.example", "https://evil.example", "null"}) {
    pre["Origin"] = o;
    r = call(port(), "OPTIONS", "/api/invoices", {}, {}, pre);
    EXPECT_NE(r.status, 204) << o;
    EXPECT_TRUE(r.header("access-control-allow-origin").empty()) << o;
    EXPECT_TRUE(r.header("access-control-allow-credentials").empty()) << o;
  }
}

TEST_F(HttpSecurity, CorsHeadersOnResponsesToListedOrigins) {
  auto r = call(port(), "GET", "/api/auth/me", owner_, {}, {{"Origin", "https://app.example"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(r.header("access-control-allow-credentials"), "true");
  EXPECT_NE(r.header("access-control-expose-headers").find("X-Request-Id"), std::string::npos);
  EXPECT_NE(r.header("vary").find("Origin"), std::string::npos);
  // Errors too, so the front end can read them.
  r = call(port(), "GET", "/api/auth/me", {}, {}, {{"Origin", "https://app.example"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("access-control-allow-origin"), "https://app.example");
  // Not to other origins (credentials only for listed ones).
  r = call(port(), "GET", "/api/auth/me", owner_, {}, {{"Origin", "https://evil.example"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.header("access-control-allow-origin").empty());
  EXPECT_TRUE(r.header("access-control-allow-credentials").empty());
  EXPECT_NE(r.header("vary").find("Origin"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Per-address connection cap.

class HttpPerIpCap : public SharedStackTest<HttpPerIpCap> {
 public:
  static Env settings() { return {{"HTTP_MAX_CONNECTIONS_PER_IP", "4"}}; }
};

/// A connection from `source` (a loopback address such as 127.0.0.2) that
/// sends one GET and returns the status line's code (0: no answer).
int get_from(const char* source, std::uint16_t port, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string got;
    char buf[4096];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 10000) == 1) {
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    if (got.rfind("HTTP/1.1 ", 0) == 0) status = std::atoi(got.c_str() + 9);
  }
  ::close(fd);
  return status;
}

TEST_F(HttpPerIpCap, ConnectionsBeyondTheCapGet503AndClose) {
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Conn>(port()));
    ASSERT_TRUE(held.back()->ok());
  }
  // Accepted in order: the fifth from the same address is over the cap.
  Conn fifth(port());
  auto r = fifth.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 503, "service_unavailable");
  EXPECT_FALSE(r->header("retry-after").empty());
  EXPECT_TRUE(fifth.closed_by_peer(5s));
  // Another address is not affected.
  EXPECT_EQ(get_from("127.0.0.2", port(), "/health/live"), 200);
  // Spoofing X-Forwarded-For changes nothing (no TRUST_PROXY, and the cap
  // counts socket peers anyway).
  Conn spoof(port());
  spoof.send(head("GET", "/health/live", {"X-Forwarded-For: 10.1.2.3"}));
  r = spoof.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  // One held connection closes: its slot frees.
  held.pop_back();
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = get_from("127.0.0.1", port(), "/health/live");
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200);
}

// ---------------------------------------------------------------------------
// The process-wide body budget.

class HttpBodyBudget : public SharedStackTest<HttpBodyBudget> {
 public:
  static Env settings() {
    return {{"HTTP_BODY_MEMORY_BYTES", "2097152"}, {"UPLOAD_LIMIT_BYTES", "1048576"}};
  }
};

TEST_F(HttpBodyBudget, BodiesBeyondTheBudgetGet503) {
  EXPECT_EQ(metric(port(), "jeweler_http_body_bytes"), 0);
  // Two anonymous logins with 1 MiB bodies, all but the last byte sent:
  // each holds 1 MiB (memory grows with the bytes, capped at the limit).
  const std::string start = head("POST", "/api/auth/login",
                                 {"Content-Type: application/json", "Content-Length: 1048576"});
  const std::string almost(1048575, ' ');
  Conn a(port()), b(port());
  a.send(start + almost);
  b.send(start + almost);
  auto held = wait_metric(port(), "jeweler_http_body_bytes", [](double v) { return v >= 2097152; });
  ASSERT_EQ(held, 2097152) << "the two bodies should hold exactly the budget";
  // A third body finds the budget spent.
  Conn c(port());
  c.send(start + std::string(1000, ' '));
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 503, "service_unavailable");
  EXPECT_FALSE(r->header("retry-after").empty());
  EXPECT_TRUE(c.closed_by_peer(5s));
  // Bodies without a session never touch the budget: 401 as usual.
  auto u = call(port(), "POST", "/api/invoices", {}, "{}");
  EXPECT_EQ(u.status, 401);
  // The first body completes and is handled (parsed: not JSON -> 400).
  a.send("x");
  r = a.read_response(10s);
  ASSERT_TRUE(r);
  expect_error_body(*r, 400, "invalid_json");
  b.close();
  a.close();
  EXPECT_EQ(wait_metric(port(), "jeweler_http_body_bytes", [](double v) { return v == 0; }), 0);
  // And the budget serves again.
  EXPECT_EQ(login(port(), kClerk).status(), 200);
}

// ---------------------------------------------------------------------------
// The attack of finding 2: many anonymous connections trickling bodies.

class HttpBodyFlood : public SharedStackTest<HttpBodyFlood> {
 public:
  static constexpr long kBudgetMiB = 32;
  static Env settings() {
    return {{"HTTP_BODY_MEMORY_BYTES", std::to_string(kBudgetMiB << 20)},
            {"HTTP_MAX_CONNECTIONS_PER_IP", "2000"}};
  }
};

TEST_F(HttpBodyFlood, TricklingAnonymousBodiesKeepMemoryBoundedAndServeOthers) {
  const pid_t pid = stack_->server().pid();
  const auto token = token_of(port(), kOwner);
  // Warm up what a normal request allocates, then take the baseline.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(call(port(), "GET", "/api/auth/me", token).status, 200);
  const long base = proc_status_kib(pid, "VmRSS");
  ASSERT_GT(base, 0);

  // Wave 1: 250 connections announce 10 MiB uploads and trickle: each is
  // refused (401) without its body being read.
  constexpr int kUploads = 250;
  std::vector<std::unique_ptr<Conn>> wave1;
  for (int i = 0; i < kUploads; ++i) {
    wave1.push_back(std::make_unique<Conn>(port()));
    wave1.back()->send(
        head("POST", "/api/uploads", {"X-Filename: x.bin", "Content-Length: 10485760"}) +
        std::string(4096, 'z'));
  }
  int refused = 0;
  for (auto& c : wave1) {
    c->send(std::string(1024, 'z'));  // trickle
    auto r = c->read_response(10s);
    if (r && r->status == 401) ++refused;
  }
  EXPECT_EQ(refused, kUploads);
  const long after_uploads = proc_status_kib(pid, "VmRSS");

  // Wave 2: 150 anonymous logins (a route that reads bodies) send 960 KiB
  // of a 1 MiB body each and then trickle: 150 MB offered, the budget
  // (32 MiB) holds what is read; the rest get 503.
  constexpr int kLogins = 150;
  std::vector<std::unique_ptr<Conn>> wave2;
  const std::string chunk(960 << 10, ' ');
  for (int i = 0; i < kLogins; ++i) {
    wave2.push_back(std::make_unique<Conn>(port()));
    wave2.back()->send(head("POST", "/api/auth/login",
                            {"Content-Type: application/json", "Content-Length: 1048576"}) +
                       chunk);
  }
  // Collect the refusals first: a client that keeps sending after a 503
  // and close gets a reset, which may destroy the unread answer.
  std::this_thread::sleep_for(500ms);
  int busy = 0;
  std::vector<Conn*> trickling;
  for (auto& c : wave2) {
    auto r = c->read_response(20ms);  // (1 ms rounds down to no wait at all)
    if (r && r->status == 503)
      ++busy;
    else if (!r)
      trickling.push_back(c.get());
  }
  const long after_logins = proc_status_kib(pid, "VmRSS");
  long peak = std::max(after_uploads, after_logins);
  std::printf("[ figures ] RSS after the upload wave %ld KiB, after the login wave %ld KiB\n",
              after_uploads, after_logins);
  int served = 0;
  for (int round = 0; round < 10; ++round) {
    for (auto* c : trickling) c->send(" ");  // trickle a byte
    // A normal client, authenticated by Bearer, is served meanwhile.
    if (call(port(), "GET", "/api/auth/me", token).status == 200) ++served;
    if (call(port(), "GET", "/health/live").status == 200) ++served;
    peak = std::max(peak, proc_status_kib(pid, "VmRSS"));
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(served, 20);
  const double held = metric(port(), "jeweler_http_body_bytes");
  EXPECT_LE(held, static_cast<double>(kBudgetMiB << 20));
  EXPECT_GT(busy, 0) << "the budget should have refused some bodies";
  const long hwm = proc_status_kib(pid, "VmHWM");  // reported only: Argon2id at start-up and
                                                   // login takes 64 MiB for a moment
  peak = std::max(peak, proc_status_kib(pid, "VmRSS"));
  // The bound: the budget plus 64 MiB for everything else (connection
  // buffers, coroutine frames, allocator slack). Without the budget the
  // 150 bodies alone would take about 150 MiB.
  // Under ASan (JEWELER_SANITIZED, set by scripts/test.sh) freed memory
  // stays in the sanitizer's quarantine (256 MiB by default) and every
  // allocation carries red zones: that much more is allowed there.
  const long sanitizer_kib = std::getenv("JEWELER_SANITIZED") ? 256 * 1024 : 0;
  const long bound_kib = base + (kBudgetMiB + 64) * 1024 + sanitizer_kib;
  std::printf(
      "[ figures ] RSS base %ld KiB, peak %ld KiB (+%ld), VmHWM %ld KiB, body bytes held %.0f, "
      "%d of %d logins refused with 503 (%zu held), %d of %d uploads refused with 401\n",
      base, peak, peak - base, hwm, held, busy, kLogins, trickling.size(), refused, kUploads);
  EXPECT_LT(peak, bound_kib);
  wave1.clear();
  wave2.clear();
  EXPECT_EQ(wait_metric(port(), "jeweler_http_body_bytes", [](double v) { return v == 0; }), 0);
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", token).status, 200);
}

}  // namespace
}  // namespace e2e
