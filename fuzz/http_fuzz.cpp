// libFuzzer target: the HTTP request path of jeweler-server, in process.
//
// The input is the bytes of one request as they come off the wire. They go
// through what the server does with a connection's bytes (server.cpp):
// Beast's request parser with the server's header limit, the target split
// into path and query (http::detail::parse_target), the Host check, the
// router's body limit (413), then the real middleware chain
// (http::build_pipeline) with the real platform module (src/app/routes:
// authentication, rate limiting, every route) and the ops routes, on a real
// redis-server (EmbeddedRedis, the server's own embedded mode) and a SQLite
// database with the demo data, all in a temporary directory.
//
// "@T@" in the input is replaced by a live session token of the demo admin
// (logged in at start, and again when a fuzzed request ended the session),
// so that the fuzzer reaches the handlers behind authentication.
//
// A request may be refused in any way, but never with a 500 (an exception
// or an internal error: Redis is up), never with a header value holding
// CR/LF, never without X-Request-Id, and every error is API.md's JSON shape
// {"error","message","requestId"}. A hang (30 s) is a failure too.
#include <jeweler/app/app.hpp>
#include <jeweler/app/config.hpp>
#include <jeweler/app/embedded_redis.hpp>
#include <jeweler/app/routes/module.hpp>
#include <jeweler/http/metrics.hpp>
#include <jeweler/http/pipeline.hpp>
#include <jeweler/http/router.hpp>
#include <jeweler/http/server.hpp>
#include <jeweler/redis/client.hpp>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace http = jeweler::http;
namespace app = jeweler::app;
using namespace std::chrono_literals;

struct Harness {
  std::string dir;
  std::unique_ptr<app::EmbeddedRedis> redis;
  app::ServerConfig cfg;
  http::metrics::Registry registry;
  app::SharedState shared;
  app::Readiness readiness;
  app::RedisStatus redis_status{1};  // /health reads the one client
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<jeweler::redis::Client> client;
  http::Router router;
  http::PipelineSlots slots;
  std::unique_ptr<app::ThreadContext> ctx;
  http::Handler handler;
  std::string token;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_tail;
};

Harness* H = nullptr;

[[noreturn]] void fail(const std::string& what, const http::Request* req = nullptr,
                       const http::Response* res = nullptr) {
  std::fprintf(stderr, "http fuzz: %s\n", what.c_str());
  if (req) std::fprintf(stderr, "request: %s %s\n", req->method.c_str(), req->target.c_str());
  if (res)
    std::fprintf(stderr, "response: %u %s\n", res->status, res->body.substr(0, 2000).c_str());
  if (H && H->log_tail)
    for (const auto& line : H->log_tail->last_formatted())
      std::fprintf(stderr, "log: %s", line.c_str());
  std::abort();
}

// Runs the chain on one request to completion on the harness's io_context.
http::Response call(http::Request& req) {
  std::optional<http::Response> out;
  std::exception_ptr error;
  bool done = false;
  auto work = H->handler(req);
  asio::co_spawn(H->io, std::move(work), [&](std::exception_ptr e, http::Response r) {
    error = e;
    if (!e) out = std::move(r);
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done) {
    H->io.run_one_for(100ms);
    if (!done && std::chrono::steady_clock::now() > deadline) fail("no answer within 30 s", &req);
  }
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      fail(std::string("exception out of the chain: ") + e.what(), &req);
    }
  }
  return std::move(*out);
}

http::Request make_request(std::string method, std::string target, std::string body = {}) {
  http::Request req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.peer_address = "127.0.0.1";
  req.peer_port = 40000;
  req.headers.add("Host", "localhost");
  req.headers.add("User-Agent", "jeweler-fuzz");
  if (!body.empty()) req.headers.add("Content-Type", "application/json");
  req.body = std::move(body);
  http::detail::parse_target(req);
  H->router.resolve(req, H->cfg.http.body_limit);
  return req;
}

void login() {
  auto req = make_request("POST", "/api/auth/login",
                          R"({"email":"owner@aurum.example","password":"aurum-owner-pw"})");
  auto res = call(req);
  if (res.status != 200) fail("demo login failed", &req, &res);
  auto v = boost::json::parse(res.body);
  H->token = std::string(v.as_object().at("token").as_string());
}

bool token_alive() {
  auto req = make_request("GET", "/api/auth/me");
  req.headers.add("Authorization", "Bearer " + H->token);
  return call(req).status == 200;
}

