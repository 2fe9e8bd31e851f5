// CacheService: values, TTLs, cache-aside with single flight, JSON and
// counters. The tenant key index and invalidation are in invalidation.cpp,
// the statistics shared through Redis in shared_stats.cpp, the typed
// platform data in platform_data.cpp; keys and scripts in scripts.cpp.
#include <jeweler/cache/cache.hpp>
#include <jeweler/cache/detail/keys.hpp>
#include <jeweler/redis/log.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <random>
#include <string>
#include <unordered_map>

namespace jeweler::cache {

namespace json = boost::json;
using boost::system::error_code;
using detail::bad_reply;
using detail::internal;
using detail::invalid;
using detail::kIdempotent;
using detail::kOnce;
using std::chrono::milliseconds;

namespace {

constexpr std::string_view kFailMarker = "!fail:";

Result<bool> bool_error(error_code ec) {
  return Result<bool>(boost::system::in_place_error, ec);
}

bool key_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '@' || c == '+' || c == '=' || c == ',' || c == '/' ||
         c == '-';
}

std::string make_token() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s(24, '0');
  auto a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) s[i] = hex[(a >> (4 * i)) & 15];
  for (int i = 0; i < 8; ++i) s[16 + i] = hex[(b >> (4 * i)) & 15];
  return s;
}

std::string encode_error(const error_code& ec) {
  const char* cat = "x";
  if (ec.category() == jeweler_category())
    cat = "j";
  else if (ec.category() == redis::error_category())
    cat = "r";
  return std::string(cat) + ":" + std::to_string(ec.value());
}

error_code decode_error(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon < 1) return internal();
  char cat = s[colon - 1];
  int v = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return internal();
    v = v * 10 + (c - '0');
  }
  if (cat == 'j') return make_error_code(static_cast<errc>(v));
  if (cat == 'r') return redis::make_error_code(static_cast<redis::errc>(v));
  return internal();
}

}  // namespace

// --- validation -----------------------------------------------------------------

