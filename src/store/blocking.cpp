#include <jeweler/store/blocking.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace jeweler::store {

namespace asio = boost::asio;

struct BlockingPool::Impl {
  explicit Impl(std::size_t n) : pool(n < 1 ? 1 : n) {}
  asio::thread_pool pool;
};

BlockingPool::BlockingPool(std::size_t threads) : impl_(std::make_unique<Impl>(threads)) {}

BlockingPool::~BlockingPool() {
  stop();
}

asio::awaitable<void> BlockingPool::run_blocking(std::function<void()> fn) {
  // co_spawn onto the pool; use_awaitable delivers the completion (and any
  // exception) back through this coroutine's own executor.
  // g++ 12: the closure (it owns a std::function) is a named local, not a
  // temporary inside the co_await expression (that compiler may destroy
  // such temporaries twice).
  auto task = [f = std::move(fn)]() -> asio::awaitable<void> {
    f();
    co_return;
  };
  co_await asio::co_spawn(impl_->pool.get_executor(), std::move(task), asio::use_awaitable);
}

void BlockingPool::join() {
  impl_->pool.join();
}

void BlockingPool::stop() {
  impl_->pool.stop();
  impl_->pool.join();
}

}  // namespace jeweler::store
