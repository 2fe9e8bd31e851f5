// The cache's key schema and Lua scripts (see detail/keys.hpp and
// docs/cache.md). Every script touches only the keys it is given, all of
// one tenant (one hash slot).
#include <jeweler/cache/detail/keys.hpp>
#include <jeweler/redis/log.hpp>

#include <spdlog/spdlog.h>

namespace jeweler::cache::detail {

std::string tenant_part(std::string_view prefix, std::string_view kind, std::string_view tenant) {
  std::string s;
  s.reserve(prefix.size() + kind.size() + tenant.size() + 4);
  s.append(prefix).append(kind).append(":{").append(tenant).append("}:");
  return s;
}

std::string value_key(std::string_view prefix, std::string_view tenant, std::string_view ns,
                      std::string_view key) {
  std::string s = tenant_part(prefix, "cache", tenant);
  s.append(ns).append(":").append(key);
  return s;
}

std::string lock_key(std::string_view prefix, std::string_view tenant, std::string_view ns,
                     std::string_view key) {
  std::string s = tenant_part(prefix, "cachelock", tenant);
  s.append(ns).append(":").append(key);
  return s;
}

std::string epoch_key(std::string_view prefix, std::string_view tenant) {
  return tenant_part(prefix, "cachemeta", tenant) + "epoch";
}

std::string index_key(std::string_view prefix, std::string_view tenant) {
  std::string s = tenant_part(prefix, "cacheidx", tenant);
  s.pop_back();  // "<prefix>cacheidx:{<tenant>}"
  return s;
}

std::string stats_key(std::string_view prefix, std::string_view tenant) {
  std::string s = tenant_part(prefix, "cachestats", tenant);
  s.pop_back();
  return s;
}

std::string member(std::string_view ns, std::string_view key) {
  std::string s;
  s.reserve(ns.size() + key.size() + 1);
  s.append(ns).append(":").append(key);
  return s;
}

boost::system::error_code bad_reply(std::string_view what, const redis::Reply& r) {
  if (r.is_error())
    jeweler::logger().warn("cache: {} failed: {}", what, r.error_code());
  else
    jeweler::logger().warn("cache: {}: unexpected reply {}", what, redis::to_debug_string(r));
  return internal();
}

namespace {

// The tenant key index (a ZSET: member "<namespace>:<key>", score = the
// entry's expiry in ms on Redis' clock, +inf without expiry), updated in the
// same script as the entry it describes.
//   prune: drops the members whose entries have expired (each once: the
//          index holds live entries only, plus entries Redis evicted).
//   add:   records an entry; the index key lives at least as long as its
//          longest-lived entry (no expiry while it holds a persistent one).
constexpr const char* kIndexLua = R"lua(
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(idx, now)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', string.format('%d', now))
end
local function add(idx, member, ttl, now)
  local pt = redis.call('PTTL', idx)
  if ttl > 0 then
    redis.call('ZADD', idx, string.format('%d', now + ttl), member)
    if pt == -2 or (pt >= 0 and pt < ttl) then redis.call('PEXPIRE', idx, ttl) end
  else
    redis.call('ZADD', idx, '+inf', member)
    if pt >= 0 then redis.call('PERSIST', idx) end
  end
end
)lua";

redis::Script with_index(std::string_view name, std::string_view body) {
  std::string src(kIndexLua);
  src.append(body);
  return redis::Script(name, std::move(src));
}

}  // namespace

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

