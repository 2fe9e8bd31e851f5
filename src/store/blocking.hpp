// A thread pool for blocking work (SQLite queries, password hashing, file
// writes) so io threads never stall: the calling coroutine is suspended while
// `fn` runs on the pool and resumes on its own executor afterwards.
//
//   store::BlockingPool pool(4);                       // one per process, shared
//   Result<store::Customer> r = jeweler::errc::internal;
//   co_await pool.run_blocking([&] { r = repo.get_customer(tenant, id); });
//
// `fn` may capture the coroutine's locals by reference: the coroutine stays
// suspended until `fn` returned. An exception thrown by `fn` is rethrown in the
// coroutine. Stop the pool (stop() / destructor) only after every io thread has
// finished its coroutines: work still queued then is dropped and those
// coroutines never resume.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <functional>
#include <memory>

namespace jeweler::store {

class BlockingPool {
 public:
  /// `threads` workers (at least 1).
  explicit BlockingPool(std::size_t threads);
  ~BlockingPool();  // stops and joins
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  /// Runs `fn` on a pool thread; completes on the awaiting coroutine's executor.
  boost::asio::awaitable<void> run_blocking(std::function<void()> fn);

  /// Waits for queued work, then joins the threads.
  void join();
  /// Drops queued work and joins the threads.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jeweler::store