void init() {
  auto* h = new Harness;  // lives until exit (the redis-server child dies with us)
  H = h;
  h->log_tail = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(20);
  auto logger = std::make_shared<spdlog::logger>("fuzz", h->log_tail);
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(logger);

  char tmpl[] = "/tmp/jeweler-http-fuzz-XXXXXX";
  if (!mkdtemp(tmpl)) fail("mkdtemp failed");
  h->dir = tmpl;
  std::atexit([] {
    if (!H) return;
    if (H->redis) H->redis->stop();
    std::error_code ec;
    std::filesystem::remove_all(H->dir, ec);
  });
  h->redis = std::make_unique<app::EmbeddedRedis>(h->dir + "/redis");
  h->redis->start();

  const std::string redis_url = "unix://" + h->redis->socket_path();
  const std::string db = h->dir + "/jeweler.db";
  app::Lookup env = [&](std::string_view name) -> std::optional<std::string> {
    if (name == "REDIS_URL") return redis_url;
    if (name == "DATABASE_PATH") return db;
    if (name == "TRUST_PROXY") return std::string("127.0.0.1");
    if (name == "COOKIE_SECURE") return std::string("false");
    // The handlers, not the 429s, are what is fuzzed.
    if (name == "RATE_LIMIT_MAX_REQUESTS" || name == "RATE_LIMIT_TENANT_MAX" ||
        name == "RATE_LIMIT_AUTH_MAX" || name == "RATE_LIMIT_PASSWORD_RESET_MAX" ||
        name == "RATE_LIMIT_INVOICE_MAX" || name == "RATE_LIMIT_UPLOAD_MAX")
      return std::string("1000000000");
    return std::nullopt;
  };
  h->cfg = app::load_config(std::nullopt, env);
  h->cfg.demo_data = true;
  app::routes::check_config(h->cfg);

  auto module = app::routes::module();
  app::ProcessContext pc{h->cfg, h->registry, h->shared};
  module.init_process(pc);
  h->client = jeweler::redis::make_client(h->io.get_executor(), h->cfg.redis);
  h->redis_status.set(0, h->client->status_source());
  h->ctx.reset(new app::ThreadContext{0,
                                      h->io.get_executor(),
                                      *h->client,
                                      h->cfg,
                                      h->registry,
                                      h->shared,
                                      h->router,
                                      h->slots,
                                      h->readiness,
                                      h->redis_status,
                                      {}});
  app::add_ops_routes(*h->ctx, std::chrono::steady_clock::now());
  module.init_thread(*h->ctx);
  auto access = std::make_shared<spdlog::logger>("fuzz-access");  // no sinks: silent
  h->handler = http::build_pipeline(h->router, std::move(h->slots), h->registry, access);
  login();
}

bool header_safe(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void check(const http::Request& req, const http::Response& res) {
  if (res.status < 200 || res.status > 599) fail("status out of range", &req, &res);
  if (res.status == 500) fail("500 for a request", &req, &res);
  bool has_id = false;
  for (const auto& [name, value] : res.headers.all()) {
    if (!header_safe(name) || !header_safe(value)) fail("CR/LF/NUL in header " + name, &req, &res);
    if (http::iequals(name, "X-Request-Id")) has_id = !value.empty();
  }
  if (!has_id) fail("no X-Request-Id", &req, &res);
  if (res.status >= 400) {
    boost::system::error_code ec;
    auto v = boost::json::parse(res.body, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (!o || !o->contains("error") || !o->at("error").is_string() || !o->contains("message") ||
        !o->contains("requestId"))
      fail("error body not in API.md's shape", &req, &res);
  }
}

std::string substitute_token(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 64);
  for (std::size_t i = 0; i < in.size();) {
    if (in.compare(i, 3, "@T@") == 0) {
      out += H->token;
      i += 3;
    } else {
      out += in[i++];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    init();
  } catch (const std::exception& e) {
    fail(std::string("harness start-up failed: ") + e.what());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string wire =
      substitute_token(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string_view rest = wire;
  boost::system::error_code ec;

  // What the server's connection loop does (server.cpp, session()).
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(H->cfg.http.header_limit));
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.eager(false);
  auto feed = [&](bool header_only) -> bool {
    for (;;) {
      if (header_only ? parser.is_header_done() : parser.is_done()) return true;
      std::size_t n = rest.empty() ? 0 : parser.put(asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(n);
      if (ec == bhttp::error::need_more) ec = {};
      if (ec) return false;  // 400 / 431 from the server, nothing of ours ran
      if (n > 0) continue;
      // No progress: the input ends here, the peer closed.
      if (!parser.got_some()) return false;  // nothing sent: no request
      parser.put_eof(ec);
      return !ec && (header_only ? parser.is_header_done() : parser.is_done());
    }
  };
  if (!feed(true)) return 0;

  http::Request req;
  const auto& msg = parser.get();
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.version = msg.version();
  req.keep_alive = msg.keep_alive();
  for (const auto& f : msg) req.headers.add(std::string(f.name_string()), std::string(f.value()));
  req.peer_address = "127.0.0.1";
  req.peer_port = 40000;
  if (!http::detail::parse_target(req)) return 0;                     // 400
  if (req.version == 11 && !msg.count(bhttp::field::host)) return 0;  // 400
  std::size_t limit = H->cfg.http.body_limit;
  if (!req.rejection) limit = H->router.resolve(req, limit);
  const auto content_length = parser.content_length();
  if (content_length && *content_length > limit) {
    req.rejection = 413;
  } else if (!parser.is_done()) {
    parser.body_limit(limit);
    parser.eager(true);
    bool ok = feed(false);
    if (ec == bhttp::error::body_limit)
      req.rejection = 413;
    else if (!ok)
      return 0;  // malformed or unfinished body: 400 or nothing
    else
      req.body = std::move(parser.get().body());
  }

  http::Response res = call(req);
  check(req, res);
  static const bool verbose = std::getenv("JEWELER_FUZZ_VERBOSE") != nullptr;
  if (verbose)
    std::fprintf(stderr, "%s %s -> %u %.200s\n", req.method.c_str(), req.target.c_str(), res.status,
                 res.body.c_str());

  // A fuzzed logout or session revocation may have ended the harness's
  // session: log in again so the next inputs still reach the handlers.
  if (req.method != "GET" && req.method != "HEAD" && !token_alive()) login();
  return 0;
}
