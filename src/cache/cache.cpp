#include <jeweler/cache/cache.hpp>
#include <jeweler/redis/log.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace jeweler::cache {

namespace json = boost::json;
using boost::system::error_code;
using std::chrono::milliseconds;

// --- key schema ---------------------------------------------------------------
//   value:  <prefix>cache:{<tenant>}:<namespace>:<key>
//   lock:   <prefix>cachelock:{<tenant>}:<namespace>:<key>   (single flight across processes)
//   epoch:  <prefix>cachemeta:{<tenant>}:epoch               (bumped by pattern invalidation)
// All keys of a tenant share the hash tag {<tenant>}: one slot, so the
// scripts and MGET below are valid in Redis Cluster.

namespace {

// Safe to resend after a dropped connection (reads, SET, UNLINK) or not (scripts, INCR).
constexpr redis::ExecOptions kIdempotent{milliseconds{0}, true};
constexpr redis::ExecOptions kOnce{milliseconds{0}, false};
constexpr milliseconds kEpochTtl = std::chrono::hours(24);
constexpr std::string_view kFailMarker = "!fail:";

// KEYS: value, lock, epoch. ARGV: token, lock ttl (ms).
// {2, value} when the value is there; {1, epoch} when the lock was taken (a
// failure marker left by a failed loader counts as free); {0, holder} else.
const redis::Script& acquire_script() {
  static const redis::Script s("cache.acquire", R"lua(
local v = redis.call('GET', KEYS[1])
if v then return {2, v} end
local l = redis.call('GET', KEYS[2])
if (not l) or string.sub(l, 1, 6) == '!fail:' then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('GET', KEYS[3]) or ''}
end
return {0, l}
)lua");
  return s;
}

// KEYS: value, lock, epoch. ARGV: token, epoch seen at acquire, value, ttl ms (0 = none).
// Stores only while this loader still holds the lock (del/set/invalidation
// remove it) and no pattern invalidation ran since the load began.
const redis::Script& store_script() {
  static const redis::Script s("cache.store", R"lua(
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[2] then return 0 end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
)lua");
  return s;
}

// KEYS: lock. ARGV: token, failure marker, marker ttl (ms).
const redis::Script& fail_script() {
  static const redis::Script s("cache.fail", R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
)lua");
  return s;
}

// KEYS: counter. ARGV: by, ttl ms (0 = none). The TTL only when it creates the key.
const redis::Script& incr_script() {
  static const redis::Script s("cache.incr", R"lua(
local created = redis.call('EXISTS', KEYS[1]) == 0
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if created and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return v
)lua");
  return s;
}

Result<bool> bool_error(error_code ec) {
  return Result<bool>(boost::system::in_place_error, ec);
}

error_code invalid() {
  return make_error_code(errc::invalid_argument);
}
error_code internal() {
  return make_error_code(errc::internal);
}

bool key_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '@' || c == '+' || c == '=' || c == ',' || c == '/' ||
         c == '-';
}

