// The Redis client under injected faults (docs/RELIABILITY.md): a real
// redis-server behind the fault-injecting proxy of tests/support (delay,
// drop, blackhole, a reply cut mid-frame, reset), a killed and a frozen
// server. Each command answers (a reply or an "unavailable" error), never a
// wrong reply, and the client recovers with no restart once the fault goes.
// Also the circuit (issue 15.3): while the client knows that Redis refuses
// connections, commands fail at once instead of waiting for their timeout.
#include <jeweler/redis/client.hpp>

#include "co_test.hpp"
#include "fault_proxy.hpp"
#include "redis_server.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

using namespace jeweler;
using namespace jeweler::redis;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using test::co_sleep;
using test::Fault;
using test::FaultProxy;
using test::RedisServer;
using test::run_co;

namespace {

using Clock = std::chrono::steady_clock;

/// Runs `n` commands at once; returns their results (in order) and how long
/// the slowest one took.
struct Batch {
  std::vector<Result<Reply>> results;
  Clock::duration slowest{};
};

asio::awaitable<Batch> run_batch(asio::io_context& io, Client& c, int n,
                                 std::function<Command(int)> make, ExecOptions opts = {}) {
  Batch b;
  b.results.assign(n, make_error_code(errc::invalid_argument));
  int finished = 0;
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          auto t0 = Clock::now();
          auto cmd = make(i);
          b.results[i] = co_await c.exec(std::move(cmd), opts);
          b.slowest = std::max(b.slowest, Clock::now() - t0);
          ++finished;
        },
        asio::detached);
  }
  while (finished < n) co_await co_sleep(2ms);
  co_return b;
}

}  // namespace

// Issue 15.3. The command timeout is 10 s, so a client that waits for it
// cannot pass: with the refusal seen, commands fail with not_connected, all
// of them before the timeout, and the circuit closes when Redis is back.
TEST(RedisCircuit, RefusedConnectionsFailAtOnceInsteadOfAtTheTimeout) {
  RedisServer srv;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.command_timeout = 10s;
    auto c = make_client(io.get_executor(), cfg);
    CO_ASSERT_TRUE(co_await c->wait_ready(5s));
    srv.kill9();
    // The client learns of the outage (connection lost, then a refused
    // reconnect): within a few commands at most, one fails not_connected.
    bool seen = false;
    for (int i = 0; i < 3 && !seen; ++i) {
      auto r = co_await c->exec(Command::make("GET", "k"));
      CO_ASSERT_FALSE(r);
      seen = r.error() == make_error_code(errc::not_connected);
      if (!seen) co_await co_sleep(100ms);
    }
    CO_ASSERT_TRUE(seen);
    EXPECT_FALSE(c->health().up());
    EXPECT_FALSE(c->status_source()->read().up());
    // Now 200 commands, idempotent or not: every one fails with the circuit's
    // error, and none waited for the 10 s timeout.
    std::function<Command(int)> mixed = [](int i) {
      return i % 2 ? Command::make("GET", "k") : Command::make("INCR", "n");
    };
    auto b = co_await run_batch(io, *c, 200, std::move(mixed));
    int not_connected = 0;
    for (auto& r : b.results)
      if (!r && r.error() == make_error_code(errc::not_connected)) ++not_connected;
    EXPECT_EQ(not_connected, 200);
    EXPECT_LT(b.slowest, cfg.command_timeout);
    EXPECT_TRUE(is_unavailable(make_error_code(errc::not_connected)));
    // Back: the next reconnection attempt (half-open) closes the circuit.
    srv.start();
    EXPECT_TRUE(co_await c->wait_ready(10s));
    auto ok = co_await c->exec(Command::make("SET", "k", "v"));
    CO_ASSERT_TRUE(ok);
    EXPECT_EQ(ok->str, "OK");
    co_await c->shutdown(1s);
  });
}

