#include "co_test.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace jeweler::test {

namespace asio = boost::asio;

void run_co(const CoBody& body, std::chrono::milliseconds deadline) {
  asio::io_context io;
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, body(io), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  io.run_for(deadline);
  if (!done) {
    ADD_FAILURE() << "coroutine test did not finish within " << deadline.count() << " ms";
    io.stop();
    return;
  }
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "coroutine test threw: " << e.what();
    } catch (...) {
      ADD_FAILURE() << "coroutine test threw a non-std exception";
    }
  }
}

asio::awaitable<void> co_sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

}  // namespace jeweler::test
