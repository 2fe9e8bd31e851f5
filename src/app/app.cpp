#include <jeweler/app/app.hpp>
#include <jeweler/app/redis_memory.hpp>
#include <jeweler/http/origin.hpp>
#include <jeweler/http/process_metrics.hpp>
#include <jeweler/http/server.hpp>

#include <boost/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <thread>

namespace jeweler::app {

using namespace std::chrono_literals;
namespace metrics = http::metrics;

std::string_view version() noexcept {
#ifdef JEWELER_VERSION
  return JEWELER_VERSION;
#else
  return "0.1.0";
#endif
}

namespace {

/// jeweler_redis_command_duration_seconds{command}: called on the client's
/// thread only, so the series cache needs no lock.
class CommandMetrics final : public redis::CommandObserver {
 public:
  explicit CommandMetrics(metrics::Family<metrics::Histogram>& f) : family_(f) {}
  void on_command(std::string_view name, std::chrono::nanoseconds latency, bool) override {
    auto it = cache_.find(name);
    if (it == cache_.end()) {
      std::string n(name);
      for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      it = cache_.emplace(std::string(name), &family_.with({n})).first;
    }
    it->second->observe(std::chrono::duration<double>(latency).count());
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  metrics::Family<metrics::Histogram>& family_;
  std::unordered_map<std::string, metrics::Histogram*, Hash, std::equal_to<>> cache_;
};

struct ThreadServices {
  std::unique_ptr<redis::Client> client;
  std::unique_ptr<ThreadContext> ctx;
  http::Router router;
  http::PipelineSlots slots;
  // Set when the thread drains: ends the Redis memory poller (thread 0).
  std::shared_ptr<std::atomic<bool>> stop_memory_poll = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace

redis::Status RedisStatus::read() const {
  redis::Status out;
  std::lock_guard lock(mu_);
  if (sources_.empty()) return out;
  bool ready = true;
  int rank = 3;  // the worst state of any thread: closed < connecting < reconnecting < ready
  auto rank_of = [](redis::State s) {
    switch (s) {
      case redis::State::closed:
        return 0;
      case redis::State::connecting:
        return 1;
      case redis::State::reconnecting:
        return 2;
      case redis::State::ready:
        return 3;
    }
    return 0;
  };
  out.state = redis::State::ready;
  for (const auto& src : sources_) {
    redis::Status s;  // no client yet: connecting
    if (src) s = src->read();
    if (s.state != redis::State::ready) ready = false;
    if (rank_of(s.state) < rank) {
      rank = rank_of(s.state);
      out.state = s.state;
    }
    if (s.stalled) out.stalled = true;
    out.last_ping_ms = std::max(out.last_ping_ms, s.last_ping_ms);
    out.reconnects += s.reconnects;
  }
  out.stalled = ready && out.stalled;
  return out;
}

struct App::Impl {
  ServerConfig config;
  RedisOrigin origin;
  metrics::Registry registry;
  SharedState shared;
  Readiness readiness;
  std::vector<RouteModule> modules;
  std::vector<std::unique_ptr<ThreadServices>> threads;
  std::unique_ptr<RedisStatus> redis_status;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

App::App(ServerConfig config, RedisOrigin origin) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->origin = origin;
  auto& r = impl_->registry;
  // Families other components fill (by these names and labels, through the
  // registry or a collector): present from the start.
  r.counter("jeweler_ratelimit_decisions_total", "Rate-limit decisions", {"policy", "decision"});
  r.counter("jeweler_cache_requests_total", "Cache lookups", {"namespace", "result"});
  r.gauge("jeweler_sessions_active", "Live sessions");
  r.counter("jeweler_http_requests_total", "HTTP requests answered", {"route", "method", "status"});
  r.histogram("jeweler_http_request_duration_seconds", "HTTP request duration (seconds)",
              {"route"});
  r.histogram("jeweler_redis_command_duration_seconds", "Redis command latency (seconds)",
              {"command"});
  // What operators look for first (issue 19): build info and process_*.
  metrics::add_build_info(
      r, "jeweler_build_info",
      {{"version", std::string(version())},
       {"compiler", fmt::format("gcc {}", __VERSION__)},
       {"boost", BOOST_LIB_VERSION},
       {"redis_mode", std::string(redis::to_string(impl_->config.redis.mode))}});
  metrics::add_process_collector(r);
}

App::~App() = default;

void App::add_module(RouteModule m) {
  impl_->modules.push_back(std::move(m));
}

metrics::Registry& App::metrics() noexcept {
  return impl_->registry;
}

int App::run() {
  auto& I = *impl_;
  const auto& cfg = I.config;

  // Signals first, so that an early SIGTERM is a graceful stop, not a kill.
  asio::io_context control;
  asio::signal_set signals(control, SIGINT, SIGTERM);

  http::Server server(cfg.http);
  if (auto r = server.listen(); !r) {
    std::fprintf(stderr, "jeweler-server: cannot listen on %s:%u: %s\n", cfg.http.host.c_str(),
                 static_cast<unsigned>(cfg.http.port), r.error().message().c_str());
    spdlog::critical("{{\"msg\":\"cannot listen\",\"host\":\"{}\",\"port\":{},\"error\":\"{}\"}}",
                     cfg.http.host, cfg.http.port, r.error().message());
    return 1;
  }
  const std::size_t n = server.threads();
  I.threads.resize(n);
  I.redis_status = std::make_unique<RedisStatus>(n);

  ProcessContext pc{cfg, I.registry, I.shared};
  for (auto& m : I.modules)
    if (m.init_process) m.init_process(pc);

  auto* redis_status = I.redis_status.get();
  I.registry.add_collector([redis_status](metrics::Writer& w) {
    const auto s = redis_status->read();  // the state /health reads
    w.gauge("jeweler_redis_up", "1 when every thread's Redis connection is ready", {},
            s.up() ? 1 : 0);
    w.counter("jeweler_redis_reconnects_total", "Redis reconnections after the first connect", {},
              static_cast<double>(s.reconnects));
  });
  I.registry.add_collector([&server](metrics::Writer& w) {
    w.gauge("jeweler_http_connections", "Open HTTP connections", {},
            static_cast<double>(server.connections()));
    w.gauge("jeweler_http_body_bytes",
            "Memory held by request bodies being read or handled (HTTP_BODY_MEMORY_BYTES budget)",
            {}, static_cast<double>(server.body_bytes()));
  });
  // Redis memory: thread 0 polls INFO every few seconds (not per scrape).
  auto redis_memory = std::make_shared<RedisMemory>();
  add_redis_memory_collector(I.registry, redis_memory);
  auto& protocol_errors = I.registry.counter(
      "jeweler_http_requests_total", "HTTP requests answered", {"route", "method", "status"});

  http::ThreadHooks hooks;
  hooks.init = [&I, &cfg, &protocol_errors, redis_memory](
                   std::size_t i, asio::any_io_executor ex) -> http::ThreadHandler {
    auto ts = std::make_unique<ThreadServices>();
    ts->client = redis::make_client(ex, cfg.redis);
    ts->client->set_observer(std::make_shared<CommandMetrics>(I.registry.histogram(
        "jeweler_redis_command_duration_seconds", "Redis command latency (seconds)", {"command"})));
    I.redis_status->set(i, ts->client->status_source());
    ts->ctx.reset(new ThreadContext{i,
                                    ex,
                                    *ts->client,
                                    cfg,
                                    I.registry,
                                    I.shared,
                                    ts->router,
                                    ts->slots,
                                    I.readiness,
                                    *I.redis_status,
                                    {}});
    add_ops_routes(*ts->ctx, I.started);
    if (!cfg.origins.cors.empty())
      ts->slots.cors = http::cors(std::make_shared<const http::OriginPolicy>(cfg.origins));
    for (auto& m : I.modules)
      if (m.init_thread) m.init_thread(*ts->ctx);
    // In cluster mode INFO would describe one node only: not exported.
    if (i == 0 && cfg.redis.mode != redis::Mode::cluster)
      asio::co_spawn(ex, poll_redis_memory(*ts->client, redis_memory, ts->stop_memory_poll, 5s),
                     asio::detached);
    auto access = spdlog::get("access");
    if (!access) access = spdlog::default_logger();
    http::ThreadHandler h;
    const auto* router = &ts->router;
    const std::size_t body_limit = cfg.http.body_limit;
    h.resolve = [router, body_limit](http::Request& req) {
      return router->resolve(req, body_limit);
    };
    h.handler = http::build_pipeline(ts->router, std::move(ts->slots), I.registry, access);
    h.on_protocol_error = [&protocol_errors, access](unsigned status, std::string_view id,
                                                     std::string_view peer, std::string_view why) {
      protocol_errors.with({"invalid", "OTHER", std::to_string(status)}).inc();
      access->warn(
          "{{\"msg\":\"request refused\",\"requestId\":\"{}\",\"status\":{},\"peer\":\"{}\","
          "\"reason\":\"{}\"}}",
          id, status, peer, why);
    };
    I.threads[i] = std::move(ts);
    return h;
  };
  hooks.drain = [&I](std::size_t i) -> asio::awaitable<void> {
    auto& ts = *I.threads[i];
    ts.stop_memory_poll->store(true);
    co_await ts.client->shutdown(2s);
  };
  hooks.teardown = [&I](std::size_t i) {
    auto& ts = I.threads[i];
    if (!ts) return;
    ts->ctx->owned.clear();  // services first: they use the client
    ts->client.reset();
  };

  // The start-up line: where it listens, which Redis (mode, address).
  const std::string url_host = cfg.http.host.find(':') != std::string::npos
                                   ? "[" + cfg.http.host + "]"  // IPv6 in a URL
                                   : cfg.http.host;
  std::string redis_desc =
      fmt::format("{} {}", redis::to_string(cfg.redis.mode), cfg.redis.describe());
  if (I.origin.embedded)
    redis_desc += fmt::format(" (embedded redis-server, pid {})", I.origin.embedded_pid);
  spdlog::info(
      "{{\"msg\":\"jeweler-server {} listening on http://{}:{} ({} threads), redis {}\","
      "\"host\":\"{}\",\"port\":{},\"threads\":{},\"redisMode\":\"{}\",\"redisAddress\":\"{}\","
      "\"redisEmbedded\":{},\"version\":\"{}\"}}",
      version(), url_host, server.port(), n, redis_desc, cfg.http.host, server.port(), n,
      redis::to_string(cfg.redis.mode), cfg.redis.describe(), I.origin.embedded, version());
  spdlog::default_logger()->flush();

  server.start(std::move(hooks));

  const auto deadline = cfg.shutdown_timeout;
  const auto drain_delay = cfg.shutdown_drain_delay;
  asio::steady_timer drain_timer(control);
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (I.readiness.shutting_down.exchange(true)) {
      spdlog::warn("{{\"msg\":\"second signal, exiting now\",\"signal\":{}}}", sig);
      spdlog::default_logger()->flush();
      std::_Exit(130);
    }
    auto begin_shutdown = [&server, deadline, sig] {
      spdlog::info(
          "{{\"msg\":\"shutting down: no new connections, finishing requests in flight\","
          "\"signal\":{},\"deadlineMs\":{}}}",
          sig, deadline.count());
      server.begin_shutdown(deadline);
    };
    if (drain_delay.count() > 0) {
      // SHUTDOWN_DRAIN_DELAY_MS: /health/ready already answers 503 (the flag
      // above); the listener keeps accepting and serving until load
      // balancers have taken this instance out, then the normal shutdown.
      spdlog::info(
          "{{\"msg\":\"draining: /health/ready answers 503, still serving\",\"signal\":{},"
          "\"drainDelayMs\":{}}}",
          sig, drain_delay.count());
      spdlog::default_logger()->flush();
      drain_timer.expires_after(drain_delay);
      drain_timer.async_wait([begin_shutdown](const boost::system::error_code& e) {
        if (!e) begin_shutdown();
      });
    } else {
      begin_shutdown();
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  std::thread joiner([&] {
    server.join();
    asio::post(control, [&] { control.stop(); });
  });
  control.run();
  joiner.join();
  I.threads.clear();
  spdlog::info("{\"msg\":\"jeweler-server stopped\"}");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace jeweler::app