// The same for a cluster client whose seed refuses: without a slot table
// and with the attempt to read one failed, commands fail at once.
TEST(RedisCircuit, ClusterWithoutAReachableSeedFailsAtOnce) {
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    Config cfg;
    cfg.mode = Mode::cluster;
    cfg.cluster_nodes = {Endpoint{"127.0.0.1", RedisServer::free_port()}};  // nothing listens
    cfg.command_timeout = 10s;
    cfg.connect_timeout = 1s;
    cfg.retry_base = 20ms;
    cfg.retry_max = 200ms;
    auto c = make_client(io.get_executor(), cfg);
    bool seen = false;
    for (int i = 0; i < 3 && !seen; ++i) {
      auto r = co_await c->exec(Command::make("GET", "k"));
      CO_ASSERT_FALSE(r);
      seen = r.error() == make_error_code(errc::not_connected);
      if (!seen) co_await co_sleep(300ms);
    }
    CO_ASSERT_TRUE(seen);
    std::function<Command(int)> get = [](int) { return Command::make("GET", "k"); };
    auto b = co_await run_batch(io, *c, 50, std::move(get));
    int not_connected = 0;
    for (auto& r : b.results)
      if (!r && r.error() == make_error_code(errc::not_connected)) ++not_connected;
    EXPECT_GE(not_connected, 45);  // a refresh may be under way (half-open) for a few
    EXPECT_LT(b.slowest, cfg.command_timeout);
    EXPECT_FALSE(c->status_source()->read().up());
    co_await c->shutdown(200ms);
  });
}

// Issue 15.4: a frozen server (SIGSTOP) reads as down once a request has gone
// unanswered for the health deadline (min(command timeout, health interval):
// 200 ms here), long before the 10 s PING timeout, on every thread's view.
TEST(RedisHealth, FrozenServerReadsStalledAtTheHealthDeadline) {
  RedisServer srv;
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.command_timeout = 10s;
    auto c = make_client(io.get_executor(), cfg);
    CO_ASSERT_TRUE(co_await c->wait_ready(5s));
    auto status = c->status_source();
    EXPECT_TRUE(status->read().up());
    srv.pause();
    Result<Reply> got = make_error_code(errc::invalid_argument);
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          got = co_await c->exec(Command::make("PING"));
          done = true;
        },
        asio::detached);
    for (int i = 0; i < 250 && status->read().up(); ++i) co_await co_sleep(20ms);
    auto s = status->read();
    EXPECT_FALSE(s.up());
    EXPECT_TRUE(s.stalled);
    EXPECT_EQ(s.state, State::ready);  // connected; the PING has not timed out
    EXPECT_FALSE(c->health().up());
    EXPECT_TRUE(c->health().stalled);
    EXPECT_FALSE(done);
    srv.resume();
    while (!done) co_await co_sleep(5ms);
    CO_ASSERT_TRUE(got);
    EXPECT_EQ(got->str, "PONG");
    EXPECT_TRUE(status->read().up());
    co_await c->shutdown(1s);
  });
}

// Every fault of the proxy: no crash, every command answers (a correct reply
// or an "unavailable" error, never another command's reply), and the same
// client works again once the fault is removed.
class RedisFault : public ::testing::TestWithParam<Fault> {};

