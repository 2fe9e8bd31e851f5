// HTTP-level tests of the real jeweler-server binary against a
// harness-started Redis: routing, limits, malformed requests, request ids,
// error shape, health and metrics. One server for the whole suite.
#include "http_support.hpp"

#include <redis_server.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <thread>

using namespace jeweler::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

class Server : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = std::make_unique<RedisServer>();
    server_ = std::make_unique<ServerProcess>(Env{{"REDIS_URL", redis_->url()},
                                                  {"HTTP_HEADER_TIMEOUT_MS", "700"},
                                                  {"HTTP_IDLE_TIMEOUT_MS", "1500"},
                                                  {"REDIS_KEY_PREFIX", "t6:"}});
    port_ = server_->wait_listening();
  }
  static void TearDownTestSuite() {
    if (server_) {
      server_->signal(SIGTERM);
      server_->wait_exit(20s);
    }
    server_.reset();
    redis_.reset();
  }
  void SetUp() override {
    ASSERT_NE(port_, 0) << server_->output();
    ASSERT_TRUE(server_->running()) << server_->output();
  }
  static std::optional<HttpResponse> get(const std::string& target,
                                         std::map<std::string, std::string> headers = {}) {
    return http_request(port_, "GET", target, headers);
  }
  static void expect_error_shape(const HttpResponse& r, const std::string& code) {
    EXPECT_EQ(r.header("content-type"), "application/json; charset=utf-8");
    auto v = json::parse(r.body).as_object();
    EXPECT_EQ(v.at("error").as_string(), code) << r.body;
    EXPECT_TRUE(v.at("message").is_string()) << r.body;
    EXPECT_EQ(v.at("requestId").as_string(), r.header("x-request-id")) << r.body;
  }
  static inline std::unique_ptr<RedisServer> redis_;
  static inline std::unique_ptr<ServerProcess> server_;
  static inline std::uint16_t port_ = 0;
};

