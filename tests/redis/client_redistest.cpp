// The Redis client against a real redis-server started by the harness.
#include <jeweler/redis/client.hpp>

#include "co_test.hpp"
#include "redis_server.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cmath>

using namespace jeweler;
using namespace jeweler::redis;
using namespace std::chrono_literals;
using namespace std::string_view_literals;
namespace asio = boost::asio;
using test::co_sleep;
using test::RedisServer;
using test::RedisServerOptions;
using test::run_co;

namespace {

RedisServer& shared_server() {
  static RedisServer server(RedisServerOptions{.extra_args = {"--enable-debug-command", "yes"}});
  return server;
}

asio::awaitable<Reply> must(Client& c, Command cmd) {
  auto r = co_await c.exec(std::move(cmd));
  if (!r) throw std::runtime_error("exec failed: " + r.error().message());
  co_return std::move(*r);
}

}  // namespace

TEST(RedisClient, BasicCommandsAndReplyTypesResp3) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());
    EXPECT_TRUE(co_await c->wait_ready(5s));
    EXPECT_EQ(c->health().protocol, 3);
    EXPECT_EQ((co_await must(*c, Command::make("SET", "t:k", "v"))).str, "OK");
    EXPECT_EQ((co_await must(*c, Command::make("GET", "t:k"))).str, "v");
    EXPECT_TRUE((co_await must(*c, Command::make("GET", "t:missing"))).is_nil());
    EXPECT_EQ((co_await must(*c, Command::make("INCRBY", "t:n", 5))).integer, 5);
    auto err = co_await must(*c, Command::make("INCR", "t:k"));
    EXPECT_TRUE(err.is_error());
    EXPECT_EQ(err.error_code(), "ERR");
    auto wrongtype = co_await must(*c, Command::make("LPUSH", "t:k", "x"));
    EXPECT_EQ(wrongtype.error_code(), "WRONGTYPE");
    co_await must(*c, Command::make("HSET", "t:h", "a", "1", "b", "2"));
    auto h = co_await must(*c, Command::make("HGETALL", "t:h"));
    EXPECT_TRUE(h.is_map());
    EXPECT_EQ(h.pairs().size(), 2u);
    auto d = co_await must(*c, Command::make("DEBUG", "PROTOCOL", "double"));
    EXPECT_EQ(d.type, ReplyType::double_number);
    EXPECT_NEAR(d.number, 3.141, 0.01);
    EXPECT_EQ((co_await must(*c, Command::make("DEBUG", "PROTOCOL", "true"))).type,
              ReplyType::boolean);
    EXPECT_EQ((co_await must(*c, Command::make("DEBUG", "PROTOCOL", "bignum"))).type,
              ReplyType::big_number);
    EXPECT_EQ((co_await must(*c, Command::make("DEBUG", "PROTOCOL", "set"))).type, ReplyType::set);
    EXPECT_EQ((co_await must(*c, Command::make("DEBUG", "PROTOCOL", "verbatim"))).type,
              ReplyType::verbatim_string);
    EXPECT_TRUE((co_await must(*c, Command::make("DEBUG", "PROTOCOL", "null"))).is_nil());
    auto attrib = co_await must(*c, Command::make("DEBUG", "PROTOCOL", "attrib"));
    EXPECT_TRUE(attrib.is_string()) << to_debug_string(attrib);
    // Binary-safe values.
    std::string bin("a\0b\r\nc", 6);
    co_await must(*c, Command::make("SET", "t:bin", bin));
    EXPECT_EQ((co_await must(*c, Command::make("GET", "t:bin"))).str, bin);
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, Resp2FallbackAndSelect) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.resp3 = false;
    cfg.db = 5;
    auto c = make_client(io.get_executor(), cfg);
    co_await must(*c, Command::make("SET", "t:db5", "x"));
    EXPECT_EQ(c->health().protocol, 2);
    auto h = co_await must(*c, Command::make("HSET", "t:h2", "f", "v"));
    (void)h;
    auto all = co_await must(*c, Command::make("HGETALL", "t:h2"));
    EXPECT_EQ(all.type, ReplyType::array);
    CO_ASSERT_EQ(all.pairs().size(), 1u);
    EXPECT_EQ(all.pairs()[0].second->str, "v");
    co_await c->shutdown(1s);
  });
  EXPECT_EQ(srv.cli({"-n", "5", "GET", "t:db5"}), "x");
  EXPECT_EQ(srv.cli({"GET", "t:db5"}), "");
}

