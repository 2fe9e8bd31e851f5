// Invalidation and "keys held" over the tenant key index (docs/cache.md,
// "Invalidation: a key index per tenant"). The index is a sorted set
// <prefix>cacheidx:{<tenant>} of "<namespace>:<key>" members scored by
// expiry, kept in step with the entries by the write scripts (scripts.cpp).
// Nothing here reads anything but the tenant's own index and entries: the
// cost follows the tenant's entries, not the keyspace, and a pattern is
// matched against the tenant's members only.
#include <jeweler/cache/cache.hpp>
#include <jeweler/cache/detail/keys.hpp>
#include <jeweler/redis/log.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <string>

namespace jeweler::cache {

using boost::system::error_code;
using detail::bad_reply;
using detail::invalid;
using detail::kIdempotent;
using detail::kOnce;

namespace {
constexpr std::chrono::milliseconds kEpochTtl = std::chrono::hours(24);

/// "<namespace>:<key>" with both parts valid.
bool valid_member(std::string_view m) noexcept {
  auto colon = m.find(':');
  return colon != std::string_view::npos && valid_namespace(m.substr(0, colon)) &&
         valid_key(m.substr(colon + 1));
}
}  // namespace

asio::awaitable<Result<std::uint64_t>> CacheService::invalidate_index(const TenantId& t,
                                                                      std::string_view pattern) {
  const auto& prefix = client_.key_prefix();
  // Loads in flight must not store what they read before this invalidation,
  // and later callers must not join them.
  const std::string tenant_prefix = detail::tenant_part(prefix, "cache", t.str());
  std::erase_if(flights_, [&](const auto& kv) { return kv.first.starts_with(tenant_prefix); });
  if (known_down()) co_return redis::make_error_code(redis::errc::unavailable);
  {
    auto ek = detail::epoch_key(prefix, t.str());
    redis::Pipeline p;
    p.add(redis::Command::make("INCR", ek));
    p.add(redis::Command::make("PEXPIRE", ek, kEpochTtl.count()));
    auto r = co_await client_.exec(std::move(p), kOnce);
    if (!r) {
      redis_failed(t, "_invalidate", r.error());
      co_return r.error();
    }
    if (r->empty() || (*r)[0].is_error())
      co_return bad_reply("INCR", r->empty() ? redis::Reply{} : (*r)[0]);
  }
  const std::string idx = detail::index_key(prefix, t.str());
  const auto count_hint = static_cast<std::int64_t>(std::max<std::size_t>(options_->scan_count, 1));
  std::string cursor = "0";
  std::uint64_t removed = 0;
  std::map<std::string, std::uint64_t, std::less<>> per_ns;
  // Each round trip removes the batch found by the previous ZSCAN and asks
  // for the next one (one pipeline): a batch of ~scan_count entries per
  // round trip. Removing members while the scan goes on is fine: ZSCAN
  // returns every member present for the whole scan; a member returned
  // twice is removed once (its second UNLINK counts 0).
  bool scanning = true;
  std::vector<std::string> batch_keys, batch_args;
  while (scanning || !batch_args.empty()) {
    redis::Pipeline p;
    std::vector<std::string> sent;
    if (!batch_args.empty()) {
      p.add_eval(detail::unlink_script(), batch_keys, batch_args);
      sent = std::move(batch_args);
      batch_args.clear();
    }
    if (scanning) {
      auto scan = redis::Command::make("ZSCAN", idx, cursor);
      if (!pattern.empty()) scan.arg("MATCH").arg(pattern);
      scan.arg("COUNT").arg(count_hint);
      p.add(std::move(scan));
    }
    auto r = co_await client_.exec(std::move(p), kIdempotent);
    if (!r) {
      redis_failed(t, "_invalidate", r.error());
      co_return r.error();
    }
    auto& replies = *r;
    if (replies.size() != (sent.empty() ? 0u : 1u) + (scanning ? 1u : 0u))
      co_return detail::internal();
    std::size_t at = 0;
    if (!sent.empty()) {
      const auto& u = replies[at++];
      if (!u.is_array() || u.elements.size() != sent.size()) co_return bad_reply("cache.unlink", u);
      for (std::size_t i = 0; i < sent.size(); ++i) {
        if (u.elements[i].to_integer().value_or(0) <= 0) continue;  // expired, or removed already
        ++removed;
        std::string_view m = sent[i];
        per_ns[std::string(m.substr(0, m.find(':')))] += 1;
      }
    }
    if (!scanning) continue;
    auto& z = replies[at];
    if (!z.is_array() || z.elements.size() != 2 || !z.elements[0].is_string() ||
        !z.elements[1].is_array())
      co_return bad_reply("ZSCAN", z);
    cursor = std::move(z.elements[0].str);
    scanning = cursor != "0";
    batch_keys.assign(1, idx);
    auto& found = z.elements[1].elements;  // member, score, member, score, ...
    for (std::size_t i = 0; i < found.size(); i += 2) {
      auto& m = found[i].str;
      if (!valid_member(m)) {
        // Not written by this service: never turned into a key.
        jeweler::logger().warn("cache: ignoring a malformed member of the key index of tenant {}",
                               t.str());
        continue;
      }
      batch_keys.push_back(tenant_prefix + m);
      batch_args.push_back(std::move(m));
    }
  }
  redis_ok();
  for (const auto& [name, n] : per_ns) count(t, name, &detail::AtomicCounters::invalidations, n);
  co_return removed;
}

asio::awaitable<Result<std::uint64_t>> CacheService::invalidate_pattern(const TenantId& t,
                                                                        std::string_view pattern) {
  if (!valid_pattern(pattern)) co_return invalid();
  // The pattern is matched against this tenant's index members
  // ("<namespace>:<key>") only: whatever glob it is, nothing else is read.
  co_return co_await invalidate_index(t, pattern);
}

asio::awaitable<Result<std::uint64_t>> CacheService::invalidate_tenant(const TenantId& t) {
  co_return co_await invalidate_index(t, std::string_view{});
}

asio::awaitable<Result<std::uint64_t>> CacheService::keys_held(const TenantId& t) {
  if (known_down()) co_return redis::make_error_code(redis::errc::unavailable);
  std::vector<std::string> held_keys{detail::index_key(client_.key_prefix(), t.str())};
  std::vector<std::string> held_args;
  auto r = co_await client_.eval(detail::held_script(), std::move(held_keys), std::move(held_args),
                                 kIdempotent);
  if (!r) {
    redis_failed(t, "_keys", r.error());
    co_return r.error();
  }
  redis_ok();
  if (!r->is_integer() || r->integer < 0) co_return bad_reply("cache.held", *r);
  co_return static_cast<std::uint64_t>(r->integer);
}

}  // namespace jeweler::cache