bool is_generated_id(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

TEST_F(Server, StartupLineNamesAddressAndRedis) {
  auto out = server_->output();
  EXPECT_NE(out.find("listening on http://127.0.0.1:" + std::to_string(port_)), std::string::npos)
      << out;
  EXPECT_NE(out.find("redis standalone redis://127.0.0.1:" + std::to_string(redis_->port())),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("embedded"), std::string::npos) << out;
  EXPECT_NE(out.find("\"redisEmbedded\":false"), std::string::npos) << out;
}

TEST_F(Server, NotFoundAndMethodNotAllowed) {
  auto r = get("/no/such/thing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  expect_error_shape(*r, "not_found");

  r = http_request(port_, "DELETE", "/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("allow"), "GET, HEAD");
  expect_error_shape(*r, "method_not_allowed");

  r = http_request(port_, "POST", "/__test/items/7");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("allow"), "DELETE, GET, HEAD");

  r = http_request(port_, "HEAD", "/health/live");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
}

TEST_F(Server, PathParametersAndQueryAreDecoded) {
  auto r = get("/__test/items/a%20b%2Fc?x=1&y=%41%42&z=a+b&x=2");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = json::parse(r->body).as_object();
  EXPECT_EQ(v.at("id").as_string(), "a b/c");
  auto q = v.at("query").as_object();
  EXPECT_EQ(q.at("x").as_string(), "1");  // first value wins
  EXPECT_EQ(q.at("y").as_string(), "AB");
  EXPECT_EQ(q.at("z").as_string(), "a b");
}

TEST_F(Server, BadPercentEncodingIs400) {
  for (std::string target : {"/__test/items/%zz", "/__test/items/abc%", "/__test/items/%00",
                             "/health%2", "/__test/items/1?x=%G0"}) {
    auto r = get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 400) << target;
    expect_error_shape(*r, "bad_request");
  }
}

TEST_F(Server, RequestIdEchoedOrGenerated) {
  auto r = get("/health/live", {{"X-Request-Id", "client-req.42_A"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("x-request-id"), "client-req.42_A");
  std::string long_ok(128, 'a');
  r = get("/health/live", {{"X-Request-Id", long_ok}});
  EXPECT_EQ(r->header("x-request-id"), long_ok);
  for (std::string bad : {std::string(129, 'a'), std::string("has space"),
                          std::string("semi;colon"), std::string("a/b"), std::string("\xc3\xa9")}) {
    r = get("/health/live", {{"X-Request-Id", bad}});
    ASSERT_TRUE(r);
    EXPECT_TRUE(is_generated_id(r->header("x-request-id"))) << bad;
  }
  r = get("/health/live");
  EXPECT_TRUE(is_generated_id(r->header("x-request-id")));
  // On errors too, and in the body.
  r = get("/nope", {{"X-Request-Id", "trace-404"}});
  EXPECT_EQ(r->header("x-request-id"), "trace-404");
  EXPECT_EQ(json::parse(r->body).at("requestId").as_string(), "trace-404");
}

TEST_F(Server, InternalErrorsDoNotLeak) {
  auto r = get("/__test/throw");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  expect_error_shape(*r, "internal");
  EXPECT_EQ(r->body.find("SECRET"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("ERR"), std::string::npos) << r->body;
  EXPECT_TRUE(server_->running());
}

TEST_F(Server, ApiResponsesAreNotCacheable) {
  auto r = get("/api/__test/ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("cache-control"), "no-store");
  EXPECT_EQ(r->header("content-type"), "application/json; charset=utf-8");
  r = get("/api/does-not-exist");
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->header("cache-control"), "no-store");
  r = get("/health/live");
  EXPECT_EQ(r->header("cache-control"), "");
}

TEST_F(Server, OversizedBodyRefusedBeforeReading) {
  // Only the head is sent: the 413 must come without the body.
  Conn c(port_);
  c.send(
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 2000000\r\n\r\n");
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  expect_error_shape(*r, "payload_too_large");
  EXPECT_TRUE(c.closed_by_peer(5s));

  // Just under the limit is fine; the upload route allows more.
  std::string mib(1 << 20, 'x');
  r = http_request(port_, "POST", "/__test/echo", {}, mib);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = http_request(port_, "POST", "/__test/echo", {}, mib + "x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  std::string three(3 << 20, 'y');
  r = http_request(port_, "POST", "/__test/upload", {}, three);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(json::parse(r->body).at("bytes").as_int64(), 3 << 20);
}

TEST_F(Server, OversizedChunkedBodyIs413) {
  Conn c(port_);
  c.send("POST /__test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk(64 * 1024, 'z');
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  for (int i = 0; i < 20; ++i) c.send(std::string(size) + chunk + "\r\n");
  c.send("0\r\n\r\n");
  auto r = c.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(Server, HugeHeaderBlockIs431) {
  Conn c(port_);
  std::string req = "GET /health/live HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 20; ++i)
    req += "X-Filler-" + std::to_string(i) + ": " + std::string(1000, 'h') + "\r\n";
  req += "\r\n";
  c.send(req);
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_FALSE(r->header("x-request-id").empty());
  // 15 KiB of headers is still fine.
  std::map<std::string, std::string> h;
  for (int i = 0; i < 15; ++i) h["X-Filler-" + std::to_string(i)] = std::string(1000, 'h');
  auto ok = get("/health/live", h);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(Server, SlowHeadersGet408AndClose) {
  Conn c(port_);
  c.send("GET /health/live HTTP/1.1\r\nHost: x\r\n");  // never finished
  auto r = c.read_response(5s);                        // header timeout is 700 ms
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c.closed_by_peer(3s));
  // Trickling bytes does not extend the deadline.
  Conn t(port_);
  std::string head = "GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  t.send(head);
  std::optional<HttpResponse> tr;
  for (int i = 0; i < 30 && !tr; ++i) {
    t.send("a");
    std::this_thread::sleep_for(100ms);
    if (t.closed_by_peer(1ms)) break;
  }
  tr = t.read_response(3s);
  if (tr) {
    EXPECT_EQ(tr->status, 408);
  }
  EXPECT_TRUE(t.closed_by_peer(3s));
}

TEST_F(Server, KeepAliveAndPipeliningInOrder) {
  Conn c(port_);
  std::string reqs;
  for (int i = 1; i <= 5; ++i)
    reqs += "GET /__test/items/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  reqs += "GET /__test/slow?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n";
  reqs += "GET /__test/items/last HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(reqs);
  for (int i = 1; i <= 5; ++i) {
    auto r = c.read_response(5s);
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(json::parse(r->body).at("id").as_string(), std::to_string(i));
  }
  auto slow = c.read_response(5s);
  ASSERT_TRUE(slow);
  EXPECT_EQ(json::parse(slow->body).at("sleptMs").as_int64(), 50);
  auto last = c.read_response(5s);
  ASSERT_TRUE(last);
  EXPECT_EQ(json::parse(last->body).at("id").as_string(), "last");
  // Still open for another request...
  c.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(c.read_response(5s));
  // ...and closed by the server after the idle timeout (1.5 s).
  EXPECT_TRUE(c.closed_by_peer(6s));
}

TEST_F(Server, Http11RequiresAHostHeader) {
  Conn c(port_);  // RFC 9112 section 3.2: 400 for an HTTP/1.1 request without Host
  c.send("GET /health/live HTTP/1.1\r\n\r\n");
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  Conn old(port_);  // HTTP/1.0 has no such rule
  old.send("GET /health/live HTTP/1.0\r\n\r\n");
  auto o = old.read_response(5s);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, 200);
}

TEST_F(Server, ResponsesLargerThanTheSendBufferArriveWhole) {
  // More than the socket's send buffer takes at once: a client that reads
  // only after a pause gets every byte in order, and the connection serves
  // the next request.
  Conn c(port_);
  constexpr std::size_t kBytes = 24u << 20;
  c.send("GET /__test/big?bytes=" + std::to_string(kBytes) + " HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(300ms);  // the server's send buffer fills meanwhile
  auto r = c.read_response(30s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(r->body.size(), kBytes);
  bool pattern = true;
  for (std::size_t i = 0; i < kBytes && pattern; i += 4093)
    pattern = r->body[i] == static_cast<char>('a' + i % 26);
  EXPECT_TRUE(pattern);
  EXPECT_EQ(r->body.back(), static_cast<char>('a' + (kBytes - 1) % 26));
  c.send("GET /__test/items/after HTTP/1.1\r\nHost: x\r\n\r\n");
  auto next = c.read_response(5s);
  ASSERT_TRUE(next);
  EXPECT_EQ(json::parse(next->body).at("id").as_string(), "after");
}

TEST_F(Server, MalformedCorpusKeepsServerServing) {
  const std::string big(70000, 'A');
  std::vector<std::string> corpus = {
      "\r\n\r\n",
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET /\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET / HTTP/1.1.1\r\n\r\n",
      "GET / HTTX/1.1\r\nHost: x\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost x\r\n\r\n",
      "GET / HTTP/1.1\r\n: novalue\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\nffffffffffffffffff\r\n",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, foo\r\n\r\n",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: "
      "3\r\n\r\n0\r\n\r\n",
      std::string("GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n", 27),
      std::string("GET / HTTP/1.1\r\nHost: \0x\r\n\r\n", 28),
      "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\nHost: x\n\n",
      "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
      "GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET relative/path HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /%%% HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
      "G\xc3\x89T / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /" + big + " HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nX-Big: " + big + "\r\n\r\n",
      "GET / HTTP/1.1\r\n" + std::string(20000, '\n'),
      std::string(100, '\0'),
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  // a TLS ClientHello
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",              // HTTP/2 preface
      "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, close, upgrade\r\nUpgrade: "
      "websocket\r\n\r\n",
      "DELETE /__test/items/%2e%2e%2f HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /health?%=%&&==&a=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + std::string(5000, 'r') + "\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTrailer: "
      "x\r\n\r\n",
      "POST /__test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3;ext=\"x\r\nabc\r\n0\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\n\r\n",
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
      "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /health HTTP/1.0\r\n\r\n",
      "get /health HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE AFTER\r\n\r\n",
  };
  ASSERT_GE(corpus.size(), 50u);
  int answered = 0;
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    Conn c(port_);
    ASSERT_TRUE(c.ok()) << "connection refused before case " << i;
    c.send(corpus[i]);
    // Each gets an answer (400 / 404 / 408 / 413 / 431 / ...) or a clean
    // close; none may take the server down.
    auto r = c.read_response(3s);
    if (r) {
      ++answered;
      EXPECT_LT(r->status, 500) << "case " << i << " got " << r->status;
    }
    c.close();
    ASSERT_TRUE(server_->running()) << "server died on case " << i << "\n" << server_->output();
  }
  EXPECT_GT(answered, 40);
  auto ok = get("/health/live");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(Server, HealthWhileRedisUp) {
  std::optional<HttpResponse> r;
  // The first PING may not have happened yet right after start-up.
  for (int i = 0; i < 50; ++i) {
    r = get("/health");
    if (r && r->status == 200) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = json::parse(r->body).as_object();
  EXPECT_EQ(v.at("status").as_string(), "ok");
  auto redis = v.at("redis").as_object();
  EXPECT_EQ(redis.at("status").as_string(), "up");
  EXPECT_EQ(redis.at("mode").as_string(), "standalone");
  EXPECT_TRUE(redis.at("latencyMs").is_number());
  EXPECT_GE(redis.at("latencyMs").to_number<double>(), 0.0);
  EXPECT_TRUE(v.at("uptimeSeconds").is_int64());
  EXPECT_FALSE(v.at("version").as_string().empty());
  EXPECT_EQ(get("/health/ready")->status, 200);
  EXPECT_EQ(get("/health/live")->status, 200);
  auto rr = get("/__test/redis");
  EXPECT_EQ(rr->status, 200) << rr->body;
  EXPECT_EQ(redis_->cli({"GET", "t6:test:probe"}).empty(), false);  // the key prefix is used
}

TEST_F(Server, MetricsExposition) {
  ASSERT_EQ(get("/health/live")->status, 200);
  ASSERT_EQ(get("/__test/redis")->status, 200);
  std::this_thread::sleep_for(400ms);  // the redis state is published every 250 ms
  auto r = get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->header("content-type").find("text/plain; version=0.0.4"), std::string::npos);
  for (const char* name :
       {"# TYPE jeweler_http_requests_total counter",
        "# TYPE jeweler_http_request_duration_seconds histogram",
        "# TYPE jeweler_ratelimit_decisions_total counter",
        "# TYPE jeweler_cache_requests_total counter", "# TYPE jeweler_sessions_active gauge",
        "# TYPE jeweler_redis_command_duration_seconds histogram",
        "# TYPE jeweler_redis_reconnects_total counter", "# TYPE jeweler_redis_up gauge",
        "jeweler_http_requests_total{route=\"/health/live\",method=\"GET\",status=\"200\"} ",
        "jeweler_http_request_duration_seconds_bucket{route=\"/health/live\",le=\"+Inf\"} ",
        "jeweler_redis_command_duration_seconds_count{command=\"INCR\"} ", "jeweler_redis_up 1\n"})
    EXPECT_NE(r->body.find(name), std::string::npos) << name << "\n" << r->body;
  // Unmatched paths do not create one series per path.
  get("/random/path/123");
  r = get("/metrics");
  EXPECT_EQ(r->body.find("/random/path/123"), std::string::npos);
  EXPECT_NE(r->body.find("route=\"unmatched\""), std::string::npos);
}
