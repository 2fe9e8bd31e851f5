#include <jeweler/app/redis_memory.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>

namespace jeweler::app {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::optional<std::int64_t> info_field(std::string_view info, std::string_view field) {
  std::size_t pos = 0;
  while (pos < info.size()) {
    auto end = info.find('\n', pos);
    std::string_view line = info.substr(pos, end == std::string_view::npos ? info.npos : end - pos);
    pos = end == std::string_view::npos ? info.size() : end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > field.size() && line.starts_with(field) && line[field.size()] == ':') {
      auto value = line.substr(field.size() + 1);
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec == std::errc() && p == value.data() + value.size()) return v;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

asio::awaitable<void> poll_redis_memory(redis::Client& client, std::shared_ptr<RedisMemory> memory,
                                        std::shared_ptr<std::atomic<bool>> stop,
                                        std::chrono::milliseconds interval) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto next = std::chrono::steady_clock::now();
  while (!*stop) {
    if (std::chrono::steady_clock::now() >= next) {
      next = std::chrono::steady_clock::now() + interval;
      redis::Pipeline p;
      p.add(redis::Command::make("INFO", "memory"));
      p.add(redis::Command::make("INFO", "stats"));
      redis::ExecOptions opts;
      opts.timeout = 1000ms;
      opts.idempotent = true;
      auto r = co_await client.exec(std::move(p), opts);
      bool ok = false;
      if (r && r->size() == 2 && (*r)[0].is_string() && (*r)[1].is_string()) {
        auto used = info_field((*r)[0].str, "used_memory");
        auto max = info_field((*r)[0].str, "maxmemory");
        auto evicted = info_field((*r)[1].str, "evicted_keys");
        if (used && max && evicted) {
          memory->used_bytes.store(static_cast<double>(*used), std::memory_order_relaxed);
          memory->max_bytes.store(static_cast<double>(*max), std::memory_order_relaxed);
          memory->evicted_keys.store(static_cast<double>(*evicted), std::memory_order_relaxed);
          ok = true;
        }
      }
      memory->known.store(ok, std::memory_order_release);
      memory->polls.fetch_add(1, std::memory_order_relaxed);
    }
    timer.expires_after(250ms);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void add_redis_memory_collector(http::metrics::Registry& registry,
                                std::shared_ptr<const RedisMemory> memory) {
  registry.add_collector([memory](http::metrics::Writer& w) {
    if (!memory->known.load(std::memory_order_acquire)) return;
    w.gauge("jeweler_redis_memory_used_bytes", "Memory used by Redis (INFO used_memory)", {},
            memory->used_bytes.load(std::memory_order_relaxed));
    w.gauge("jeweler_redis_memory_max_bytes",
            "Redis maxmemory (INFO maxmemory; 0 when no limit is set)", {},
            memory->max_bytes.load(std::memory_order_relaxed));
    w.counter("jeweler_redis_evicted_keys_total",
              "Keys Redis evicted because of maxmemory (INFO evicted_keys)", {},
              memory->evicted_keys.load(std::memory_order_relaxed));
  });
}

}  // namespace jeweler::app
