// The platform API module: wiring only. What each piece does is in the file
// named after it (middleware.cpp, auth_routes.cpp, business_routes.cpp,
// admin_routes.cpp); docs/routes.md has the design.
#include <jeweler/app/routes/context.hpp>
#include <jeweler/app/routes/module.hpp>
#include <jeweler/core/private_files.hpp>
#include <jeweler/store/crypto.hpp>
#include <jeweler/store/demo_data.hpp>
#include <jeweler/store/sqlite_repository.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace jeweler::app::routes {

namespace {

store::Options store_options(const ServerConfig& cfg) {
  auto o = store::Options::from_env(cfg.lookup);
  o.database_path = cfg.database_path;
  o.upload_limit_bytes = static_cast<std::int64_t>(cfg.upload_limit);
  return o;
}

// The key of the log's email digests (docs/server.md, "Email digests in
// logs"): LOG_HASH_KEY when set; else the data directory's log-hash.key
// (hex), created once (0600) with 32 random bytes and reused on restart.
// Several processes starting together on one data directory agree: the
// file is created with O_EXCL and whoever loses the race reads it.
std::string load_log_hash_key(const ServerConfig& cfg) {
  if (cfg.log_hash_key) return *cfg.log_hash_key;
  std::filesystem::path dir = std::filesystem::path(cfg.database_path).parent_path();
  if (dir.empty()) dir = ".";
  if (auto ec = files::make_private_dirs(dir))
    throw std::runtime_error("cannot create the data directory " + dir.string() + ": " +
                             ec.message());
  const auto path = dir / "log-hash.key";
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      std::ifstream in(path);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.empty() && attempt < 2) {  // being written by another process
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      auto key = decode_key_text(text);
      if (!key)
        throw std::runtime_error(path.string() +
                                 " does not hold a key (16 to 64 bytes, hex): remove it to have "
                                 "a new one generated, or set LOG_HASH_KEY");
      if (files::readable_by_others(path))
        spdlog::warn("{{\"msg\":\"{} is readable by other users: chmod 600 it\"}}", path.string());
      return *key;
    }
    ec = files::write_private_file(path, store::crypto::random_hex(32) + "\n");
    if (!ec) continue;  // read back what was written
    if (ec != std::errc::file_exists)
      throw std::runtime_error("cannot write " + path.string() + ": " + ec.message());
  }
  throw std::runtime_error("cannot read " + path.string());
}

std::shared_ptr<Shared> make_shared_state(const ServerConfig& cfg) {
  auto s = std::make_shared<Shared>();
  s->session_options =
      std::make_shared<const session::Options>(session::Options::from_env(cfg.lookup));
  s->session_stats = std::make_shared<session::Stats>();
  s->cache_options = std::make_shared<const cache::Options>(cache::Options::from_env(cfg.lookup));
  s->cache_stats = std::make_shared<cache::Stats>();
  s->ratelimit_config = std::make_shared<const ratelimit::MiddlewareConfig>(
      ratelimit::MiddlewareConfig::from_env(cfg.lookup));
  s->ratelimit_stats = std::make_shared<ratelimit::Stats>();
  s->ratelimit_fallback = std::make_shared<ratelimit::Fallback>();
  s->cookie_secure = cfg.cookie_secure;
  s->upload_limit = static_cast<std::int64_t>(cfg.upload_limit);
  s->log_hash_key = load_log_hash_key(cfg);
  return s;
}

