// The Redis client in an Asio application: connect, commands, a pipeline, a
// Lua script, graceful shutdown. Run: REDIS_URL=redis://127.0.0.1:6379 ./redis_client
// (any REDIS_* setting of README "Configuration"; see docs/redis.md).
#include <jeweler/redis/client.hpp>
#include <jeweler/redis/log.hpp>
#include <jeweler/redis/script.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <exception>

namespace asio = boost::asio;
namespace redis = jeweler::redis;
using namespace std::chrono_literals;

asio::awaitable<int> run(redis::Client& client) {
  // The client connects in the background; wait_ready is optional (commands
  // wait for a connection themselves, within REDIS_COMMAND_TIMEOUT_MS).
  if (!co_await client.wait_ready(5s)) {
    std::printf("redis is not reachable at %s\n", client.config().describe().c_str());
    co_return 1;
  }

  // One command. Named locals, then std::move: never a temporary inside a
  // co_await expression (the g++ 12 pitfall, README).
  auto set = redis::Command::make("SET", "example:greeting", "hello", "EX", 60);
  auto r = co_await client.exec(std::move(set));
  if (!r) {  // no reply: unavailable, timeout, connection_lost, ...
    std::printf("SET failed: %s\n", r.error().message().c_str());
    co_return 1;
  }
  if (r->is_error()) {  // Redis answered -ERR: data, not a failure of the client
    std::printf("SET refused: %s\n", r->str.c_str());
    co_return 1;
  }

  // A pipeline: several commands in one write, one reply each, in order.
  redis::Pipeline p;
  p.add(redis::Command::make("INCR", "example:counter"));
  p.add(redis::Command::make("INCR", "example:counter"));
  p.add(redis::Command::make("GET", "example:greeting"));
  auto replies = co_await client.exec(std::move(p));
  if (!replies || replies->size() != 3) co_return 1;
  std::printf("pipeline: counter=%lld greeting=%s\n", static_cast<long long>((*replies)[1].integer),
              (*replies)[2].str.c_str());

  // A Lua script: EVALSHA, and EVAL once if the server does not know it yet.
  static const redis::Script add_and_get(
      "add_and_get", "redis.call('INCRBY', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])");
  std::vector<std::string> keys = {"example:counter"};
  std::vector<std::string> args = {"40"};
  auto s = co_await client.eval(add_and_get, keys, args);
  if (!s || s->is_error()) co_return 1;
  std::printf("script: counter=%s\n", s->str.c_str());

  auto del = redis::Command::make("DEL", "example:greeting", "example:counter");
  co_await client.exec(std::move(del));

  // Graceful shutdown: no new commands, those in flight finish (up to 2 s),
  // then the connection closes. Until then the client's reconnect loop and
  // health pings keep io.run() busy, even while Redis is down.
  co_await client.shutdown(2s);
  co_return 0;
}

int main() {
  // The library logs through its own logger (stderr, warnings only by
  // default), never through spdlog's default logger.
  jeweler::logger().set_level(spdlog::level::warn);
  redis::Config cfg;
  try {
    cfg = redis::Config::from_env();  // throws redis::ConfigError naming the bad setting
  } catch (const redis::ConfigError& e) {
    std::fprintf(stderr, "configuration error: %s\n", e.what());
    return 2;
  }
  asio::io_context io;
  auto client = redis::make_client(io.get_executor(), cfg);
  int rc = 1;
  asio::co_spawn(io, run(*client), [&rc](std::exception_ptr e, int r) {
    if (!e) rc = r;
  });
  io.run();  // returns once run() finished and the client shut down
  std::printf("redis_client example: %s\n", rc == 0 ? "ok" : "failed");
  return rc;
}
