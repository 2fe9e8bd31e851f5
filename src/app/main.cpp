// jeweler-server [--config FILE] [--demo-data] [--help] [--version]
#include <jeweler/app/app.hpp>
#include <jeweler/app/config.hpp>
#include <jeweler/app/console/console.hpp>
#include <jeweler/app/embedded_redis.hpp>
#include <jeweler/app/help.hpp>
#include <jeweler/http/json_log.hpp>
#include <jeweler/redis/log.hpp>

#ifdef JEWELER_HAVE_APP_ROUTES
#include <jeweler/app/routes/module.hpp>
#endif

#include <boost/asio/io_context.hpp>

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>

namespace {

constexpr const char* usage =
    "usage: jeweler-server [--config FILE] [--demo-data] [--help] [--version]\n"
    "(--help lists every setting)\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace jeweler;
  std::signal(SIGPIPE, SIG_IGN);
  // Whatever the server (or a child it starts) creates is readable by its
  // user alone (API.md section 6); the store and the embedded Redis also set
  // the modes explicitly.
  ::umask(077);
  std::optional<std::string> config_file;
  bool demo_data = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(app::help_text().c_str(), stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("jeweler-server %s\n", std::string(app::version()).c_str());
      return 0;
    }
    if (a == "--demo-data") {
      demo_data = true;
    } else if (a == "--config" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a.starts_with("--config=")) {
      config_file = a.substr(9);
    } else if (a == "--config") {
      std::fprintf(stderr, "jeweler-server: --config needs a FILE\n%s", usage);
      return 2;
    } else {
      std::fprintf(stderr, "jeweler-server: unknown argument '%s'\n%s", a.c_str(), usage);
      return 2;
    }
  }

  app::ServerConfig cfg;
  try {
    cfg = app::load_config(config_file);
    cfg.demo_data = demo_data;
#ifdef JEWELER_HAVE_APP_ROUTES
    app::routes::check_config(cfg);  // session, cache, rate-limit, store settings
#endif
    http::setup_json_logging(cfg.log_level);
    // Refuses a Redis mode this build cannot run, naming the setting (a
    // client that is never run; its log lines are muted).
    auto level = jeweler::logger().level();
    jeweler::logger().set_level(spdlog::level::off);
    {
      boost::asio::io_context probe;
      try {
        redis::make_client(probe.get_executor(), cfg.redis).reset();
      } catch (...) {
        jeweler::logger().set_level(level);
        throw;
      }
    }
    jeweler::logger().set_level(level);
    spdlog::flush_every(std::chrono::seconds(1));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jeweler-server: configuration error: %s\n", e.what());
    return 2;
  }

  std::unique_ptr<app::EmbeddedRedis> embedded;
  app::RedisOrigin origin;
  if (app::use_embedded_redis(cfg)) {
    auto dir = std::filesystem::path(cfg.database_path).parent_path();
    if (dir.empty()) dir = ".";
    try {
      embedded = std::make_unique<app::EmbeddedRedis>(dir.string());
      embedded->start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "jeweler-server: cannot start the embedded redis-server: %s\n",
                   e.what());
      return 1;
    }
    cfg.redis.mode = redis::Mode::standalone;
    cfg.redis.unix_path = embedded->socket_path();
    origin.embedded = true;
    origin.embedded_pid = embedded->pid();
  }

  int rc = 0;
  try {
    const bool test_routes = cfg.test_routes;
    app::App application(std::move(cfg), origin);
    if (test_routes) application.add_module(app::test_routes_module());
#ifdef JEWELER_HAVE_APP_ROUTES
    application.add_module(app::routes::module());
#endif
    application.add_module(app::console::module());  // GET /, /console/ (docs/console.md)
    rc = application.run();
  } catch (const std::exception& e) {
    spdlog::critical("{{\"msg\":\"fatal error at start-up\",\"error\":\"{}\"}}", e.what());
    std::fprintf(stderr, "jeweler-server: fatal: %s\n", e.what());
    rc = 1;
  }
  if (embedded) embedded->stop();
  return rc;
}