bool valid_namespace(std::string_view name) noexcept {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool valid_key(std::string_view key) noexcept {
  if (key.empty() || key.size() > 256) return false;
  return std::all_of(key.begin(), key.end(), key_char);
}

bool valid_pattern(std::string_view pattern) noexcept {
  if (pattern.empty() || pattern.size() > 256) return false;
  return std::all_of(pattern.begin(), pattern.end(),
                     [](char c) { return c > ' ' && c < 127 && c != '{' && c != '}'; });
}

std::string_view to_string(Source s) noexcept {
  switch (s) {
    case Source::hit:
      return "hit";
    case Source::loaded:
      return "loaded";
    case Source::coalesced:
      return "coalesced";
    case Source::waited:
      return "waited";
    case Source::fallback:
      return "fallback";
  }
  return "unknown";
}

// --- in-process single flight -----------------------------------------------------

struct CacheService::Flight {
  explicit Flight(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
  asio::steady_timer done;  // waiters sleep on it; the leader cancels it
  std::optional<Result<Fetched<std::string>>> result;
};

CacheService::CacheService(redis::Client& client, std::shared_ptr<const Options> options,
                           std::shared_ptr<Stats> stats)
    : client_(client), options_(std::move(options)), stats_(std::move(stats)) {
  if (!options_) options_ = std::make_shared<const Options>();
  if (!stats_) stats_ = std::make_shared<Stats>();
}

CacheService::~CacheService() = default;

std::string CacheService::redis_key(const TenantId& t, std::string_view ns,
                                    std::string_view key) const {
  return detail::value_key(client_.key_prefix(), t.str(), ns, key);
}

std::size_t CacheService::PairHash::operator()(PairView v) const noexcept {
  auto h = std::hash<std::string_view>{}(v.tenant);
  return h ^ (std::hash<std::string_view>{}(v.ns) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

void CacheService::count(const TenantId& t, std::string_view ns, CounterField f, std::uint64_t n) {
  constexpr std::size_t kMaxRemembered = 20000;  // beyond Stats' own bounds anyway
  auto* nc = [&] {
    if (auto it = ns_counters_.find(ns); it != ns_counters_.end()) return it->second;
    if (ns_counters_.size() >= kMaxRemembered) ns_counters_.clear();
    return ns_counters_.emplace(std::string(ns), &stats_->ns(ns)).first->second;
  }();
  // The (tenant, namespace) deltas that flush_stats() writes to Redis.
  auto* pc = [&] {
    PairView v{t.str(), ns};
    if (auto it = pending_counters_.find(v); it != pending_counters_.end()) return it->second;
    if (pending_counters_.size() >= kMaxRemembered) pending_counters_.clear();
    return pending_counters_.emplace(PairKey{t.str(), std::string(ns)}, stats_->pending(t, ns))
        .first->second;
  }();
  (nc->*f).fetch_add(n, std::memory_order_relaxed);
  if (pc)
    (pc->*f).fetch_add(n, std::memory_order_relaxed);
  else
    stats_->count_dropped(n);
}

milliseconds CacheService::resolve(Ttl ttl, std::string_view ns) const {
  if (ttl.is_persistent()) return milliseconds{0};
  if (ttl.is_default()) return options_->ttl_for(ns);
  // An explicit zero or negative duration would mean "no expiry" to Redis
  // scripts below; keep it expiring (1 ms) instead.
  return std::max(ttl.duration(), milliseconds{1});
}

void CacheService::redis_failed(const TenantId& t, std::string_view ns, const error_code& ec) {
  count(t, ns, &detail::AtomicCounters::errors);
  if (jeweler::is_unavailable(ec)) down_ = true;
  if (jeweler::is_unavailable(ec) && stats_->enter_degraded())
    jeweler::logger().warn("cache: Redis unreachable ({}); serving from loaders until it returns",
                           ec.message());
}

bool CacheService::known_down() const {
  return down_ && !client_.health().up();
}

void CacheService::redis_ok() {
  down_ = false;
  if (stats_->leave_degraded())
    jeweler::logger().info("cache: Redis reachable again; caching resumed");
}

// --- raw values ---------------------------------------------------------------------

asio::awaitable<Result<std::optional<std::string>>> CacheService::get(const TenantId& t,
                                                                      std::string_view ns,
                                                                      std::string_view key) {
  if (!valid_namespace(ns) || !valid_key(key)) co_return invalid();
  if (known_down()) {
    count(t, ns, &detail::AtomicCounters::errors);
    count(t, ns, &detail::AtomicCounters::misses);
    co_return redis::make_error_code(redis::errc::unavailable);
  }
  auto r = co_await client_.exec(redis::Command::make("GET", redis_key(t, ns, key)), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    count(t, ns, &detail::AtomicCounters::misses);
    co_return r.error();
  }
  redis_ok();
  if (r->is_nil()) {
    count(t, ns, &detail::AtomicCounters::misses);
    co_return std::optional<std::string>{};
  }
  if (!r->is_string()) {
    count(t, ns, &detail::AtomicCounters::errors);
    count(t, ns, &detail::AtomicCounters::misses);
    co_return bad_reply("GET", *r);
  }
  count(t, ns, &detail::AtomicCounters::hits);
  co_return std::optional<std::string>(std::move(r->str));
}

asio::awaitable<Result<void>> CacheService::set(const TenantId& t, std::string_view ns,
                                                std::string_view key, std::string_view value,
                                                Ttl ttl) {
  if (!valid_namespace(ns) || !valid_key(key) || value.size() > options_->max_value_bytes)
    co_return invalid();
  auto ms = resolve(ttl, ns);
  const auto& prefix = client_.key_prefix();
  auto k = redis_key(t, ns, key);
  // One script: the value, its index entry, and the lock removed (a load in
  // flight for this key must not overwrite the new value). Callers arriving
  // from now on must not join that load either.
  std::vector<std::string> set_keys{k, detail::lock_key(prefix, t.str(), ns, key),
                                    detail::index_key(prefix, t.str())};
  std::vector<std::string> set_args{detail::member(ns, key), std::string(value),
                                    std::to_string(ms.count())};
  flights_.erase(k);
  if (known_down()) co_return redis::make_error_code(redis::errc::unavailable);
  auto r = co_await client_.eval(detail::set_script(), std::move(set_keys), std::move(set_args),
                                 kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return r.error();
  }
  redis_ok();
  if (!r->is_integer()) {
    count(t, ns, &detail::AtomicCounters::errors);
    co_return bad_reply("cache.set", *r);
  }
  count(t, ns, &detail::AtomicCounters::sets);
  co_return Result<void>{};
}

asio::awaitable<Result<bool>> CacheService::del(const TenantId& t, std::string_view ns,
                                                std::string_view key) {
  if (!valid_namespace(ns) || !valid_key(key)) co_return bool_error(invalid());
  const auto& prefix = client_.key_prefix();
  auto k = redis_key(t, ns, key);
  flights_.erase(k);  // later callers must not join a load begun before
  std::vector<std::string> del_keys{std::move(k), detail::lock_key(prefix, t.str(), ns, key),
                                    detail::index_key(prefix, t.str())};
  std::vector<std::string> del_args{detail::member(ns, key)};
  if (known_down()) co_return bool_error(redis::make_error_code(redis::errc::unavailable));
  auto r = co_await client_.eval(detail::del_script(), std::move(del_keys), std::move(del_args),
                                 kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return bool_error(r.error());
  }
  redis_ok();
  if (!r->is_integer()) {
    count(t, ns, &detail::AtomicCounters::errors);
    co_return bool_error(bad_reply("cache.del", *r));
  }
  count(t, ns, &detail::AtomicCounters::deletes);
  co_return r->integer > 0;
}

asio::awaitable<Result<bool>> CacheService::exists(const TenantId& t, std::string_view ns,
                                                   std::string_view key) {
  if (!valid_namespace(ns) || !valid_key(key)) co_return bool_error(invalid());
  if (known_down()) co_return bool_error(redis::make_error_code(redis::errc::unavailable));
  auto r =
      co_await client_.exec(redis::Command::make("EXISTS", redis_key(t, ns, key)), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return bool_error(r.error());
  }
  redis_ok();
  if (!r->is_integer()) co_return bool_error(bad_reply("EXISTS", *r));
  co_return r->integer > 0;
}

asio::awaitable<Result<std::vector<std::optional<std::string>>>> CacheService::mget(
    const TenantId& t, std::string_view ns, std::vector<std::string> keys) {
  if (!valid_namespace(ns)) co_return invalid();
  std::vector<std::optional<std::string>> out;
  if (keys.empty()) co_return out;
  auto cmd = redis::Command::make("MGET");
  for (const auto& k : keys) {
    if (!valid_key(k)) co_return invalid();
    cmd.arg(redis_key(t, ns, k));
  }
  auto r = co_await client_.exec(std::move(cmd), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    count(t, ns, &detail::AtomicCounters::misses, keys.size());
    co_return r.error();
  }
  redis_ok();
  if (!r->is_array() || r->elements.size() != keys.size()) co_return bad_reply("MGET", *r);
  std::uint64_t hits = 0;
  out.reserve(keys.size());
  for (auto& e : r->elements) {
    if (e.is_string()) {
      ++hits;
      out.emplace_back(std::move(e.str));
    } else {
      out.emplace_back();
    }
  }
  count(t, ns, &detail::AtomicCounters::hits, hits);
  count(t, ns, &detail::AtomicCounters::misses, keys.size() - hits);
  co_return out;
}

asio::awaitable<Result<void>> CacheService::mset(
    const TenantId& t, std::string_view ns,
    std::vector<std::pair<std::string, std::string>> entries, Ttl ttl) {
  if (!valid_namespace(ns)) co_return invalid();
  if (entries.empty()) co_return Result<void>{};
  auto ms = resolve(ttl, ns);
  const auto& prefix = client_.key_prefix();
  std::vector<std::string> mset_keys{detail::index_key(prefix, t.str())};
  std::vector<std::string> mset_args{std::to_string(ms.count())};
  mset_keys.reserve(1 + 2 * entries.size());
  mset_args.reserve(1 + 2 * entries.size());
  for (auto& [key, value] : entries) {
    if (!valid_key(key) || value.size() > options_->max_value_bytes) co_return invalid();
    auto k = redis_key(t, ns, key);
    flights_.erase(k);
    mset_keys.push_back(std::move(k));
    mset_keys.push_back(detail::lock_key(prefix, t.str(), ns, key));
    mset_args.push_back(detail::member(ns, key));
    mset_args.push_back(std::move(value));
  }
  if (known_down()) co_return redis::make_error_code(redis::errc::unavailable);
  auto r = co_await client_.eval(detail::mset_script(), std::move(mset_keys), std::move(mset_args),
                                 kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return r.error();
  }
  redis_ok();
  if (!r->is_integer()) {
    count(t, ns, &detail::AtomicCounters::errors);
    co_return bad_reply("cache.mset", *r);
  }
  count(t, ns, &detail::AtomicCounters::sets, entries.size());
  co_return Result<void>{};
}

// --- TTL --------------------------------------------------------------------------------

asio::awaitable<Result<std::optional<milliseconds>>> CacheService::ttl(const TenantId& t,
                                                                       std::string_view ns,
                                                                       std::string_view key) {
  if (!valid_namespace(ns) || !valid_key(key)) co_return invalid();
  auto r = co_await client_.exec(redis::Command::make("PTTL", redis_key(t, ns, key)), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return r.error();
  }
  redis_ok();
  if (!r->is_integer()) co_return bad_reply("PTTL", *r);
  if (r->integer == -2) co_return std::optional<milliseconds>{};
  if (r->integer == -1) co_return std::optional<milliseconds>(milliseconds::max());
  co_return std::optional<milliseconds>(milliseconds(r->integer));
}

asio::awaitable<Result<bool>> CacheService::expire(const TenantId& t, std::string_view ns,
                                                   std::string_view key, Ttl ttl) {
  if (!valid_namespace(ns) || !valid_key(key)) co_return bool_error(invalid());
  auto ms = resolve(ttl, ns);
  std::vector<std::string> exp_keys{redis_key(t, ns, key),
                                    detail::index_key(client_.key_prefix(), t.str())};
  std::vector<std::string> exp_args{detail::member(ns, key), std::to_string(ms.count())};
  auto r = co_await client_.eval(detail::expire_script(), std::move(exp_keys), std::move(exp_args),
                                 kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return bool_error(r.error());
  }
  redis_ok();
  if (!r->is_integer()) co_return bool_error(bad_reply("cache.expire", *r));
  co_return r->integer > 0;
}

asio::awaitable<Result<bool>> CacheService::touch(const TenantId& t, std::string_view ns,
                                                  std::string_view key) {
  co_return co_await expire(t, ns, key, Ttl{});
}

// --- cache-aside ------------------------------------------------------------------------

asio::awaitable<Result<std::string>> CacheService::run_loader(const TenantId& t,
                                                              std::string_view ns, Loader& loader) {
  count(t, ns, &detail::AtomicCounters::loads);
  Result<std::string> r = internal();
  try {
    r = co_await loader();
  } catch (const std::exception& e) {
    jeweler::logger().error("cache: loader for namespace {} threw: {}", ns, e.what());
    r = internal();
  } catch (...) {
    jeweler::logger().error("cache: loader for namespace {} threw a non-std exception", ns);
    r = internal();
  }
  co_return r;
}

asio::awaitable<Result<Fetched<std::string>>> CacheService::get_or_set(const TenantId& t,
                                                                       std::string_view ns,
                                                                       std::string_view key,
                                                                       Loader loader, Ttl ttl) {
  if (!valid_namespace(ns) || !valid_key(key) || !loader) co_return invalid();
  std::string k = redis_key(t, ns, key);
  bool redis_down = known_down();
  if (redis_down) {
    count(t, ns, &detail::AtomicCounters::errors);
  } else {
    auto r = co_await client_.exec(redis::Command::make("GET", k), kIdempotent);
    if (!r) {
      redis_failed(t, ns, r.error());
      redis_down = true;
    } else if (r->is_string()) {
      redis_ok();
      count(t, ns, &detail::AtomicCounters::hits);
      co_return Fetched<std::string>{std::move(r->str), Source::hit};
    } else if (!r->is_nil()) {
      bad_reply("GET", *r);
      count(t, ns, &detail::AtomicCounters::errors);
      redis_down = true;  // cannot use the cache for this key: serve from the loader
    } else {
      redis_ok();
    }
  }
  count(t, ns, &detail::AtomicCounters::misses);

  // In-process single flight: join a run in progress for this key.
  if (auto it = flights_.find(k); it != flights_.end()) {
    auto f = it->second;
    error_code ec;
    co_await f->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!f->result) co_return internal();
    if (!*f->result) co_return f->result->error();
    Fetched<std::string> v = f->result->value();
    if (v.source != Source::fallback) v.source = Source::coalesced;
    co_return v;
  }

  auto f = std::make_shared<Flight>(co_await asio::this_coro::executor);
  flights_.emplace(k, f);
  Result<Fetched<std::string>> out = internal();
  if (redis_down) {
    auto v = co_await run_loader(t, ns, loader);
    if (v) {
      count(t, ns, &detail::AtomicCounters::fallbacks);
      out = Fetched<std::string>{std::move(*v), Source::fallback};
    } else {
      out = v.error();
    }
  } else {
    try {
      out = co_await lead(t, std::string(ns), std::string(key), loader, ttl);
    } catch (const std::exception& e) {  // never leave the waiters hanging
      jeweler::logger().error("cache: get_or_set failed: {}", e.what());
      out = internal();
    }
  }
  // A write may have detached this flight (and a newer one may be running).
  if (auto it = flights_.find(k); it != flights_.end() && it->second == f) flights_.erase(it);
  f->result = out;
  f->done.cancel();
  co_return out;
}

asio::awaitable<Result<Fetched<std::string>>> CacheService::lead(const TenantId& t, std::string ns,
                                                                 std::string key, Loader& loader,
                                                                 Ttl ttl) {
  const auto& prefix = client_.key_prefix();
  const std::vector<std::string> keys = {redis_key(t, ns, key),
                                         detail::lock_key(prefix, t.str(), ns, key),
                                         detail::epoch_key(prefix, t.str())};
  const std::string token = make_token();
  const auto& o = *options_;
  auto deadline = std::chrono::steady_clock::now() + o.lock_wait;
  bool timed_out = false;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);

  auto fallback = [&]() -> asio::awaitable<Result<Fetched<std::string>>> {
    auto v = co_await run_loader(t, ns, loader);
    if (!v) co_return v.error();
    count(t, ns, &detail::AtomicCounters::fallbacks);
    co_return Fetched<std::string>{std::move(*v), Source::fallback};
  };

  for (;;) {
    std::vector<std::string> acquire_args{token, std::to_string(o.lock_ttl.count())};
    auto a = co_await client_.eval(detail::acquire_script(), keys, std::move(acquire_args), kOnce);
    if (!a) {
      redis_failed(t, ns, a.error());
      co_return co_await fallback();
    }
    std::optional<std::int64_t> code;
    if (a->is_array() && a->elements.size() == 2 && a->elements[1].is_string())
      code = a->elements[0].to_integer();
    if (!code) {
      bad_reply("cache.acquire", *a);
      count(t, ns, &detail::AtomicCounters::errors);
      co_return co_await fallback();
    }
    redis_ok();

    if (*code == 2) co_return Fetched<std::string>{std::move(a->elements[1].str), Source::waited};

    if (*code == 1) {  // we hold the lock: load and store
      std::string epoch = std::move(a->elements[1].str);
      auto v = co_await run_loader(t, ns, loader);
      if (!v) {
        auto marker = std::string(kFailMarker) + token + ":" + encode_error(v.error());
        std::vector<std::string> fail_keys{keys[1]};
        std::vector<std::string> fail_args{token, marker,
                                           std::to_string(o.failure_marker_ttl.count())};
        auto fr = co_await client_.eval(detail::fail_script(), std::move(fail_keys),
                                        std::move(fail_args), kOnce);
        if (!fr) redis_failed(t, ns, fr.error());
        co_return v.error();
      }
      auto ms = resolve(ttl, ns);
      if (v->size() <= o.max_value_bytes) {
        std::vector<std::string> store_keys = keys;
        store_keys.push_back(detail::index_key(prefix, t.str()));
        std::vector<std::string> store_args{token, epoch, *v, std::to_string(ms.count()),
                                            detail::member(ns, key)};
        auto sr = co_await client_.eval(detail::store_script(), std::move(store_keys),
                                        std::move(store_args), kOnce);
        if (!sr) {
          redis_failed(t, ns, sr.error());
        } else if (sr->is_integer() && sr->integer == 1) {
          count(t, ns, &detail::AtomicCounters::sets);
        } else if (!sr->is_integer()) {
          bad_reply("cache.store", *sr);
          count(t, ns, &detail::AtomicCounters::errors);
        }
      }
      co_return Fetched<std::string>{std::move(*v), Source::loaded};
    }

    // Another process is loading this key.
    if (timed_out) {
      // Waited long enough: serve our own load, uncached (we do not hold the lock).
      auto v = co_await run_loader(t, ns, loader);
      if (!v) co_return v.error();
      co_return Fetched<std::string>{std::move(*v), Source::loaded};
    }
    std::string holder = std::move(a->elements[1].str);
    auto poll = o.poll_min;
    bool retry_acquire = false;
    while (!retry_acquire) {
      if (std::chrono::steady_clock::now() >= deadline) {
        timed_out = true;
        break;
      }
      timer.expires_after(poll);
      error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      poll = std::min(poll * 2, o.poll_max);
      auto m = co_await client_.exec(redis::Command::make("MGET", keys[0], keys[1]), kIdempotent);
      if (!m) {
        redis_failed(t, ns, m.error());
        co_return co_await fallback();
      }
      if (!m->is_array() || m->elements.size() != 2) {
        bad_reply("MGET", *m);
        count(t, ns, &detail::AtomicCounters::errors);
        co_return co_await fallback();
      }
      auto& value = m->elements[0];
      auto& lock = m->elements[1];
      if (value.is_string()) co_return Fetched<std::string>{std::move(value.str), Source::waited};
      if (!lock.is_string()) {
        retry_acquire = true;  // released without a value (invalidated): try to lead
      } else if (lock.str.starts_with(kFailMarker)) {
        std::string_view rest = std::string_view(lock.str).substr(kFailMarker.size());
        if (rest.starts_with(holder) && rest.size() > holder.size() && rest[holder.size()] == ':')
          co_return decode_error(rest.substr(holder.size() + 1));
        retry_acquire = true;  // someone else's failure: take over
      } else {
        holder = std::move(lock.str);  // the lock passed on (expired holder): wait for the new one
      }
    }
  }
}

// --- JSON -------------------------------------------------------------------------------

asio::awaitable<Result<std::optional<json::value>>> CacheService::get_json(const TenantId& t,
                                                                           std::string_view ns,
                                                                           std::string_view key) {
  auto r = co_await get(t, ns, key);
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<json::value>{};
  auto v = parse_json(**r);
  if (!v) {
    jeweler::logger().warn("cache: unreadable JSON in namespace {}; treated as a miss", ns);
    count(t, ns, &detail::AtomicCounters::errors);
    co_return std::optional<json::value>{};
  }
  co_return std::optional<json::value>(std::move(*v));
}

asio::awaitable<Result<void>> CacheService::set_json(const TenantId& t, std::string_view ns,
                                                     std::string_view key, const json::value& v,
                                                     Ttl ttl) {
  co_return co_await set(t, ns, key, serialize_json(v), ttl);
}

asio::awaitable<Result<Fetched<json::value>>> CacheService::get_or_set_json(
    const TenantId& t, std::string_view ns, std::string_view key, JsonLoader loader, Ttl ttl) {
  if (!loader) co_return invalid();
  Loader raw = [&loader]() -> asio::awaitable<Result<std::string>> {
    auto r = co_await loader();
    if (!r) co_return r.error();
    co_return serialize_json(*r);
  };
  for (int attempt = 0;; ++attempt) {
    auto r = co_await get_or_set(t, ns, key, raw, ttl);
    if (!r) co_return r.error();
    auto v = parse_json(r->value);
    if (v) co_return Fetched<json::value>{std::move(*v), r->source};
    count(t, ns, &detail::AtomicCounters::errors);
    jeweler::logger().warn("cache: unreadable JSON in namespace {}; dropped", ns);
    if (attempt > 0 || r->source != Source::hit) co_return make_error_code(errc::corrupt_data);
    (void)co_await del(t, ns, key);  // then load again
  }
}

// --- counters ---------------------------------------------------------------------------

asio::awaitable<Result<std::int64_t>> CacheService::increment(const TenantId& t,
                                                              std::string_view ns,
                                                              std::string_view key, std::int64_t by,
                                                              Ttl ttl) {
  if (!valid_namespace(ns) || !valid_key(key)) co_return invalid();
  auto ms = resolve(ttl, ns);
  std::vector<std::string> incr_keys{redis_key(t, ns, key),
                                     detail::index_key(client_.key_prefix(), t.str())};
  std::vector<std::string> incr_args{std::to_string(by), std::to_string(ms.count()),
                                     detail::member(ns, key)};
  if (known_down()) co_return redis::make_error_code(redis::errc::unavailable);
  auto r = co_await client_.eval(detail::incr_script(), std::move(incr_keys), std::move(incr_args),
                                 kOnce);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return r.error();
  }
  redis_ok();
  if (r->is_error()) {
    // Not an integer (or an overflow): the caller's mistake, not Redis'.
    jeweler::logger().warn("cache: increment in namespace {} refused: {}", ns, r->error_code());
    co_return invalid();
  }
  if (!r->is_integer()) co_return bad_reply("cache.incr", *r);
  co_return r->integer;
}

asio::awaitable<Result<std::int64_t>> CacheService::decrement(const TenantId& t,
                                                              std::string_view ns,
                                                              std::string_view key, std::int64_t by,
                                                              Ttl ttl) {
  if (by == std::numeric_limits<std::int64_t>::min()) co_return invalid();
  co_return co_await increment(t, ns, key, -by, ttl);
}

asio::awaitable<Result<std::int64_t>> CacheService::counter(const TenantId& t, std::string_view ns,
                                                            std::string_view key) {
  auto r = co_await get(t, ns, key);
  if (!r) co_return r.error();
  if (!*r) co_return std::int64_t{0};
  auto reply = redis::Reply::make_string(std::move(**r));
  auto v = reply.to_integer();
  if (!v) co_return make_error_code(errc::corrupt_data);
  co_return *v;
}

}  // namespace jeweler::cache