TEST(RedisClient, TenThousandConcurrentCommandsInOrder) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());
    co_await c->wait_ready(5s);
    int ok = 0, bad = 0, finished = 0;
    constexpr int workers = 500, per_worker = 20;
    for (int w = 0; w < workers; ++w) {
      asio::co_spawn(
          io,
          [&, w]() -> asio::awaitable<void> {
            for (int i = 0; i < per_worker; ++i) {
              std::string key = "t:conc:" + std::to_string(w);
              std::string val = std::to_string(w) + ":" + std::to_string(i);
              Pipeline p;
              p.add(Command::make("SET", key, val)).add(Command::make("GET", key));
              auto r = co_await c->exec(std::move(p));
              if (r && r->size() == 2 && (*r)[1].str == val)
                ++ok;
              else
                ++bad;
              auto inc = co_await c->exec(Command::make("INCR", "t:conc:counter"));
              if (!inc || !inc->is_integer()) ++bad;
            }
            ++finished;
          },
          asio::detached);
    }
    while (finished < workers) co_await co_sleep(5ms);
    EXPECT_EQ(ok, workers * per_worker);
    EXPECT_EQ(bad, 0);
    auto n = co_await must(*c, Command::make("GET", "t:conc:counter"));
    EXPECT_EQ(n.to_integer(), workers * per_worker);
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, ScriptsSurviveScriptFlush) {
  auto& srv = shared_server();
  static const Script script("test-incr", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());
    std::vector<std::string> keys = {"t:script"};
    auto r1 = co_await c->eval(script, keys, std::vector<std::string>(1, "2"));
    CO_ASSERT_TRUE(r1);
    EXPECT_EQ(r1->integer, 2);
    co_await must(*c, Command::make("SCRIPT", "FLUSH"));
    auto r2 = co_await c->eval(script, keys, std::vector<std::string>(1, "3"));
    CO_ASSERT_TRUE(r2);
    EXPECT_EQ(r2->integer, 5) << to_debug_string(*r2);
    co_await must(*c, Command::make("SCRIPT", "FLUSH"));
    Pipeline p;
    std::vector<std::string> one = {"1"};
    p.add_eval(script, keys, one);
    p.add(Command::make("GET", "t:script"));
    p.add_eval(script, keys, one);
    auto r3 = co_await c->exec(std::move(p));
    CO_ASSERT_TRUE(r3);
    EXPECT_EQ((*r3)[0].integer, 6);
    EXPECT_EQ((*r3)[2].integer, 7);
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, KillNineThenReconnectWithoutRestart) {
  RedisServer srv;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.command_timeout = 3s;
    auto c = make_client(io.get_executor(), cfg);
    co_await must(*c, Command::make("SET", "k", "before"));
    // A blocking command is in flight when the server dies.
    Result<Reply> blocked = make_error_code(errc::invalid_argument);
    bool blocked_done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          blocked = co_await c->exec(Command::make("BLPOP", "nothing", 10));
          blocked_done = true;
        },
        asio::detached);
    co_await co_sleep(100ms);
    srv.kill9();
    while (!blocked_done) co_await co_sleep(5ms);
    CO_ASSERT_FALSE(blocked);
    EXPECT_EQ(blocked.error(), make_error_code(errc::connection_lost));
    EXPECT_TRUE(is_unavailable(blocked.error()));
    // While it is down: a clear "unavailable" (at the timeout), or
    // not_connected (at once, when a reconnection attempt was refused).
    auto down = co_await c->exec(Command::make("GET", "k"), ExecOptions{300ms});
    CO_ASSERT_FALSE(down);
    EXPECT_TRUE(down.error() == make_error_code(errc::unavailable) ||
                down.error() == make_error_code(errc::not_connected))
        << down.error().message();
    EXPECT_TRUE(is_unavailable(down.error()));
    EXPECT_NE(c->health().state, State::ready);
    srv.start();
    EXPECT_TRUE(co_await c->wait_ready(10s));
    auto after = co_await must(*c, Command::make("GET", "k"));
    EXPECT_EQ(after.str, "before");  // appendonly: same data
    EXPECT_GE(c->health().reconnects, 1u);
    EXPECT_FALSE(c->health().last_error.empty());
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, OnlyIdempotentCommandsAreReplayed) {
  RedisServer srv;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.health_interval = 60s;  // keep the pinger from dropping the stalled connection
    auto c = make_client(io.get_executor(), cfg);
    co_await must(*c, Command::make("SET", "k", "v"));
    srv.pause();
    Result<Reply> get_r = make_error_code(errc::invalid_argument);
    Result<Reply> incr_r = get_r;
    int done = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          get_r = co_await c->exec(Command::make("GET", "k"), ExecOptions{8s, true});
          ++done;
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          incr_r = co_await c->exec(Command::make("INCR", "counter"), ExecOptions{8s, false});
          ++done;
        },
        asio::detached);
    co_await co_sleep(200ms);  // both are written to the stalled server
    srv.kill9();
    srv.start();
    while (done < 2) co_await co_sleep(5ms);
    CO_ASSERT_TRUE(get_r);
    EXPECT_EQ(get_r->str, "v");
    CO_ASSERT_FALSE(incr_r);
    EXPECT_EQ(incr_r.error(), make_error_code(errc::connection_lost));
    EXPECT_EQ(srv.cli({"GET", "counter"}), "");  // never silently replayed
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, CommandTimeoutAgainstStalledServer) {
  RedisServer srv;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());
    co_await must(*c, Command::make("SET", "k", "v"));
    srv.pause();
    auto t0 = std::chrono::steady_clock::now();
    auto r = co_await c->exec(Command::make("GET", "k"), ExecOptions{300ms});
    auto waited = std::chrono::steady_clock::now() - t0;
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(errc::timeout));
    EXPECT_LT(waited, 5s);  // bounded, not a hang (generous: noisy machine)
    srv.resume();
    EXPECT_TRUE(co_await c->wait_ready(10s));
    auto ok = co_await c->exec(Command::make("GET", "k"), ExecOptions{5s});
    CO_ASSERT_TRUE(ok);
    EXPECT_EQ(ok->str, "v");
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, ClientPauseTimesOut) {
  RedisServer srv;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());
    co_await c->wait_ready(5s);
    srv.cli({"CLIENT", "PAUSE", "1500", "ALL"});
    auto r = co_await c->exec(Command::make("GET", "k"), ExecOptions{200ms});
    CO_ASSERT_FALSE(r);
    EXPECT_TRUE(is_unavailable(r.error()));
    co_await co_sleep(1600ms);
    EXPECT_TRUE(co_await c->wait_ready(10s));
    auto ok = co_await c->exec(Command::make("PING"), ExecOptions{5s});
    EXPECT_TRUE(ok);
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, WrongPasswordIsAClearErrorWithoutTightLoop) {
  RedisServer srv(RedisServerOptions{.password = "right-pw"});
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.password = "wrong-pw";
    cfg.retry_base = 50ms;
    cfg.retry_max = 400ms;
    auto c = make_client(io.get_executor(), cfg);
    auto r = co_await c->exec(Command::make("PING"), ExecOptions{3s});
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(errc::auth_failed));
    co_await co_sleep(1s);
    auto h = c->health();
    EXPECT_NE(h.state, State::ready);
    EXPECT_NE(h.last_error.find("authentication"), std::string::npos) << h.last_error;
    EXPECT_EQ(h.last_error.find("wrong-pw"), std::string::npos);  // no secrets
    EXPECT_LE(h.errors, 25u) << "reconnect loop too tight";
    co_await c->shutdown(1s);
  });
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());  // right password
    auto r = co_await c->exec(Command::make("PING"));
    CO_ASSERT_TRUE(r);
    EXPECT_EQ(r->str, "PONG");
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, AclUser) {
  RedisServer srv(RedisServerOptions{.acl_users = {"app on >app-pw ~app:* +@all"}});
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.username = "app";
    cfg.password = "app-pw";
    auto c = make_client(io.get_executor(), cfg);
    auto ok = co_await c->exec(Command::make("SET", "app:x", "1"));
    CO_ASSERT_TRUE(ok);
    EXPECT_EQ(ok->str, "OK");
    auto denied = co_await c->exec(Command::make("SET", "other:x", "1"));
    CO_ASSERT_TRUE(denied);
    EXPECT_EQ(denied->error_code(), "NOPERM");
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, Tls) {
  RedisServer srv(RedisServerOptions{.tls = true});
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    Config cfg = srv.config();
    cfg.endpoint = {"127.0.0.1", srv.tls_port()};
    cfg.tls.enabled = true;
    cfg.tls.ca_file = srv.ca_file();
    cfg.tls.cert_file = srv.client_cert_file();
    cfg.tls.key_file = srv.client_key_file();
    auto c = make_client(io.get_executor(), cfg);
    auto r = co_await c->exec(Command::make("SET", "tls", "yes"));
    CO_ASSERT_TRUE(r);
    EXPECT_EQ((co_await must(*c, Command::make("GET", "tls"))).str, "yes");
    co_await c->shutdown(1s);
  });
  // A server certificate the client does not trust is refused.
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    Config cfg = srv.config();
    cfg.endpoint = {"127.0.0.1", srv.tls_port()};
    cfg.tls.enabled = true;  // system CAs only
    auto c = make_client(io.get_executor(), cfg);
    auto r = co_await c->exec(Command::make("PING"), ExecOptions{500ms});
    EXPECT_FALSE(r);
    EXPECT_NE(c->health().last_error.find("TLS"), std::string::npos) << c->health().last_error;
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, UnixSocket) {
  RedisServer srv(RedisServerOptions{.unix_socket = true});
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = Config::from_url("unix://" + srv.unix_path());
    auto c = make_client(io.get_executor(), cfg);
    auto r = co_await c->exec(Command::make("PING"));
    CO_ASSERT_TRUE(r);
    EXPECT_EQ(r->str, "PONG");
    EXPECT_EQ(c->health().address, "unix:" + srv.unix_path());
    co_await c->shutdown(1s);
  });
}