/// Glob-escapes a literal for SCAN MATCH.
std::string glob_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string tenant_part(const std::string& prefix, std::string_view kind, const TenantId& t) {
  std::string s;
  s.reserve(prefix.size() + kind.size() + t.str().size() + 4);
  s.append(prefix).append(kind).append(":{").append(t.str()).append("}:");
  return s;
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

/// A Redis error reply (or a reply of the wrong shape) for a cache command.
error_code bad_reply(std::string_view what, const redis::Reply& r) {
  if (r.is_error())
    jeweler::logger().warn("cache: {} failed: {}", what, r.error_code());
  else
    jeweler::logger().warn("cache: {}: unexpected reply {}", what, redis::to_debug_string(r));
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
  std::string s = tenant_part(client_.key_prefix(), "cache", t);
  s.append(ns).append(":").append(key);
  return s;
}

namespace {
std::string lock_key(const std::string& prefix, const TenantId& t, std::string_view ns,
                     std::string_view key) {
  std::string s = tenant_part(prefix, "cachelock", t);
  s.append(ns).append(":").append(key);
  return s;
}
std::string epoch_key(const std::string& prefix, const TenantId& t) {
  return prefix + "cachemeta:{" + t.str() + "}:epoch";
}

}  // namespace

void CacheService::count(const TenantId& t, std::string_view ns, CounterField f, std::uint64_t n) {
  constexpr std::size_t kMaxRemembered = 20000;  // beyond Stats' own bounds anyway
  auto* nc = [&] {
    if (auto it = ns_counters_.find(ns); it != ns_counters_.end()) return it->second;
    if (ns_counters_.size() >= kMaxRemembered) ns_counters_.clear();
    return ns_counters_.emplace(std::string(ns), &stats_->ns(ns)).first->second;
  }();
  auto* tc = [&] {
    if (auto it = tenant_counters_.find(t.str()); it != tenant_counters_.end()) return it->second;
    if (tenant_counters_.size() >= kMaxRemembered) tenant_counters_.clear();
    return tenant_counters_.emplace(t.str(), &stats_->tenant(t)).first->second;
  }();
  (nc->*f).fetch_add(n, std::memory_order_relaxed);
  (tc->*f).fetch_add(n, std::memory_order_relaxed);
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
  auto k = redis_key(t, ns, key);
  redis::Pipeline p;
  if (ms.count() > 0)
    p.add(redis::Command::make("SET", k, value, "PX", ms.count()));
  else
    p.add(redis::Command::make("SET", k, value));
  // A load in flight for this key must not overwrite the new value, and
  // callers arriving from now on must not join it.
  p.add(redis::Command::make("UNLINK", lock_key(client_.key_prefix(), t, ns, key)));
  flights_.erase(k);
  if (known_down()) co_return redis::make_error_code(redis::errc::unavailable);
  auto r = co_await client_.exec(std::move(p), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return r.error();
  }
  redis_ok();
  if (r->size() != 2 || (*r)[0].is_error()) {
    count(t, ns, &detail::AtomicCounters::errors);
    co_return bad_reply("SET", r->empty() ? redis::Reply{} : (*r)[0]);
  }
  count(t, ns, &detail::AtomicCounters::sets);
  co_return Result<void>{};
}

asio::awaitable<Result<bool>> CacheService::del(const TenantId& t, std::string_view ns,
                                                std::string_view key) {
  if (!valid_namespace(ns) || !valid_key(key)) co_return bool_error(invalid());
  redis::Pipeline p;
  flights_.erase(redis_key(t, ns, key));  // later callers must not join a load begun before
  p.add(redis::Command::make("UNLINK", redis_key(t, ns, key)));
  p.add(redis::Command::make("UNLINK", lock_key(client_.key_prefix(), t, ns, key)));
  if (known_down()) co_return bool_error(redis::make_error_code(redis::errc::unavailable));
  auto r = co_await client_.exec(std::move(p), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return bool_error(r.error());
  }
  redis_ok();
  if (r->size() != 2 || !(*r)[0].is_integer()) {
    count(t, ns, &detail::AtomicCounters::errors);
    co_return bool_error(bad_reply("UNLINK", r->empty() ? redis::Reply{} : (*r)[0]));
  }
  count(t, ns, &detail::AtomicCounters::deletes);
  co_return (*r)[0].integer > 0;
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
  redis::Pipeline p;
  auto unlink = redis::Command::make("UNLINK");
  for (const auto& [key, value] : entries) {
    if (!valid_key(key) || value.size() > options_->max_value_bytes) co_return invalid();
    auto k = redis_key(t, ns, key);
    if (ms.count() > 0)
      p.add(redis::Command::make("SET", k, value, "PX", ms.count()));
    else
      p.add(redis::Command::make("SET", k, value));
    unlink.arg(lock_key(client_.key_prefix(), t, ns, key));
    flights_.erase(k);
  }
  p.add(std::move(unlink));
  auto r = co_await client_.exec(std::move(p), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return r.error();
  }
  redis_ok();
  for (const auto& e : *r) {
    if (e.is_error()) {
      count(t, ns, &detail::AtomicCounters::errors);
      co_return bad_reply("SET", e);
    }
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
  auto k = redis_key(t, ns, key);
  redis::Pipeline p;
  p.add(redis::Command::make("EXISTS", k));
  if (ms.count() > 0)
    p.add(redis::Command::make("PEXPIRE", k, ms.count()));
  else
    p.add(redis::Command::make("PERSIST", k));
  auto r = co_await client_.exec(std::move(p), kIdempotent);
  if (!r) {
    redis_failed(t, ns, r.error());
    co_return bool_error(r.error());
  }
  redis_ok();
  if (r->size() != 2 || !(*r)[0].is_integer() || (*r)[1].is_error())
    co_return bool_error(bad_reply("PEXPIRE", r->empty() ? redis::Reply{} : (*r)[r->size() - 1]));
  co_return (*r)[0].integer > 0;
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
  const std::vector<std::string> keys = {redis_key(t, ns, key), lock_key(prefix, t, ns, key),
                                         epoch_key(prefix, t)};
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
    auto a = co_await client_.eval(acquire_script(), keys, std::move(acquire_args), kOnce);
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
        auto fr =
            co_await client_.eval(fail_script(), std::move(fail_keys), std::move(fail_args), kOnce);
        if (!fr) redis_failed(t, ns, fr.error());
        co_return v.error();
      }
      auto ms = resolve(ttl, ns);
      if (v->size() <= o.max_value_bytes) {
        std::vector<std::string> store_args{token, epoch, *v, std::to_string(ms.count())};
        auto sr = co_await client_.eval(store_script(), keys, std::move(store_args), kOnce);
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
  std::vector<std::string> incr_keys{redis_key(t, ns, key)};
  std::vector<std::string> incr_args{std::to_string(by), std::to_string(ms.count())};
  if (known_down()) co_return redis::make_error_code(redis::errc::unavailable);
  auto r = co_await client_.eval(incr_script(), std::move(incr_keys), std::move(incr_args), kOnce);
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

// --- invalidation -----------------------------------------------------------------------

asio::awaitable<Result<std::uint64_t>> CacheService::scan_unlink(const TenantId& t,
                                                                 std::string match) {
  const auto& prefix = client_.key_prefix();
  // Loads in flight must not store what they read before this invalidation,
  // and later callers must not join them.
  const std::string tenant_prefix = tenant_part(prefix, "cache", t);
  std::erase_if(flights_, [&](const auto& kv) { return kv.first.starts_with(tenant_prefix); });
  {
    auto ek = epoch_key(prefix, t);
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
  const std::size_t skip = tenant_prefix.size();
  const auto count_hint = static_cast<std::int64_t>(std::max<std::size_t>(options_->scan_count, 1));
  std::string cursor = "0";
  std::uint64_t removed = 0;
  std::map<std::string, std::uint64_t, std::less<>> per_ns;
  do {
    auto r = co_await client_.exec(
        redis::Command::make("SCAN", cursor, "MATCH", match, "COUNT", count_hint), kIdempotent);
    if (!r) {
      redis_failed(t, "_invalidate", r.error());
      co_return r.error();
    }
    if (!r->is_array() || r->elements.size() != 2 || !r->elements[0].is_string() ||
        !r->elements[1].is_array())
      co_return bad_reply("SCAN", *r);
    cursor = std::move(r->elements[0].str);
    auto& found = r->elements[1].elements;
    if (found.empty()) continue;
    auto unlink = redis::Command::make("UNLINK");
    for (const auto& k : found) {
      unlink.arg(k.str);
      std::string_view rest = std::string_view(k.str).substr(std::min(skip, k.str.size()));
      per_ns[std::string(rest.substr(0, rest.find(':')))] += 1;
    }
    auto u = co_await client_.exec(std::move(unlink), kIdempotent);
    if (!u) {
      redis_failed(t, "_invalidate", u.error());
      co_return u.error();
    }
    if (!u->is_integer()) co_return bad_reply("UNLINK", *u);
    removed += static_cast<std::uint64_t>(u->integer);
  } while (cursor != "0");
  redis_ok();
  for (const auto& [name, n] : per_ns)
    count(t, valid_namespace(name) ? std::string_view(name) : "_other",
          &detail::AtomicCounters::invalidations, n);
  co_return removed;
}

asio::awaitable<Result<std::uint64_t>> CacheService::invalidate_pattern(const TenantId& t,
                                                                        std::string_view pattern) {
  if (!valid_pattern(pattern)) co_return invalid();
  // The tenant part is literal (escaped): whatever the pattern, a match starts
  // with this tenant's prefix.
  std::string match = glob_escape(tenant_part(client_.key_prefix(), "cache", t));
  match.append(pattern);
  co_return co_await scan_unlink(t, std::move(match));
}

asio::awaitable<Result<std::uint64_t>> CacheService::invalidate_tenant(const TenantId& t) {
  std::string match = glob_escape(tenant_part(client_.key_prefix(), "cache", t));
  match.push_back('*');
  co_return co_await scan_unlink(t, std::move(match));
}

asio::awaitable<Result<std::uint64_t>> CacheService::keys_held(const TenantId& t) {
  std::string match = glob_escape(tenant_part(client_.key_prefix(), "cache", t));
  match.push_back('*');
  const auto count_hint =
      static_cast<std::int64_t>(std::max<std::size_t>(options_->scan_count, 1) * 2);
  std::string cursor = "0";
  // SCAN may return a key twice (when Redis rehashes during the scan): the
  // keys are de-duplicated, so the count is exact for keys that existed the
  // whole time (memory proportional to the tenant's keys; an admin call).
  std::unordered_set<std::string> seen;
  do {
    auto cmd = redis::Command::make("SCAN", cursor, "MATCH", match, "COUNT", count_hint);
    auto r = co_await client_.exec(std::move(cmd), kIdempotent);
    if (!r) {
      redis_failed(t, "_keys", r.error());
      co_return r.error();
    }
    if (!r->is_array() || r->elements.size() != 2 || !r->elements[0].is_string() ||
        !r->elements[1].is_array())
      co_return bad_reply("SCAN", *r);
    cursor = std::move(r->elements[0].str);
    for (auto& k : r->elements[1].elements) seen.insert(std::move(k.str));
  } while (cursor != "0");
  redis_ok();
  co_return static_cast<std::uint64_t>(seen.size());
}

// --- platform data ----------------------------------------------------------------------

namespace {
constexpr std::string_view kKpiKey = "dashboard";
constexpr std::string_view kGoldKey = "current";
}  // namespace

asio::awaitable<Result<std::optional<KpiData>>> CacheService::get_kpi(const TenantId& t) {
  auto r = co_await get_json(t, ns::kpi, kKpiKey);
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<KpiData>{};
  auto k = kpi_from_json(**r);
  if (!k) {
    count(t, ns::kpi, &detail::AtomicCounters::errors);
    co_return std::optional<KpiData>{};
  }
  co_return std::optional<KpiData>(*k);
}

asio::awaitable<Result<void>> CacheService::set_kpi(const TenantId& t, const KpiData& k) {
  co_return co_await set_json(t, ns::kpi, kKpiKey, to_json(k));
}

asio::awaitable<Result<Fetched<KpiData>>> CacheService::get_or_set_kpi(const TenantId& t,
                                                                       KpiLoader loader) {
  if (!loader) co_return invalid();
  JsonLoader jl = [&loader]() -> asio::awaitable<Result<json::value>> {
    auto r = co_await loader();
    if (!r) co_return r.error();
    co_return to_json(*r);
  };
  for (int attempt = 0;; ++attempt) {
    auto r = co_await get_or_set_json(t, ns::kpi, kKpiKey, jl);
    if (!r) co_return r.error();
    if (auto k = kpi_from_json(r->value)) co_return Fetched<KpiData>{*k, r->source};
    count(t, ns::kpi, &detail::AtomicCounters::errors);
    if (attempt > 0 || r->source != Source::hit) co_return make_error_code(errc::corrupt_data);
    (void)co_await del(t, ns::kpi, kKpiKey);
  }
}

redis::Command CacheService::kpi_read(const TenantId& t) const {
  return redis::Command::make("GET", redis_key(t, ns::kpi, kKpiKey));
}

std::optional<Fetched<KpiData>> CacheService::kpi_hit(const TenantId& t, const redis::Reply& r) {
  if (!r.is_string()) return std::nullopt;
  // The entry changes when the KPI is recomputed, and is read on every
  // dashboard request in between: the bytes of this thread's last hit per
  // tenant are kept with their parsed value, so a hit with the same bytes
  // skips parsing and validating them again. At most kMemoTenants entries.
  struct Parsed {
    std::string raw;
    KpiData value;
  };
  constexpr std::size_t kMemoTenants = 256;
  thread_local std::unordered_map<std::string, Parsed> memo;
  KpiData k;
  auto it = memo.find(t.str());
  if (it != memo.end() && it->second.raw == r.str) {
    k = it->second.value;
  } else {
    auto v = parse_json(r.str);
    if (!v) return std::nullopt;
    auto parsed = kpi_from_json(*v);
    if (!parsed) return std::nullopt;  // get_or_set_kpi() drops and reloads it
    k = *parsed;
    if (it == memo.end() && memo.size() >= kMemoTenants) memo.clear();
    memo[t.str()] = Parsed{r.str, k};
  }
  redis_ok();
  count(t, ns::kpi, &detail::AtomicCounters::hits);
  return Fetched<KpiData>{k, Source::hit};
}

asio::awaitable<Result<bool>> CacheService::invalidate_kpi(const TenantId& t) {
  co_return co_await del(t, ns::kpi, kKpiKey);
}

asio::awaitable<Result<std::optional<GoldPrice>>> CacheService::get_gold_price(const TenantId& t) {
  auto r = co_await get_json(t, ns::gold_price, kGoldKey);
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<GoldPrice>{};
  auto g = gold_price_from_json(**r);
  if (!g) {
    count(t, ns::gold_price, &detail::AtomicCounters::errors);
    co_return std::optional<GoldPrice>{};
  }
  co_return std::optional<GoldPrice>(std::move(*g));
}

asio::awaitable<Result<void>> CacheService::set_gold_price(const TenantId& t, const GoldPrice& g) {
  co_return co_await set_json(t, ns::gold_price, kGoldKey, to_json(g));
}

asio::awaitable<Result<Fetched<GoldPrice>>> CacheService::get_or_set_gold_price(
    const TenantId& t, GoldPriceLoader loader) {
  if (!loader) co_return invalid();
  JsonLoader jl = [&loader]() -> asio::awaitable<Result<json::value>> {
    auto r = co_await loader();
    if (!r) co_return r.error();
    co_return to_json(*r);
  };
  for (int attempt = 0;; ++attempt) {
    auto r = co_await get_or_set_json(t, ns::gold_price, kGoldKey, jl);
    if (!r) co_return r.error();
    if (auto g = gold_price_from_json(r->value))
      co_return Fetched<GoldPrice>{std::move(*g), r->source};
    count(t, ns::gold_price, &detail::AtomicCounters::errors);
    if (attempt > 0 || r->source != Source::hit) co_return make_error_code(errc::corrupt_data);
    (void)co_await del(t, ns::gold_price, kGoldKey);
  }
}

asio::awaitable<Result<std::optional<json::value>>> CacheService::get_customer(
    const TenantId& t, std::string_view id) {
  co_return co_await get_json(t, ns::customer, id);
}
asio::awaitable<Result<void>> CacheService::set_customer(const TenantId& t, std::string_view id,
                                                         const json::value& v) {
  co_return co_await set_json(t, ns::customer, id, v);
}
asio::awaitable<Result<std::optional<json::value>>> CacheService::get_product(const TenantId& t,
                                                                              std::string_view id) {
  co_return co_await get_json(t, ns::product, id);
}
asio::awaitable<Result<void>> CacheService::set_product(const TenantId& t, std::string_view id,
                                                        const json::value& v) {
  co_return co_await set_json(t, ns::product, id, v);
}
asio::awaitable<Result<std::optional<json::value>>> CacheService::get_invoice(const TenantId& t,
                                                                              std::string_view id) {
  co_return co_await get_json(t, ns::invoice, id);
}
asio::awaitable<Result<void>> CacheService::set_invoice(const TenantId& t, std::string_view id,
                                                        const json::value& v) {
  co_return co_await set_json(t, ns::invoice, id, v);
}

asio::awaitable<Result<std::optional<Permissions>>> CacheService::get_permissions(
    const TenantId& t, const UserId& user) {
  auto r = co_await get_json(t, ns::permissions, user.str());
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<Permissions>{};
  auto p = permissions_from_json(**r);
  if (!p) {
    count(t, ns::permissions, &detail::AtomicCounters::errors);
    co_return std::optional<Permissions>{};
  }
  co_return std::optional<Permissions>(std::move(*p));
}

asio::awaitable<Result<void>> CacheService::set_permissions(const TenantId& t, const UserId& user,
                                                            const Permissions& p) {
  co_return co_await set_json(t, ns::permissions, user.str(), to_json(p));
}

asio::awaitable<Result<Fetched<Permissions>>> CacheService::get_or_set_permissions(
    const TenantId& t, const UserId& user, PermissionsLoader loader) {
  if (!loader) co_return invalid();
  JsonLoader jl = [&loader]() -> asio::awaitable<Result<json::value>> {
    auto r = co_await loader();
    if (!r) co_return r.error();
    co_return to_json(*r);
  };
  for (int attempt = 0;; ++attempt) {
    auto r = co_await get_or_set_json(t, ns::permissions, user.str(), jl);
    if (!r) co_return r.error();
    if (auto p = permissions_from_json(r->value))
      co_return Fetched<Permissions>{std::move(*p), r->source};
    count(t, ns::permissions, &detail::AtomicCounters::errors);
    if (attempt > 0 || r->source != Source::hit) co_return make_error_code(errc::corrupt_data);
    (void)co_await del(t, ns::permissions, user.str());
  }
}

}  // namespace jeweler::cache