TEST_P(RedisFault, EveryCommandAnswersAndTheClientRecovers) {
  const Fault fault = GetParam();
  RedisServer srv;
  FaultProxy proxy(srv.port());
  run_co(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto cfg = srv.config();
        cfg.endpoint.port = proxy.port();
        cfg.command_timeout = 1s;
        auto c = make_client(io.get_executor(), cfg);
        CO_ASSERT_TRUE(co_await c->wait_ready(5s));
        auto set = co_await c->exec(Command::make("SET", "k", "v"));
        CO_ASSERT_TRUE(set);
        proxy.set(fault, 100ms);
        for (int round = 0; round < 3; ++round) {
          std::function<Command(int)> mixed = [](int i) {
            return i % 2 ? Command::make("GET", "k") : Command::make("INCR", "n");
          };
          auto b = co_await run_batch(io, *c, 40, std::move(mixed));
          int ok = 0, unavailable = 0;
          for (int i = 0; i < 40; ++i) {
            auto& r = b.results[i];
            if (r) {
              ++ok;
              if (i % 2) {
                EXPECT_EQ(r->str, "v") << to_string(fault);
              } else {
                EXPECT_EQ(r->type, ReplyType::integer) << to_debug_string(*r);
              }
            } else {
              EXPECT_TRUE(is_unavailable(r.error())) << r.error().message();
              ++unavailable;
            }
          }
          EXPECT_EQ(ok + unavailable, 40);
          // The deadline holds: 1 s, plus the time to notice (generous).
          EXPECT_LT(b.slowest, 10s) << to_string(fault);
          if (fault == Fault::delay) {
            EXPECT_EQ(ok, 40);  // 100 ms late is within 1 s
          }
          if (fault == Fault::blackhole) {
            EXPECT_EQ(ok, 0);
          }
          if (fault != Fault::delay && round == 0) {
            EXPECT_GT(unavailable, 0) << "the fault did not reach the client";
          }
          co_await co_sleep(200ms);
        }
        if (fault == Fault::blackhole) {
          // A connection that takes requests and never answers reads down.
          for (int i = 0; i < 250 && c->status_source()->read().up(); ++i) co_await co_sleep(20ms);
          EXPECT_FALSE(c->status_source()->read().up());
        }
        proxy.set(Fault::none);
        // Recovery without a restart: the same client answers again.
        bool back = false;
        for (int i = 0; i < 100 && !back; ++i) {
          auto r = co_await c->exec(Command::make("GET", "k"));
          back = r && r->str == "v";
          if (!back) co_await co_sleep(100ms);
        }
        EXPECT_TRUE(back) << to_string(fault) << ": " << c->health().last_error;
        EXPECT_TRUE(c->status_source()->read().up());
        co_await c->shutdown(1s);
      },
      120s);
}

INSTANTIATE_TEST_SUITE_P(Faults, RedisFault,
                         ::testing::Values(Fault::delay, Fault::drop, Fault::blackhole, Fault::cut,
                                           Fault::reset),
                         [](const auto& info) { return std::string(test::to_string(info.param)); });

// SIGKILL of redis-server under load: commands in flight fail, nothing
// hangs, and the same client works after the restart (appendfsync always:
// every acknowledged write is there).
TEST(RedisFaultProcess, KillNineUnderLoadLosesNoAcknowledgedWrite) {
  RedisServer srv(test::RedisServerOptions{.extra_args = {"--appendfsync", "always"}});
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = srv.config();
    cfg.command_timeout = 1s;
    auto c = make_client(io.get_executor(), cfg);
    CO_ASSERT_TRUE(co_await c->wait_ready(5s));
    std::vector<int> acked;
    bool stop = false;
    int workers_done = 0, answered = 0;
    for (int w = 0; w < 8; ++w) {
      asio::co_spawn(
          io,
          [&, w]() -> asio::awaitable<void> {
            for (int i = 0; !stop; ++i) {
              const int id = w * 100000 + i;
              auto r = co_await c->exec(Command::make("SET", "ack:" + std::to_string(id), "1"));
              ++answered;
              if (r && r->str == "OK") acked.push_back(id);
              if (!r) co_await co_sleep(20ms);
            }
            ++workers_done;
          },
          asio::detached);
    }
    co_await co_sleep(300ms);
    srv.kill9();
    co_await co_sleep(500ms);
    srv.start();
    CO_ASSERT_TRUE(co_await c->wait_ready(10s));
    co_await co_sleep(300ms);
    stop = true;
    while (workers_done < 8) co_await co_sleep(5ms);
    EXPECT_GT(acked.size(), 0u);
    std::size_t missing = 0;
    for (int id : acked) {
      auto r = co_await c->exec(Command::make("EXISTS", "ack:" + std::to_string(id)));
      if (!r || r->integer != 1) ++missing;
    }
    EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
    co_await c->shutdown(1s);
  });
}
