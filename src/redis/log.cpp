#include <jeweler/redis/log.hpp>

#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <mutex>
#include <vector>

namespace jeweler {

namespace {

struct Holder {
  std::mutex mu;
  std::vector<std::shared_ptr<spdlog::logger>> kept;  // every logger ever current
  std::shared_ptr<spdlog::logger> fallback;
  std::atomic<spdlog::logger*> current{nullptr};

  Holder() {
    // Not registered in spdlog's registry: the application's names and its
    // default logger stay its own.
    fallback = std::make_shared<spdlog::logger>("jeweler",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
    fallback->set_level(spdlog::level::warn);
    current.store(fallback.get(), std::memory_order_release);
  }
};

Holder& holder() {
  static Holder h;  // created on first use
  return h;
}

}  // namespace

spdlog::logger& logger() noexcept {
  return *holder().current.load(std::memory_order_acquire);
}

void set_logger(std::shared_ptr<spdlog::logger> l) {
  auto& h = holder();
  std::lock_guard lock(h.mu);
  if (!l) l = h.fallback;
  h.kept.push_back(l);
  h.current.store(l.get(), std::memory_order_release);
}

}  // namespace jeweler