// KEYS: value, lock, epoch, index. ARGV: token, epoch seen at acquire, value,
// ttl ms (0 = none), member.
// Stores only while this loader still holds the lock (del/set/invalidation
// remove it) and no invalidation ran since the load began.
const redis::Script& store_script() {
  static const redis::Script s = with_index("cache.store", R"lua(
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[2] then return 0 end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[3])
end
local now = now_ms()
prune(KEYS[4], now)
add(KEYS[4], ARGV[5], ttl, now)
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

// KEYS: value, lock, index. ARGV: member, value, ttl ms (0 = none).
// The lock goes too: a load in flight must not overwrite the new value.
const redis::Script& set_script() {
  static const redis::Script s = with_index("cache.set", R"lua(
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('DEL', KEYS[2])
local now = now_ms()
prune(KEYS[3], now)
add(KEYS[3], ARGV[1], ttl, now)
return 1
)lua");
  return s;
}

// KEYS: index, then value_i, lock_i for each entry. ARGV: ttl ms (0 = none),
// then member_i, value_i.
const redis::Script& mset_script() {
  static const redis::Script s = with_index("cache.mset", R"lua(
local ttl = tonumber(ARGV[1])
local now = now_ms()
prune(KEYS[1], now)
for i = 1, (#KEYS - 1) / 2 do
  if ttl > 0 then
    redis.call('SET', KEYS[2 * i], ARGV[2 * i + 1], 'PX', ttl)
  else
    redis.call('SET', KEYS[2 * i], ARGV[2 * i + 1])
  end
  redis.call('DEL', KEYS[2 * i + 1])
  add(KEYS[1], ARGV[2 * i], ttl, now)
end
return 1
)lua");
  return s;
}

// KEYS: value, lock, index. ARGV: member. Returns 1 when the value existed.
const redis::Script& del_script() {
  static const redis::Script s("cache.del", R"lua(
local n = redis.call('UNLINK', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return n
)lua");
  return s;
}

// KEYS: value, index. ARGV: member, ttl ms (0 = none). 0 when the value does
// not exist, else 1 with the new TTL in the value and the index.
const redis::Script& expire_script() {
  static const redis::Script s = with_index("cache.expire", R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
local now = now_ms()
prune(KEYS[2], now)
add(KEYS[2], ARGV[1], ttl, now)
return 1
)lua");
  return s;
}

// KEYS: counter, index. ARGV: by, ttl ms (0 = none), member. The TTL (and
// the index entry) only when this call creates the key.
const redis::Script& incr_script() {
  static const redis::Script s = with_index("cache.incr", R"lua(
local created = redis.call('EXISTS', KEYS[1]) == 0
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if created then
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
  local now = now_ms()
  prune(KEYS[2], now)
  add(KEYS[2], ARGV[3], ttl, now)
end
return v
)lua");
  return s;
}

// KEYS: index, value_1..value_n. ARGV: member_1..member_n. Removes each value
// and its index member; returns per value 1 when it existed, else 0.
const redis::Script& unlink_script() {
  static const redis::Script s("cache.unlink", R"lua(
local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('UNLINK', KEYS[i + 1])
end
redis.call('ZREM', KEYS[1], unpack(ARGV))
return out
)lua");
  return s;
}

// KEYS: index. The number of live entries (expired members pruned first).
const redis::Script& held_script() {
  static const redis::Script s = with_index("cache.held", R"lua(
prune(KEYS[1], now_ms())
return redis.call('ZCARD', KEYS[1])
)lua");
  return s;
}

// KEYS: stats hash. ARGV: ttl ms, then field_i, n_i. HINCRBY each, then the
// hash lives ttl ms from this write.
const redis::Script& stats_add_script() {
  static const redis::Script s("cache.stats", R"lua(
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
)lua");
  return s;
}

// KEYS: stats hash, index. ARGV: ttl ms, then field_i, n_i (may be none).
// Adds the deltas (as cache.stats), then returns {HGETALL of the hash, live
// entries of the index (expired members pruned first)}.
const redis::Script& stats_read_script() {
  static const redis::Script s = with_index("cache.stats_read", R"lua(
if #ARGV > 1 then
  for i = 2, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
prune(KEYS[2], now_ms())
return {redis.call('HGETALL', KEYS[1]), redis.call('ZCARD', KEYS[2])}
)lua");
  return s;
}

}  // namespace jeweler::cache::detail
