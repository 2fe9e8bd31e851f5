// Lua scripts of the session service. Each is atomic and touches only keys of
// one hash tag ({bNNNN}) — except tenant_stats/live, which touch one key.
// Timestamps come from the Redis server clock (TIME) and are written with
// string.format('%d') (Lua's tostring would use exponents).
#pragma once

namespace jeweler::session::detail::lua {

// Shared prologue: `now` in ms; helpers.
#define JEWELER_SESSION_LUA_PRELUDE                                                              \
  "local t_ = redis.call('TIME')\n"                                                              \
  "local now = tonumber(t_[1]) * 1000 + math.floor(tonumber(t_[2]) / 1000)\n"                    \
  "local function s(n) return string.format('%d', n) end\n"                                      \
  "local function hexok(d) return #d == 64 and not string.find(d, '[^0-9a-f]') end\n"            \
  "local function idok(x) return x and #x > 0 and #x <= 64 and not string.find(x, '[^%w_.@-]') " \
  "end\n"

// get / extend.
// Field 'ver' counts changes other than lastActivity (an IP change here, any
// update()): SessionService's local validation cache compares it.
// KEYS[1] session. ARGV: idle_ms, touch_interval_ms, check_device ('1'/'0'), ua, ip
// -> 0 (none) | {'corrupt', reason} | {now, expires_at, touched, flags, previous_ip, fields}
inline constexpr const char* get = JEWELER_SESSION_LUA_PRELUDE R"lua(
local k = KEYS[1]
local ty = redis.call('TYPE', k).ok
if ty == 'none' then return 0 end
if ty ~= 'hash' then return {'corrupt', 'type ' .. ty} end
local h = redis.call('HGETALL', k)
local f = {}
for i = 1, #h, 2 do f[h[i]] = i + 1 end
local function get(name) local i = f[name]; if i then return h[i] end; return nil end
local mx = tonumber(get('mx') or '')
local la = tonumber(get('la') or '')
if not mx or not la then return {'corrupt', 'timestamps'} end
if mx <= now then redis.call('DEL', k); return 0 end
local ttl = math.min(tonumber(ARGV[1]), mx - now)
redis.call('PEXPIRE', k, ttl)
-- lastActivity is written on every run: eviction picks the least recently
-- active session and must see this use. 'st' is when the statistics sets
-- were last moved: 'touched' (the caller moves them again) once per
-- activity interval.
local touched = 0
local st = tonumber(get('st') or '') or la
if now - st >= tonumber(ARGV[2]) then
  touched = 1
  redis.call('HSET', k, 'la', s(now), 'st', s(now))
elseif now > la then
  redis.call('HSET', k, 'la', s(now))
end
if now > la then h[f['la']] = s(now) end
local flags, prev = 0, ''
if ARGV[3] == '1' then
  if get('ua') ~= ARGV[4] then flags = flags + 1 end
  local ip = get('ip')
  if ip ~= ARGV[5] then
    flags = flags + 2
    prev = ip or ''
    redis.call('HSET', k, 'ip', ARGV[5])
    local vr = redis.call('HINCRBY', k, 'ver', 1)
    if f['ver'] then h[f['ver']] = s(vr) else h[#h + 1] = 'ver'; h[#h + 1] = s(vr) end
    local n = redis.call('HINCRBY', k, 'ipc', 1)
    if f['ip'] then h[f['ip']] = ARGV[5] else h[#h + 1] = 'ip'; h[#h + 1] = ARGV[5] end
    if f['ipc'] then h[f['ipc']] = s(n) else h[#h + 1] = 'ipc'; h[#h + 1] = s(n) end
  end
end
return {now, now + ttl, touched, flags, prev, h}
)lua";

// create.
// Verified and pending (waiting for the second factor, tf ~= '1') sessions
// are counted apart: a new session evicts only sessions of its own kind,
// least recently active first, so that at most max_per_user of each kind
// live. A login with the password alone never ends a verified session.
// The caller passes the pending lifetimes (SESSION_2FA_PENDING_TTL) for a
// pending session.
// KEYS[1] new session, KEYS[2] user index.
// ARGV: base, id, digest, idle_ms, max_lifetime_ms, max_per_user,
//       tid, uid, em, role, ua, ip, dev, tf
// -> {'dup'} | {now, expires_at, expired_ids, evicted_ids, index_reset}
inline constexpr const char* create = JEWELER_SESSION_LUA_PRELUDE R"lua(
local base, id, dg = ARGV[1], ARGV[2], ARGV[3]
local idle, life, maxn = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local verified = ARGV[14] == '1'
if KEYS[1] ~= base .. dg then return redis.error_reply('ERR session key mismatch') end
local reset = 0
local ity = redis.call('TYPE', KEYS[2]).ok
if ity ~= 'none' and ity ~= 'hash' then redis.call('DEL', KEYS[2]); reset = 1 end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], id) == 1 then
  return {'dup'}
end
local idx = redis.call('HGETALL', KEYS[2])
local expired, live = {}, {}
for i = 1, #idx, 2 do
  local sid, d = idx[i], idx[i + 1]
  local la, tf = nil, nil
  if hexok(d) then
    local r = redis.pcall('HMGET', base .. d, 'la', 'tf')
    if type(r) == 'table' and not r.err then la, tf = r[1], r[2] end
  end
  if la then
    if (tf == '1') == verified then live[#live + 1] = {sid, d, tonumber(la) or 0} end
  else
    redis.call('HDEL', KEYS[2], sid)
    expired[#expired + 1] = sid
  end
end
local evicted = {}
if #live >= maxn then
  table.sort(live, function(a, b)
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[1] < b[1]
  end)
  for i = 1, #live - maxn + 1 do
    redis.call('DEL', base .. live[i][2])
    redis.call('HDEL', KEYS[2], live[i][1])
    evicted[#evicted + 1] = live[i][1]
  end
end
local ttl = math.min(idle, life)
redis.call('HSET', KEYS[1], 'v', '1', 'id', id, 'tid', ARGV[7], 'uid', ARGV[8], 'em', ARGV[9],
  'role', ARGV[10], 'ua', ARGV[11], 'ip', ARGV[12], 'dev', ARGV[13], 'lt', s(now), 'la', s(now),
  'mx', s(now + life), 'tf', ARGV[14], 'ipc', '0')
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[2], id, dg)
if redis.call('PTTL', KEYS[2]) < life then redis.call('PEXPIRE', KEYS[2], life) end
return {now, now + ttl, expired, evicted, reset}
)lua";

// update (partial, atomic).
// KEYS[1] session. ARGV: field, value, ... (may be empty)
// -> 0 | {'corrupt', reason} | {now, expires_at, fields}
inline constexpr const char* update = JEWELER_SESSION_LUA_PRELUDE R"lua(
local k = KEYS[1]
local ty = redis.call('TYPE', k).ok
if ty == 'none' then return 0 end
if ty ~= 'hash' then return {'corrupt', 'type ' .. ty} end
local mx = tonumber(redis.call('HGET', k, 'mx') or '')
if not mx then return {'corrupt', 'timestamps'} end
if mx <= now then redis.call('DEL', k); return 0 end
if #ARGV > 0 then
  redis.call('HSET', k, unpack(ARGV))
  redis.call('HINCRBY', k, 'ver', 1)
end
local pt = redis.call('PTTL', k)
if pt < 0 then pt = 0 end
return {now, now + pt, redis.call('HGETALL', k)}
)lua";

// rotate: the session moves to the new token's key (RENAME keeps the TTL), the
// index follows; the old token is dead when the script returns.
// Promotion (promote = '1', the patch sets tf = '1') of a pending session:
// it gets the normal lifetimes (absolute deadline loginTime + max lifetime,
// idle TTL) and joins the verified sessions, where the per-user limit
// evicts the least recently active others beyond max_per_user.
// KEYS[1] old session, KEYS[2] new session.
// ARGV: base, new digest, promote, idle_ms, max_lifetime_ms, max_per_user, field, value, ...
// -> 0 | {'dup'} | {'corrupt', reason} | {now, expires_at, fields, evicted_ids}
inline constexpr const char* rotate = JEWELER_SESSION_LUA_PRELUDE R"lua(
local base, dg = ARGV[1], ARGV[2]
if KEYS[2] ~= base .. dg then return redis.error_reply('ERR session key mismatch') end
local ty = redis.call('TYPE', KEYS[1]).ok
if ty == 'none' then return 0 end
if ty ~= 'hash' then return {'corrupt', 'type ' .. ty} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'dup'} end
local r = redis.call('HMGET', KEYS[1], 'id', 'tid', 'uid', 'mx', 'tf', 'lt')
local mx = tonumber(r[4] or '')
if not r[1] or not idok(r[2]) or not idok(r[3]) or not mx then return {'corrupt', 'fields'} end
if mx <= now then redis.call('DEL', KEYS[1]); return 0 end
local promote = ARGV[3] == '1' and r[5] ~= '1'
local lt = tonumber(r[6] or '')
if promote and not lt then return {'corrupt', 'timestamps'} end
redis.call('RENAME', KEYS[1], KEYS[2])
if #ARGV > 6 then redis.call('HSET', KEYS[2], unpack(ARGV, 7)) end
local idx = base .. 'u:' .. r[2] .. ':' .. r[3]
local ity = redis.call('TYPE', idx).ok
if ity ~= 'none' and ity ~= 'hash' then redis.call('DEL', idx) end
local evicted = {}
if promote then
  mx = lt + tonumber(ARGV[5])
  local ttl = math.min(tonumber(ARGV[4]), mx - now)
  if ttl <= 0 then
    redis.call('DEL', KEYS[2])
    redis.call('HDEL', idx, r[1])
    return 0
  end
  redis.call('HSET', KEYS[2], 'mx', s(mx))
  redis.call('PEXPIRE', KEYS[2], ttl)
  local maxn = tonumber(ARGV[6])
  local list = redis.call('HGETALL', idx)
  local live = {}
  for i = 1, #list, 2 do
    local sid, d = list[i], list[i + 1]
    if sid ~= r[1] and hexok(d) then
      local v = redis.pcall('HMGET', base .. d, 'la', 'tf')
      if type(v) == 'table' and not v.err and v[1] and v[2] == '1' then
        live[#live + 1] = {sid, d, tonumber(v[1]) or 0}
      end
    end
  end
  if #live >= maxn then
    table.sort(live, function(a, b)
      if a[3] ~= b[3] then return a[3] < b[3] end
      return a[1] < b[1]
    end)
    for i = 1, #live - maxn + 1 do
      redis.call('DEL', base .. live[i][2])
      redis.call('HDEL', idx, live[i][1])
      evicted[#evicted + 1] = live[i][1]
    end
  end
end
redis.call('HSET', idx, r[1], dg)
if redis.call('PTTL', idx) < mx - now then redis.call('PEXPIRE', idx, mx - now) end
local pt = redis.call('PTTL', KEYS[2])
if pt < 0 then pt = 0 end
return {now, now + pt, redis.call('HGETALL', KEYS[2]), evicted}
)lua";

// destroy by token.
// KEYS[1] session. ARGV: base
// -> 0 | {id, tid, uid} (empty strings when the data was unreadable)
inline constexpr const char* destroy = JEWELER_SESSION_LUA_PRELUDE R"lua(
local ty = redis.call('TYPE', KEYS[1]).ok
if ty == 'none' then return 0 end
if ty ~= 'hash' then redis.call('DEL', KEYS[1]); return {'', '', ''} end
local r = redis.call('HMGET', KEYS[1], 'id', 'tid', 'uid')
redis.call('DEL', KEYS[1])
if r[1] and idok(r[2]) and idok(r[3]) then
  local idx = ARGV[1] .. 'u:' .. r[2] .. ':' .. r[3]
  if redis.call('TYPE', idx).ok == 'hash' then redis.call('HDEL', idx, r[1]) end
  return {r[1], r[2], r[3]}
end
return {'', '', ''}
)lua";

