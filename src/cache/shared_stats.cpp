// Cache statistics shared by every process on the Redis (API.md section 4:
// "any process answers the same"). Each process accumulates (tenant,
// namespace) deltas in Stats on the hot path (atomics only, no Redis round
// trip); flush_stats() writes them, one HINCRBY script per tenant into
// <prefix>cachestats:{<tenant>} ("<namespace>:<counter>" fields), every
// Options::stats_flush_interval and before the admin route reads
// (tenant_stats). docs/cache.md, "Statistics".
#include <jeweler/cache/cache.hpp>
#include <jeweler/cache/detail/keys.hpp>
#include <jeweler/redis/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <string>

namespace jeweler::cache {

using detail::bad_reply;
using detail::kOnce;
using std::chrono::milliseconds;

namespace {

/// One script call per tenant of the batch: [begin, end) of its deltas.
struct Group {
  std::size_t begin = 0, end = 0;
};

std::vector<Group> add_flush(redis::Pipeline& p, const std::string& prefix,
                             const Stats::Batch& batch, milliseconds ttl) {
  std::vector<Group> groups;
  const auto& d = batch.deltas;
  for (std::size_t i = 0; i < d.size();) {
    Group g{i, i};
    std::vector<std::string> keys{detail::stats_key(prefix, d[i].tenant)};
    std::vector<std::string> args{std::to_string(std::max<std::int64_t>(ttl.count(), 1))};
    while (g.end < d.size() && d[g.end].tenant == d[i].tenant) {
      auto c = d[g.end].counters;
      for (const char* name : kCounterNames) {
        auto n = *counter_by_name(c, name);
        if (n == 0) continue;
        args.push_back(d[g.end].ns + ":" + name);
        args.push_back(std::to_string(n));
      }
      ++g.end;
    }
    p.add_eval(detail::stats_add_script(), keys, args);
    groups.push_back(g);
    i = g.end;
  }
  return groups;
}

/// The deltas of the groups whose script did not run (all when `replies`
/// is null: nothing was written).
std::vector<Stats::Delta> unwritten(const Stats::Batch& batch, const std::vector<Group>& groups,
                                    const std::vector<redis::Reply>* replies) {
  std::vector<Stats::Delta> out;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    bool ok = replies && g < replies->size() && (*replies)[g].is_integer();
    if (ok) continue;
    for (auto i = groups[g].begin; i < groups[g].end; ++i) out.push_back(batch.deltas[i]);
  }
  return out;
}

}  // namespace

asio::awaitable<Result<void>> CacheService::flush_stats() {
  auto batch = stats_->take_pending();
  if (batch.deltas.empty()) {
    stats_->finish(batch);
    co_return Result<void>{};
  }
  redis::Pipeline p;
  auto groups = add_flush(p, client_.key_prefix(), batch, options_->stats_ttl);
  if (known_down()) {
    stats_->finish(batch, batch.deltas);
    co_return redis::make_error_code(redis::errc::unavailable);
  }
  // Not resent after a dropped connection: an increment applied twice would
  // count twice (a lost reply keeps the deltas pending: at worst counted twice
  // once, in that rare case).
  auto r = co_await client_.exec(std::move(p), kOnce);
  if (!r) {
    stats_->finish(batch, batch.deltas);
    co_return r.error();
  }
  auto left = unwritten(batch, groups, &*r);
  stats_->finish(batch, left);
  if (!left.empty()) {
    for (const auto& rep : *r)
      if (!rep.is_integer()) co_return bad_reply("cache.stats", rep);
  }
  co_return Result<void>{};
}

asio::awaitable<void> CacheService::run_stats_flusher(const std::atomic<bool>& stop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  bool warned = false;
  for (;;) {
    bool last = stop.load();
    auto r = co_await flush_stats();
    if (!r && !warned && !is_unavailable(r.error())) {
      jeweler::logger().warn("cache: statistics not written to Redis ({}); kept for the next flush",
                             r.error().message());
      warned = true;
    } else if (r) {
      warned = false;
    }
    if (last) co_return;
    timer.expires_after(std::max(options_->stats_flush_interval, milliseconds{1}));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

asio::awaitable<Result<TenantStats>> CacheService::tenant_stats(const TenantId& t) {
  const auto& prefix = client_.key_prefix();
  auto batch = stats_->take_pending(t.str());
  // Deltas another thread of this process took before ours (the periodic
  // flush) may still be on their way: wait for them (bounded), so that this
  // process' own counts are all in Redis when it reads.
  if (!stats_->settled_before(batch.ticket)) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!stats_->settled_before(batch.ticket) && std::chrono::steady_clock::now() < until) {
      timer.expires_after(milliseconds{2});
      (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  // One script: this process' deltas of the tenant, then the sums and the
  // live entries (a pipeline would not do: a script resent after NOSCRIPT
  // runs after the commands behind it).
  std::vector<std::string> read_keys{detail::stats_key(prefix, t.str()),
                                     detail::index_key(prefix, t.str())};
  std::vector<std::string> read_args{
      std::to_string(std::max<std::int64_t>(options_->stats_ttl.count(), 1))};
  for (const auto& d : batch.deltas) {
    auto c = d.counters;
    for (const char* name : kCounterNames) {
      if (auto n = *counter_by_name(c, name); n != 0) {
        read_args.push_back(d.ns + ":" + name);
        read_args.push_back(std::to_string(n));
      }
    }
  }
  if (known_down()) {
    stats_->finish(batch, batch.deltas);
    co_return redis::make_error_code(redis::errc::unavailable);
  }
  auto r = co_await client_.eval(detail::stats_read_script(), std::move(read_keys),
                                 std::move(read_args), kOnce);
  if (!r || r->is_error()) {
    stats_->finish(batch, batch.deltas);
    if (!r) {
      redis_failed(t, "_stats", r.error());
      co_return r.error();
    }
    co_return bad_reply("cache.stats_read", *r);
  }
  stats_->finish(batch);
  redis_ok();
  if (!r->is_array() || r->elements.size() != 2 || !r->elements[1].is_integer() ||
      r->elements[1].integer < 0)
    co_return bad_reply("cache.stats_read", *r);
  const auto& hash = r->elements[0];
  const auto& held = r->elements[1];

  TenantStats out;
  out.keys_held = static_cast<std::uint64_t>(held.integer);
  for (const auto& [field, value] : hash.pairs()) {
    auto colon = field.rfind(':');
    if (colon == std::string_view::npos || !value) continue;
    auto n = value->to_integer();
    if (!n || *n < 0) continue;
    auto& c = out.by_namespace[std::string(field.substr(0, colon))];
    if (auto* slot = counter_by_name(c, field.substr(colon + 1)))
      *slot = static_cast<std::uint64_t>(*n);
  }
  for (const auto& [name, c] : out.by_namespace) out.total += c;
  co_return out;
}

}  // namespace jeweler::cache
