// The application shell of jeweler-server: builds one set of services per
// thread (its own redis::Client, router and middleware chain), serves, and
// shuts down gracefully. Routes plug in as RouteModules:
//
//   app::RouteModule m;
//   m.name = "auth";
//   m.init_process = [](app::ProcessContext& p) {      // once, before the threads
//     p.shared.put(std::make_shared<MyFallbackLimiter>(...));  // thread-safe, shared
//   };
//   m.init_thread = [](app::ThreadContext& t) {        // on every thread
//     auto& sessions = t.own(std::make_unique<session::Service>(t.redis, ...));
//     t.slots.authenticate = make_auth_middleware(sessions);
//     t.router.post("/api/auth/login", [&sessions](http::Request& req) { ... },
//                   {.rate_limited = true});
//   };
//   app.add_module(std::move(m));
#pragma once

#include <jeweler/app/config.hpp>
#include <jeweler/http/metrics.hpp>
#include <jeweler/http/pipeline.hpp>
#include <jeweler/http/router.hpp>
#include <jeweler/redis/client.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include <any>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <typeindex>
#include <unordered_map>
#include <vector>

namespace jeweler::app {

namespace asio = boost::asio;

/// Process-wide, thread-safe objects shared by every thread's services
/// (statistics, in-process fallback state): one per type.
class SharedState {
 public:
  template <class T>
  void put(std::shared_ptr<T> v) {
    std::lock_guard lock(mu_);
    values_[std::type_index(typeid(T))] = std::move(v);
  }
  template <class T>
  std::shared_ptr<T> get() const {
    std::lock_guard lock(mu_);
    auto it = values_.find(std::type_index(typeid(T)));
    if (it == values_.end()) return nullptr;
    return std::any_cast<std::shared_ptr<T>>(it->second);
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::type_index, std::any> values_;
};

/// Parts of GET /health contributed by modules: put a
/// std::shared_ptr<HealthChecks> in SharedState during init_process. Each
/// check fills its object (shown under `name` in the /health body) and
/// returns false when the server cannot serve properly (/health is then 503
/// "degraded" even with Redis up).
struct HealthChecks {
  struct Check {
    std::string name;
    std::function<bool(boost::json::object&)> report;  // thread-safe
  };
  std::vector<Check> checks;
};

struct ProcessContext {
  const ServerConfig& config;
  http::metrics::Registry& metrics;
  SharedState& shared;
};

/// Whether the server can serve (for /health/ready and for routes that want
/// to refuse work during shutdown).
struct Readiness {
  std::atomic<bool> shutting_down{false};
};

/// The Redis state of the whole process: every thread's client, read at
/// read time. /health, /health/ready and jeweler_redis_up all call read(), so
/// they never disagree and never lag behind the clients.
class RedisStatus {
 public:
  explicit RedisStatus(std::size_t threads) : sources_(threads) {}
  void set(std::size_t thread, std::shared_ptr<const redis::StatusSource> s) {
    std::lock_guard lock(mu_);
    sources_.at(thread) = std::move(s);
  }
  /// Up when every thread's client is up (connected, not stalled); a thread
  /// whose client does not exist yet counts as connecting.
  redis::Status read() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const redis::StatusSource>> sources_;
};

struct ThreadContext {
  std::size_t index;               // 0 .. threads-1
  asio::any_io_executor executor;  // this thread's io_context
  redis::Client& redis;            // this thread's client: use it only from this thread
  const ServerConfig& config;
  http::metrics::Registry& metrics;  // thread-safe, process-wide
  SharedState& shared;               // filled by init_process
  http::Router& router;              // register this thread's routes here
  http::PipelineSlots& slots;        // authenticate / rate_limit / extra
  const Readiness& readiness;
  const RedisStatus& redis_status;  // the process-wide Redis state (thread-safe)

  /// Keeps a per-thread service alive as long as the thread serves (it is
  /// destroyed on the thread, after the Redis client closed).
  template <class T>
  T& own(std::unique_ptr<T> p) {
    T& ref = *p;
    owned.push_back(std::shared_ptr<void>(std::move(p)));
    return ref;
  }
  std::vector<std::shared_ptr<void>> owned;
};

struct RouteModule {
  std::string name;
  std::function<void(ProcessContext&)> init_process;  // optional
  std::function<void(ThreadContext&)> init_thread;
};

/// Describes where Redis is, for the start-up line ("embedded" when so).
struct RedisOrigin {
  bool embedded = false;
  int embedded_pid = -1;
};

class App {
 public:
  explicit App(ServerConfig config, RedisOrigin origin = {});
  ~App();
  void add_module(RouteModule m);
  http::metrics::Registry& metrics() noexcept;

  /// Listens, serves until SIGTERM/SIGINT, shuts down gracefully. Returns
  /// the process exit code (0 after a clean shutdown; 1 if it cannot listen).
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The built-in operational routes (/health, /health/live, /health/ready,
/// /metrics) — registered on every thread by App.
void add_ops_routes(ThreadContext& t, std::chrono::steady_clock::time_point started);

/// Test-only routes, registered when JEWELER_TEST_ROUTES=1 (docs/server.md).
RouteModule test_routes_module();

std::string_view version() noexcept;

}  // namespace jeweler::app
