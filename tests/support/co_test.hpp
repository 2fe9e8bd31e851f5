// Runs a coroutine test body on a fresh io_context with a deadline; the test
// fails (instead of hanging) if the body does not finish in time, and any
// exception escaping the body fails the test with its message.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <functional>
#include <string>

namespace jeweler::test {

using CoBody = std::function<boost::asio::awaitable<void>(boost::asio::io_context&)>;

/// Runs `body(io)` to completion on a new io_context; fails the current test
/// if it throws or takes longer than `deadline`.
void run_co(const CoBody& body, std::chrono::milliseconds deadline = std::chrono::seconds(60));

/// Sleeps inside a coroutine.
boost::asio::awaitable<void> co_sleep(std::chrono::milliseconds d);

}  // namespace jeweler::test

// gtest's ASSERT_* `return`, which a coroutine cannot do: these record the
// failure and co_return instead. Use them inside coroutine test bodies.
#define CO_ASSERT_TRUE(cond)                  \
  if (!static_cast<bool>(cond)) {             \
    ADD_FAILURE() << "Expected true: " #cond; \
    co_return;                                \
  }                                           \
  static_assert(true)
#define CO_ASSERT_FALSE(cond)                  \
  if (static_cast<bool>(cond)) {               \
    ADD_FAILURE() << "Expected false: " #cond; \
    co_return;                                 \
  }                                            \
  static_assert(true)
#define CO_ASSERT_EQ(a, b) \
  if (!((a) == (b))) {     \
    EXPECT_EQ(a, b);       \
    co_return;             \
  }                        \
  static_assert(true)
