// The libraries log through jeweler::logger(), never spdlog's default
// logger (issue 19): an application's own output stays its own.
#include <jeweler/redis/client.hpp>
#include <jeweler/redis/log.hpp>

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

using namespace std::chrono_literals;

TEST(LibraryLog, DefaultIsQuietNamedAndNotSpdlogsDefault) {
  auto& l = jeweler::logger();
  EXPECT_EQ(l.name(), "jeweler");
  EXPECT_EQ(l.level(), spdlog::level::warn);
  EXPECT_NE(&l, spdlog::default_logger_raw());
  EXPECT_EQ(spdlog::get("jeweler"), nullptr);  // not taken from the app's registry
}

TEST(LibraryLog, ClientTroubleGoesToTheLoggerTheAppSets) {
  // The application's default logger: must receive nothing from the library.
  auto app_sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto app_default = std::make_shared<spdlog::logger>("app", app_sink);
  app_default->set_level(spdlog::level::trace);
  auto previous_default = spdlog::default_logger();
  spdlog::set_default_logger(app_default);

  auto lib_sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto lib = std::make_shared<spdlog::logger>("jeweler", lib_sink);
  lib->set_level(spdlog::level::info);
  jeweler::set_logger(lib);
  EXPECT_EQ(&jeweler::logger(), lib.get());

  {
    // Nothing listens on port 1: the client logs its connection errors.
    auto cfg = jeweler::redis::Config::from_url("redis://127.0.0.1:1");
    cfg.retry_base = 10ms;
    cfg.retry_max = 20ms;
    boost::asio::io_context io;
    auto client = jeweler::redis::make_client(io.get_executor(), cfg);
    io.run_for(300ms);
    client.reset();
    io.run_for(50ms);
  }
  auto lines = lib_sink->last_formatted();
  ASSERT_FALSE(lines.empty());
  bool mentions_redis = false;
  for (const auto& line : lines) mentions_redis |= line.find("redis") != std::string::npos;
  EXPECT_TRUE(mentions_redis);
  EXPECT_TRUE(app_sink->last_formatted().empty()) << app_sink->last_formatted().front();

  jeweler::set_logger(nullptr);  // back to the default
  EXPECT_EQ(jeweler::logger().level(), spdlog::level::warn);
  EXPECT_NE(&jeweler::logger(), lib.get());
  spdlog::set_default_logger(previous_default);
}