// destroy one of a user's sessions by public id.
// KEYS[1] user index. ARGV: base, id -> 0 | 1
inline constexpr const char* destroy_by_id = JEWELER_SESSION_LUA_PRELUDE R"lua(
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local d = redis.call('HGET', KEYS[1], ARGV[2])
if not d then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
if not hexok(d) then return 0 end
return redis.call('DEL', ARGV[1] .. d)
)lua";

// destroy all of a user's sessions except `keep` (a public id, or '').
// KEYS[1] user index. ARGV: base, keep -> {destroyed_ids, expired_ids}
inline constexpr const char* destroy_all = JEWELER_SESSION_LUA_PRELUDE R"lua(
local ity = redis.call('TYPE', KEYS[1]).ok
if ity == 'none' then return {{}, {}} end
if ity ~= 'hash' then redis.call('DEL', KEYS[1]); return {{}, {}} end
local idx = redis.call('HGETALL', KEYS[1])
local destroyed, expired = {}, {}
for i = 1, #idx, 2 do
  local sid, d = idx[i], idx[i + 1]
  if sid ~= ARGV[2] then
    redis.call('HDEL', KEYS[1], sid)
    if hexok(d) and redis.call('DEL', ARGV[1] .. d) == 1 then
      destroyed[#destroyed + 1] = sid
    else
      expired[#expired + 1] = sid
    end
  end
end
return {destroyed, expired}
)lua";

// list a user's live sessions; expired index entries are removed.
// KEYS[1] user index. ARGV: base -> {now, expired_ids, {fields, pttl, fields, pttl, ...}}
inline constexpr const char* list = JEWELER_SESSION_LUA_PRELUDE R"lua(
local ity = redis.call('TYPE', KEYS[1]).ok
if ity == 'none' then return {now, {}, {}} end
if ity ~= 'hash' then redis.call('DEL', KEYS[1]); return {now, {}, {}} end
local idx = redis.call('HGETALL', KEYS[1])
local expired, out = {}, {}
for i = 1, #idx, 2 do
  local sid, d = idx[i], idx[i + 1]
  local h = nil
  if hexok(d) then
    h = redis.pcall('HGETALL', ARGV[1] .. d)
    if h.err or #h == 0 then h = nil end
  end
  if h then
    out[#out + 1] = h
    out[#out + 1] = redis.call('PTTL', ARGV[1] .. d)
  else
    redis.call('HDEL', KEYS[1], sid)
    expired[#expired + 1] = sid
  end
end
return {now, expired, out}
)lua";

// Tenant stats: drop members whose expected expiry passed, return the rest.
// KEYS[1] tenant stats ZSET -> members
inline constexpr const char* tenant_stats = JEWELER_SESSION_LUA_PRELUDE R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', s(now))
return redis.call('ZRANGE', KEYS[1], 0, -1)
)lua";

// Live sessions (all tenants). KEYS[1] live ZSET -> count
inline constexpr const char* live = JEWELER_SESSION_LUA_PRELUDE R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', s(now))
return redis.call('ZCARD', KEYS[1])
)lua";

#undef JEWELER_SESSION_LUA_PRELUDE

}  // namespace jeweler::session::detail::lua