// /metrics: the services' process-wide counters, written into the families
// the registry pre-registered (docs/server.md, Metrics).
void add_collectors(http::metrics::Registry& registry, const std::shared_ptr<Shared>& s) {
  registry.add_collector([s](http::metrics::Writer& w) {
    for (const auto& [policy, c] : s->ratelimit_stats->snapshot()) {
      const char* help = "Rate-limit decisions by policy";
      w.counter("jeweler_ratelimit_decisions_total", help,
                {{"policy", policy}, {"decision", "allowed"}}, static_cast<double>(c.allowed));
      w.counter("jeweler_ratelimit_decisions_total", help,
                {{"policy", policy}, {"decision", "rejected"}}, static_cast<double>(c.rejected));
      w.counter("jeweler_ratelimit_decisions_total", help,
                {{"policy", policy}, {"decision", "unavailable"}},
                static_cast<double>(c.unavailable));
      w.counter("jeweler_ratelimit_fallback_total",
                "Rate-limit decisions made by the in-process fallback (Redis unreachable)",
                {{"policy", policy}}, static_cast<double>(c.fallback));
      w.counter("jeweler_ratelimit_errors_total",
                "Rate-limit checks that failed because Redis answered an error",
                {{"policy", policy}}, static_cast<double>(c.errors));
    }
    for (const auto& [ns, c] : s->cache_stats->by_namespace()) {
      const char* help = "Cache lookups by namespace and result";
      w.counter("jeweler_cache_requests_total", help, {{"namespace", ns}, {"result", "hit"}},
                static_cast<double>(c.hits));
      w.counter("jeweler_cache_requests_total", help, {{"namespace", ns}, {"result", "miss"}},
                static_cast<double>(c.misses));
      w.counter("jeweler_cache_errors_total", "Cache operations that failed (Redis, bad data)",
                {{"namespace", ns}}, static_cast<double>(c.errors));
    }
    const char* eval_help =
        "Credentials evaluated by kind (password verified, TOTP code compared, password reset "
        "accepted)";
    const auto& ev = *s->auth_evaluations;
    w.counter("jeweler_auth_evaluations_total", eval_help, {{"kind", "password"}},
              static_cast<double>(ev.password.load(std::memory_order_relaxed)));
    w.counter("jeweler_auth_evaluations_total", eval_help, {{"kind", "totp"}},
              static_cast<double>(ev.totp.load(std::memory_order_relaxed)));
    w.counter("jeweler_auth_evaluations_total", eval_help, {{"kind", "password_reset"}},
              static_cast<double>(ev.password_reset.load(std::memory_order_relaxed)));
    auto active = s->session_stats->last_active();
    if (active >= 0)
      w.gauge("jeweler_sessions_active", "Live sessions (all tenants)", {},
              static_cast<double>(active));
    auto sc = s->session_stats->snapshot();
    w.counter("jeweler_sessions_created_total", "Sessions created (logins)", {},
              static_cast<double>(sc.created));
    w.counter("jeweler_sessions_destroyed_total", "Sessions destroyed on request", {},
              static_cast<double>(sc.destroyed));
    w.counter("jeweler_sessions_expired_total", "Sessions found expired", {},
              static_cast<double>(sc.expired));
  });
}

// Thread 0 refreshes the live-session gauge every 10 s (one SCARD-like read
// per tenant index; see SessionService::active_sessions).
asio::awaitable<void> refresh_active_sessions(Services& s, const Readiness& readiness) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!readiness.shutting_down.load()) {
    auto r = co_await s.sessions.active_sessions();
    (void)r;  // failures are counted by the service; the gauge keeps its last value
    timer.expires_after(std::chrono::seconds(10));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) break;
  }
}

}  // namespace

void check_config(const ServerConfig& cfg) {
  session::Options::from_env(cfg.lookup).validate();
  (void)cache::Options::from_env(cfg.lookup);
  (void)ratelimit::MiddlewareConfig::from_env(cfg.lookup);
  (void)store_options(cfg);
}

RouteModule module() {
  RouteModule m;
  m.name = "platform";
  m.init_process = [](ProcessContext& p) {
    auto s = make_shared_state(p.config);
    store::crypto::init();
    auto repo = store::SqliteRepository::open(store_options(p.config));
    if (!repo)
      throw std::runtime_error("cannot open the database " + p.config.database_path + ": " +
                               repo.error().message());
    s->repo = std::shared_ptr<store::Repository>(std::move(*repo));
    if (p.config.demo_data) {
      auto loaded = store::load_demo_data(*s->repo, now_ms());
      if (!loaded)
        throw std::runtime_error("cannot create the demo data: " + loaded.error().message());
      // Debug: start-up prints one line (API.md section 7).
      spdlog::debug("{{\"msg\":\"{}\"}}", *loaded ? "demo data created (tenants aurum and argent)"
                                                  : "database holds data: demo data not created");
    }
    s->pool = std::make_shared<store::BlockingPool>(4);
    add_collectors(p.metrics, s);
    // /health: "rateLimit": {"status": "ok"|"unavailable"|"failing", "errors", ...}.
    auto health = p.shared.get<HealthChecks>();
    auto checks = std::make_shared<HealthChecks>(health ? *health : HealthChecks{});
    checks->checks.push_back({"rateLimit", [stats = s->ratelimit_stats](boost::json::object& o) {
                                auto h = stats->health();
                                o["status"] = h.status;
                                o["errors"] = h.errors;
                                o["consecutiveErrors"] = h.consecutive_errors;
                                return h.healthy();
                              }});
    p.shared.put(std::shared_ptr<HealthChecks>(std::move(checks)));
    p.shared.put(s);
  };
  m.init_thread = [](ThreadContext& t) {
    auto shared = t.shared.get<Shared>();
    auto& s = t.own(std::make_unique<Services>(t.redis, shared));
    install_middleware(t, s);
    add_auth_routes(t, s);
    add_business_routes(t, s);
    add_admin_routes(t, s);
    if (t.index == 0) {
      asio::co_spawn(t.executor, refresh_active_sessions(s, t.readiness), asio::detached);
      // One writer of this process' cache statistics to Redis (shared by
      // every process: the admin stats route reads them there).
      asio::co_spawn(t.executor, s.cache.run_stats_flusher(t.readiness.shutting_down),
                     asio::detached);
    }
  };
  return m;
}

}  // namespace jeweler::app::routes
