#include <jeweler/store/blocking.hpp>

#include "co_test.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace asio = boost::asio;
using jeweler::store::BlockingPool;
using jeweler::test::run_co;

TEST(BlockingPool, RunsOffTheIoThreadAndResumesOnIt) {
  BlockingPool pool(2);
  run_co([&](asio::io_context&) -> asio::awaitable<void> {
    const auto io_thread = std::this_thread::get_id();
    std::thread::id worker;
    int value = 0;
    co_await pool.run_blocking([&] {
      worker = std::this_thread::get_id();
      value = 42;
    });
    EXPECT_EQ(value, 42);
    EXPECT_NE(worker, io_thread);
    EXPECT_EQ(std::this_thread::get_id(), io_thread);
  });
}

TEST(BlockingPool, ExceptionsReachTheCoroutine) {
  BlockingPool pool(1);
  run_co([&](asio::io_context&) -> asio::awaitable<void> {
    bool caught = false;
    try {
      co_await pool.run_blocking([] { throw std::runtime_error("boom"); });
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "boom";
    }
    EXPECT_TRUE(caught);
  });
}

TEST(BlockingPool, TheEventLoopKeepsRunningWhileWorkBlocks) {
  BlockingPool pool(2);
  run_co([&](asio::io_context& io) -> asio::awaitable<void> {
    std::atomic<bool> release{false};
    std::atomic<int> ticks{0};
    // A ticker on the io thread: it must advance while the pool blocks.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer t(io);
          while (ticks < 3) {
            t.expires_after(std::chrono::milliseconds(5));
            co_await t.async_wait(asio::use_awaitable);
            ++ticks;
          }
          release = true;
        },
        asio::detached);
    co_await pool.run_blocking([&] {
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    EXPECT_GE(ticks.load(), 3);
  });
}