TEST(RedisClient, GracefulShutdownLetsInFlightCommandsFinish) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());
    co_await c->wait_ready(5s);
    int ok = 0, finished = 0;
    for (int i = 0; i < 200; ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            auto r = co_await c->exec(Command::make("SET", "t:sd:" + std::to_string(i), i));
            if (r && r->str == "OK") ++ok;
            ++finished;
          },
          asio::detached);
    }
    // One slow command in flight too.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto r = co_await c->exec(Command::make("DEBUG", "SLEEP", "0.3"));
          if (r && !r->is_error()) ++ok;
          ++finished;
        },
        asio::detached);
    co_await co_sleep(1ms);
    co_await c->shutdown(5s);
    while (finished < 201) co_await co_sleep(1ms);
    EXPECT_EQ(ok, 201);
    EXPECT_EQ(c->health().state, State::closed);
    auto after = co_await c->exec(Command::make("PING"));
    CO_ASSERT_FALSE(after);
    EXPECT_EQ(after.error(), make_error_code(errc::shutting_down));
  });
}

TEST(RedisClient, BoundedQueueWhileDown) {
  RedisServer srv;
  srv.kill9();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.max_pending = 10;
    auto c = make_client(io.get_executor(), cfg);
    int unavailable = 0, full = 0, finished = 0;
    for (int i = 0; i < 30; ++i) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            auto r = co_await c->exec(Command::make("PING"), ExecOptions{200ms});
            // Queued until the first connection attempt is refused (circuit).
            if (!r && (r.error() == make_error_code(errc::unavailable) ||
                       r.error() == make_error_code(errc::not_connected)))
              ++unavailable;
            if (!r && r.error() == make_error_code(errc::queue_full)) ++full;
            ++finished;
          },
          asio::detached);
    }
    while (finished < 30) co_await co_sleep(5ms);
    EXPECT_EQ(unavailable, 10);
    EXPECT_EQ(full, 20);
    co_await c->shutdown(100ms);
  });
}

TEST(RedisClient, HealthReportsPingLatency) {
  auto& srv = shared_server();
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = make_client(io.get_executor(), srv.config());
    co_await c->wait_ready(5s);
    co_await co_sleep(600ms);  // health_interval is 200 ms in test configs
    auto h = c->health();
    EXPECT_EQ(h.state, State::ready);
    EXPECT_GE(h.last_ping_ms, 0.0);
    EXPECT_EQ(h.mode, Mode::standalone);
    co_await c->shutdown(1s);
  });
}
