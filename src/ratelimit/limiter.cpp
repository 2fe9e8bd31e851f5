#include <jeweler/ratelimit/limiter.hpp>
#include <jeweler/redis/log.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <random>

namespace jeweler::ratelimit {

namespace {

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One run checks every limit of one hash-tag scope. KEYS[i] is the key of
// limit i; ARGV[1] = test-only clock override in Unix ms ('' = Redis TIME),
// ARGV[2] = an id unique to this request (sliding-log member: "<now>:<id>"), then 5 values per
// limit: algorithm (l = sliding log, c = sliding counter, g = GCRA), limit,
// window ms, burst (GCRA), take: 0 = check only, 1 = consume, n > 1 = consume
// and reserve up to n units (sliding counter only: a lease, Policy::lease).
// Returns {now, all_admitted, then per limit: admitted, consumed (units
// counted: 1, or the lease granted), remaining, reset_after_ms,
// retry_after_ms}. Nothing is counted unless every limit admits: a rejected
// request consumes nothing.
constexpr const char* kCheckLua = R"lua(
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Lua numbers are doubles: a number passed to redis.call or concatenated is
-- printed with '%.14g', the costliest step of the script. Times and counts
-- sent to Redis are therefore integers printed with '%d', or the caller's
-- own ARGV strings. A sliding-log member starts with its admission time: the
-- oldest entry's time is read without WITHSCORES.
local now_s = string.format('%d', now)
local function admitted_at(key, at)
  local o = redis.call('ZRANGE', key, at, at)
  local t = o[1] and tonumber(string.match(o[1], '^(%d+):'))
  if t then return t end
  o = redis.call('ZRANGE', key, at, at, 'WITHSCORES')  -- member of another format
  return tonumber(o[2])
end
-- The first command on a key: a value of another shape (another algorithm's
-- type, written by another version or by hand) is a fresh window, deleted,
-- never a WRONGTYPE error on every request.
local function first(cmd, key, ...)
  local r = redis.pcall(cmd, key, ...)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'WRONGTYPE', 1, true) then
      redis.call('DEL', key)
      return redis.call(cmd, key, ...)
    end
    error(r)
  end
  return r
end
local function cnt_until(p, c, e, W, target)
  if p * (W - e) + c * W <= target * W then return 0 end
  if c <= target and p > 0 then return math.ceil((W - e) - (target - c) * W / p - 1e-9) end
  if target < 0 or c == 0 then return -1 end
  return (W - e) + math.ceil(W - target * W / c - 1e-9)
end
local S = {}
local all = 1
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 5
  local take = tonumber(ARGV[b + 5])
  local s = {key = KEYS[i], algo = ARGV[b + 1], limit = tonumber(ARGV[b + 2]),
             win = tonumber(ARGV[b + 3]), take = take > 0, grant = 1}
  if s.algo == 'l' then
    first('ZREMRANGEBYSCORE', s.key, '-inf', string.format('%d', now - s.win))
    s.count = redis.call('ZCARD', s.key)
    s.admit = s.count < s.limit
  elseif s.algo == 'c' then
    s.idx = math.floor(now / s.win)
    s.e = now - s.idx * s.win
    local h = first('HMGET', s.key, 'w', 'c', 'p')
    local w, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
    s.same = w == s.idx
    if w == s.idx - 1 then p = c; c = 0 elseif not s.same then p = 0; c = 0 end
    s.c = c
    s.p = p
    s.admit = p * (s.win - s.e) + (c + 1) * s.win <= s.limit * s.win
    if s.admit and take > 1 and s.win - s.e > 250 then
      -- A lease takes at most 1/16 of what still fits: near the limit every
      -- unit is counted one request at a time again. None in the last 250 ms
      -- of a window: the Limiter could not use it.
      local room = math.floor((s.limit * s.win - p * (s.win - s.e)) / s.win) - c
      s.grant = math.max(1, math.min(take, math.floor(room / 16)))
    end
  else
    s.cap = tonumber(ARGV[b + 4])
    s.T = s.win / s.limit
    s.tol = s.cap * s.T
    local tat = tonumber(first('GET', s.key)) or now
    if tat < now then tat = now end
    s.tat = tat
    s.admit = now + s.tol - tat >= s.T - 1e-6
  end
  if not s.admit then all = 0 end
  S[i] = s
end
local out = {now, all}
for i = 1, #KEYS do
  local s = S[i]
  local consumed = all == 1 and s.take
  local remaining, reset, retry = 0, 0, 0
  if s.algo == 'l' then
    local count = s.count
    if consumed then
      redis.call('ZADD', s.key, now_s, now_s .. ':' .. ARGV[2])
      redis.call('PEXPIRE', s.key, ARGV[2 + (i - 1) * 5 + 3])
      count = count + 1
    end
    remaining = math.max(0, s.limit - count)
    if count > 0 then
      local at = math.max(0, count - s.limit)
      reset = admitted_at(s.key, at) + s.win - now
      if not s.admit then retry = reset end
    end
  elseif s.algo == 'c' then
    local c = s.c
    if consumed then
      c = c + s.grant
      if s.same then
        -- The window's hash exists with its expiry, (idx + 2) * win: the
        -- same for every request of the window, so it is set once.
        redis.call('HINCRBY', s.key, 'c', string.format('%d', s.grant))
      else
        redis.call('HSET', s.key, 'w', string.format('%d', s.idx), 'c', string.format('%d', c),
                   'p', string.format('%d', s.p))
        redis.call('PEXPIRE', s.key, string.format('%d', 2 * s.win - s.e))
      end
    end
    local W, e, p = s.win, s.e, s.p
    remaining = math.floor((s.limit * W - (p * (W - e) + c * W)) / W)
    if remaining < 0 then remaining = 0 end
    if remaining < s.limit then reset = math.min(W, cnt_until(p, c, e, W, s.limit - remaining - 1)) end
    if not s.admit then retry = cnt_until(p, c, e, W, s.limit - 1) end
  else
    local tat = s.tat
    if consumed then
      tat = tat + s.T
      redis.call('SET', s.key, string.format('%.3f', tat), 'PX', math.max(1, math.ceil(tat - now)))
    end
    local slack = now + s.tol - tat
    remaining = math.floor(slack / s.T + 1e-9)
    if remaining < 0 then remaining = 0 end
    if remaining > s.cap then remaining = s.cap end
    if remaining < s.cap then reset = math.ceil((remaining + 1) * s.T - slack - 1e-9) end
    if not s.admit then retry = math.ceil(s.T - slack - 1e-9) end
  end
  out[#out + 1] = s.admit and 1 or 0
  out[#out + 1] = consumed and s.grant or 0
  out[#out + 1] = remaining
  out[#out + 1] = math.max(0, reset)
  out[#out + 1] = math.max(0, retry)
end
return out
)lua";

// Gives back what one check run counted (another scope rejected the
// request). Same KEYS/ARGV layout; ARGV[1] is the `now` the check ran at.
// `take` is how many units to give back: 1, or for a sliding counter the
// unused units of a lease (0 = nothing for that key).
constexpr const char* kRefundLua = R"lua(
local at = tonumber(ARGV[1])
local member = ARGV[1] .. ':' .. ARGV[2]
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 5
  local key, algo = KEYS[i], ARGV[b + 1]
  local limit, win = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local n = tonumber(ARGV[b + 5])
  if n > 0 then
    if algo == 'l' then
      redis.call('ZREM', key, member)
    elseif algo == 'c' then
      local idx = math.floor(at / win)
      local w = tonumber(redis.call('HGET', key, 'w'))
      local field = nil
      if w == idx then field = 'c' elseif w == idx + 1 then field = 'p' end
      local cur = field and tonumber(redis.call('HGET', key, field)) or 0
      if cur > 0 then
        redis.call('HINCRBY', key, field, string.format('%d', -math.min(n, cur)))
      end
    else
      local tat = tonumber(redis.call('GET', key))
      if tat then redis.call('SET', key, string.format('%.3f', tat - win / limit), 'KEEPTTL') end
    end
  end
end
return 1
)lua";

char algo_code(Algorithm a) {
  switch (a) {
    case Algorithm::sliding_log:
      return 'l';
    case Algorithm::sliding_counter:
      return 'c';
    case Algorithm::gcra:
      return 'g';
  }
  return 'l';
}

}  // namespace

const redis::Script& check_script() {
  static const redis::Script s("ratelimit.check", kCheckLua);
  return s;
}

const redis::Script& refund_script() {
  static const redis::Script s("ratelimit.refund", kRefundLua);
  return s;
}

Limiter::Limiter(redis::Client& client, std::shared_ptr<Stats> stats,
                 std::shared_ptr<Fallback> fallback, LimiterOptions options)
    : client_(client),
      stats_(stats ? std::move(stats) : std::make_shared<Stats>()),
      fallback_(fallback ? std::move(fallback) : std::make_shared<Fallback>()),
      options_(options) {
  std::random_device rd;
  std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (int i = 0; i < 10; ++i) {
    member_prefix_ += digits[r % 36];
    r /= 36;
  }
  member_prefix_ += '.';
}

std::string Limiter::next_member() {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string m = member_prefix_;
  char buf[16];
  int n = 0;
  std::uint64_t v = ++seq_;
  do {
    buf[n++] = digits[v % 36];
    v /= 36;
  } while (v);
  while (n) m += buf[--n];
  return m;
}

detail::AtomicPolicyCounters& Limiter::counters(const Policy* p) {
  auto it = counters_.find(p);
  if (it != counters_.end()) return *it->second;
  auto& c = stats_->policy(p->name);
  if (counters_.size() > 1024) counters_.clear();  // policies built per request: stay bounded
  counters_.emplace(p, &c);
  return c;
}

void Limiter::count(const Decision& d, const std::vector<Check>& checks) {
  for (std::size_t i = 0; i < d.results.size(); ++i) {
    const auto& r = d.results[i];
    auto& c = counters(checks[i].policy);
    if (!r.allowed)
      c.rejected.fetch_add(1, std::memory_order_relaxed);
    else if (r.consumed)
      c.allowed.fetch_add(1, std::memory_order_relaxed);
    if (r.fallback) c.fallback.fetch_add(1, std::memory_order_relaxed);
  }
}

Result<Decision> Limiter::degrade(const std::vector<Check>& checks, boost::system::error_code ec,
                                  std::optional<std::int64_t> now, std::string_view detail) {
  if (is_unavailable(ec)) {
    down_ = true;
    if (stats_->enter_degraded())
      jeweler::logger().warn(
          "ratelimit: Redis unusable ({}): fail-open limits use the in-process fallback, "
          "fail-closed limits answer unavailable until it recovers",
          ec.message());
  } else {
    // Redis answered, with an error: shown in /health ("failing") and in
    // jeweler_ratelimit_errors_total; logged once per streak.
    const std::string what = detail.empty() ? ec.message() : std::string(detail);
    if (stats_->record_error(what))
      jeweler::logger().error(
          "ratelimit: checks fail with an error from Redis ({}): fail-open limits use the "
          "in-process fallback, fail-closed limits answer unavailable until a check succeeds",
          what);
    for (const auto& c : checks) counters(c.policy).errors.fetch_add(1, std::memory_order_relaxed);
  }
  bool closed = std::any_of(checks.begin(), checks.end(),
                            [](const Check& c) { return !c.policy->fail_open; });
  if (closed) {
    for (const auto& c : checks)
      if (!c.policy->fail_open)
        counters(c.policy).unavailable.fetch_add(1, std::memory_order_relaxed);
    if (is_unavailable(ec)) return ec;
    return make_error_code(errc::internal);
  }
  Decision d = fallback_->evaluate(checks, now);
  if (d.allowed)
    for (std::size_t i = 0; i < checks.size(); ++i) {
      const auto& k = checks[i];
      if (k.policy->consume != Consume::on_failure || !d.results[i].consumed) continue;
      Reservation r;
      r.policy = k.policy;
      r.key = Fallback::key_of(k);
      r.scope = k.key.scope();
      r.at_ms = d.results[i].now_ms;
      r.fallback = true;
      d.reserved.push_back(std::move(r));
    }
  count(d, checks);
  return d;
}

asio::awaitable<void> Limiter::release(std::vector<Reservation> reserved) {
  // One refund run per scope (one check script run each, at its own clock).
  std::vector<detail::CheckGroup> groups;
  std::vector<const Reservation*> heads;
  for (const auto& r : reserved) {
    if (!r.policy) continue;
    if (r.fallback) {
      fallback_->release(r);
      continue;
    }
    std::size_t g = 0;
    while (g < heads.size() && (heads[g]->scope != r.scope || heads[g]->at_ms != r.at_ms ||
                                heads[g]->member != r.member))
      ++g;
    if (g == heads.size()) {
      heads.push_back(&r);
      groups.emplace_back();
      groups[g].args.push_back(std::to_string(r.at_ms));
      groups[g].args.push_back(r.member);
    }
    const Policy& pol = *r.policy;
    groups[g].keys.push_back(r.key);
    groups[g].args.emplace_back(1, algo_code(pol.algorithm));
    groups[g].args.push_back(std::to_string(pol.limit));
    groups[g].args.push_back(std::to_string(pol.window.count()));
    groups[g].args.push_back(std::to_string(pol.capacity()));
    groups[g].args.push_back("1");
  }
  if (groups.empty()) co_return;
  redis::Pipeline p;
  for (const auto& g : groups) p.add_eval(refund_script(), g.keys, g.args);
  auto r = co_await client_.exec(std::move(p), exec_options());
  if (!r) {
    jeweler::logger().warn("ratelimit: giving back a reserved unit failed (it stays counted): {}",
                           r.error().message());
    co_return;
  }
  for (const auto& rep : *r)
    if (rep.is_error()) {
      jeweler::logger().warn("ratelimit: giving back a reserved unit failed (it stays counted): {}",
                             redis::to_debug_string(rep));
      break;
    }
}

asio::awaitable<Result<Decision>> Limiter::check(std::vector<Check> checks) {
  co_return co_await run(std::move(checks), std::nullopt);
}

asio::awaitable<Result<Decision>> Limiter::check(const Policy& policy, Key key, Mode mode) {
  std::vector<Check> v;
  v.push_back(Check{&policy, std::move(key), mode});
  co_return co_await run(std::move(v), std::nullopt);
}

asio::awaitable<Result<Decision>> Limiter::check_at(std::vector<Check> checks,
                                                    std::int64_t now_ms) {
  co_return co_await run(std::move(checks), now_ms);
}

asio::awaitable<Result<Decision>> Limiter::run(std::vector<Check> checks,
                                               std::optional<std::int64_t> now) {
  redis::Pipeline p;
  auto pending = prepare(std::move(checks), now, p);
  if (pending.decided) co_return std::move(*pending.decided);
  auto r = co_await client_.exec(std::move(p), exec_options());
  co_return co_await end_check(pending, r);
}

redis::ExecOptions Limiter::exec_options() const noexcept {
  redis::ExecOptions opts;
  opts.timeout = options_.timeout;
  opts.idempotent = false;  // a script run counts: never resent
  return opts;
}

Limiter::PendingCheck Limiter::begin_check(std::vector<Check> checks, redis::Pipeline& p) {
  return prepare(std::move(checks), std::nullopt, p);
}

Limiter::PendingCheck Limiter::prepare(std::vector<Check> checks, std::optional<std::int64_t> now,
                                       redis::Pipeline& p) {
  PendingCheck c;
  c.now = now;
  c.first = p.size();
  if (checks.empty()) {
    c.decided = Decision{};
    return c;
  }
  for (const auto& k : checks)
    if (!k.policy) {
      c.decided = make_error_code(errc::invalid_argument);
      return c;
    }
  // Tied to this thread's client, not to a state of the limiter: skipped
  // only after this Limiter's own call failed AND while its client reports
  // the connection down at this moment; the first call after the client
  // reconnected goes to Redis (issue 15.2).
  if (options_.skip_redis_while_down && down_ && !client_.health().up()) {
    c.decided = degrade(checks, make_error_code(redis::errc::unavailable), now);
    return c;
  }

  // One script run per hash-tag scope, in order of first appearance, for the
  // checks no lease admits.
  auto& groups = c.groups;
  std::vector<std::pair<const std::string*, std::size_t>> by_scope;
  const std::string member = next_member();
  c.member = member;
  const std::string& prefix = client_.key_prefix();
  const std::int64_t steady = steady_now_ms();
  c.sent_ms = steady;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const auto& k = checks[i];
    const Policy& pol = *k.policy;
    std::string key = k.key.redis_key(prefix, pol);
    // A forced clock (tests) never mixes with leases taken on Redis time. A
    // policy counted on failure (auth) never leases: its units are reserved
    // one attempt at a time.
    const bool leasable = !now && pol.lease > 1 && k.mode == Mode::consume &&
                          pol.consume == Consume::always &&
                          pol.algorithm == Algorithm::sliding_counter;
    std::int64_t ask = 0;
    if (leasable) {
      ask = 1;  // a key not seen yet: count this request only
      if (auto it = leases_.find(key); it != leases_.end()) {
        auto& l = it->second;
        if (l.usable_at(steady)) {
          --l.left;
          ++l.used;
          LimitResult r;
          r.policy = &pol;
          r.allowed = r.consumed = true;
          r.limit = pol.limit;
          r.remaining = l.remaining + l.left;
          r.window = pol.window;
          r.now_ms = steady + l.offset_ms;
          r.reset_after =
              std::chrono::milliseconds(std::max<std::int64_t>(0, l.reset_at_ms - r.now_ms));
          c.leased.push_back({i, std::move(key), l.generation, r});
          continue;
        }
        if (l.left > 0) {
          // Expired unused: given back in this round trip, before the check.
          std::vector<std::string> keys = {key};
          std::vector<std::string> args = {std::to_string(l.granted_at_ms),
                                           member,
                                           std::string(1, 'c'),
                                           std::to_string(pol.limit),
                                           std::to_string(pol.window.count()),
                                           std::to_string(pol.capacity()),
                                           std::to_string(l.left)};
          p.add_eval(refund_script(), keys, args);
          l.left = 0;
        }
        // Used up within its time: ask for twice as much. Expired: ask for
        // what was used then (a slow client reserves nothing it won't use).
        ask = l.until_ms > steady ? std::min(pol.lease, 2 * l.ask) : l.used + 1;
      }
    }
    std::size_t g = groups.size();
    for (const auto& [scope, gi] : by_scope)
      if (*scope == k.key.scope()) g = gi;
    if (g == groups.size()) {
      groups.emplace_back();
      by_scope.emplace_back(&k.key.scope(), g);
      groups[g].args.push_back(now ? std::to_string(*now) : std::string());
      groups[g].args.push_back(member);
    }
    auto& grp = groups[g];
    grp.index.push_back(i);
    grp.keys.push_back(std::move(key));
    grp.ask.push_back(ask);
    grp.args.emplace_back(1, algo_code(pol.algorithm));
    grp.args.push_back(std::to_string(pol.limit));
    grp.args.push_back(std::to_string(pol.window.count()));
    grp.args.push_back(std::to_string(pol.capacity()));
    grp.args.push_back(leasable ? std::to_string(ask) : k.mode == Mode::consume ? "1" : "0");
  }
  c.checks = std::move(checks);
  c.first = p.size();    // after the give-backs of expired leases
  if (groups.empty()) {  // every check admitted by a lease: no Redis
    Decision d;
    d.results.resize(c.checks.size());
    for (auto& l : c.leased) d.results[l.index] = l.result;
    count(d, c.checks);
    c.decided = std::move(d);
    return c;
  }
  for (const auto& g : groups) p.add_eval(check_script(), g.keys, g.args);
  return c;
}

detail::Lease* Limiter::usable_lease(const std::string& key, std::int64_t steady_ms) {
  auto it = leases_.find(key);
  return it != leases_.end() && it->second.usable_at(steady_ms) ? &it->second : nullptr;
}

void Limiter::keep_lease(const std::string& key, const Policy& p, std::int64_t ask,
                         std::int64_t units, const LimitResult& r, std::int64_t sent_ms) {
  const std::int64_t steady = steady_now_ms();
  // Redis time is estimated from when the check was sent: ahead of the true
  // time by the round trip, so the lease errs towards ending early. It stops
  // kLeaseMargin before its window ends, and lease_ttl after the check (the
  // headers it reports stay fresh). Units it cannot use are kept as expired:
  // the key's next script run on this thread gives them back.
  constexpr std::int64_t kLeaseMargin = 50;
  const std::int64_t win = p.window.count();
  const std::int64_t offset = r.now_ms - sent_ms;
  const std::int64_t window_end = (r.now_ms / win + 1) * win;
  const std::int64_t until =
      std::min(sent_ms + options_.lease_ttl.count(), window_end - kLeaseMargin - offset);
  auto it = leases_.find(key);
  if (it == leases_.end()) {
    if (leases_.size() >= 4096) {  // bounded: drop the spent, then everything
      std::erase_if(leases_, [&](const auto& e) {
        return e.second.left == 0 && e.second.until_ms <= steady;
      });
      if (leases_.size() >= 4096) leases_.clear();  // their units stay counted to the window's end
    }
    it = leases_.emplace(key, detail::Lease{}).first;
  }
  auto& l = it->second;
  const bool merge = l.usable_at(steady) && l.granted_at_ms / win == r.now_ms / win;
  if (!merge) {  // a concurrent grant's usable units are added; others were given back or lost
    l.left = 0;
    l.used = 0;
    ++l.generation;
    l.until_ms = until;
  } else {
    l.until_ms = std::min(l.until_ms, until);
  }
  l.left += units;
  l.ask = ask;
  l.granted_at_ms = r.now_ms;
  l.remaining = r.remaining;
  l.reset_at_ms = r.reset_at_ms();
  l.offset_ms = offset;
  if (l.until_ms <= steady) l.until_ms = steady;  // unusable: given back by the next run
}

void Limiter::return_leased(PendingCheck& c) {
  for (auto& l : c.leased) {
    if (auto it = leases_.find(l.key);
        it != leases_.end() && it->second.generation == l.generation) {
      ++it->second.left;
      --it->second.used;
    }
    l.result.consumed = false;
    l.result.remaining = std::min(l.result.remaining + 1, l.result.limit);
  }
}

asio::awaitable<Result<Decision>> Limiter::end_check(
    PendingCheck& c, const Result<std::vector<redis::Reply>>& result) {
  if (c.decided) co_return std::move(*c.decided);
  const auto& checks = c.checks;
  const auto& groups = c.groups;
  const auto& now = c.now;
  const auto opts = exec_options();
  if (!result) {
    return_leased(c);
    co_return degrade(checks, result.error(), now);
  }
  const auto& replies = *result;

  Decision d;
  d.results.resize(checks.size());
  for (auto& l : c.leased) d.results[l.index] = l.result;
  struct Grant {
    std::size_t group, member;
    std::int64_t units;
  };
  std::vector<Grant> grants;
  std::vector<std::int64_t> group_now(groups.size(), 0);
  std::vector<bool> group_consumed(groups.size(), false);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    static const redis::Reply missing;
    const auto& rep = c.first + g < replies.size() ? replies[c.first + g] : missing;
    const std::size_t n = groups[g].index.size();
    if (!rep.is_array() || rep.elements.size() != 2 + 5 * n) {
      // What other groups counted stays counted: this is a bug or a broken
      // server, not a decision.
      return_leased(c);
      co_return degrade(checks, make_error_code(errc::internal), now,
                        "unexpected script reply: " + redis::to_debug_string(rep));
    }
    auto num = [&](std::size_t k) { return rep.elements[k].to_integer().value_or(0); };
    group_now[g] = num(0);
    if (num(1) != 1) d.allowed = false;
    for (std::size_t j = 0; j < n; ++j) {
      std::size_t i = groups[g].index[j];
      std::size_t b = 2 + 5 * j;
      auto& r = d.results[i];
      r.policy = checks[i].policy;
      r.allowed = num(b) == 1;
      const std::int64_t units = num(b + 1);
      r.consumed = units >= 1;
      if (r.consumed && groups[g].ask[j] > 0)
        grants.push_back({g, j, units});
      else if (r.consumed)
        group_consumed[g] = true;
      r.limit = r.policy->algorithm == Algorithm::gcra ? r.policy->capacity() : r.policy->limit;
      r.remaining = num(b + 2);
      r.window = r.policy->window;
      r.reset_after = std::chrono::milliseconds(num(b + 3));
      r.retry_after = std::chrono::milliseconds(num(b + 4));
      r.now_ms = group_now[g];
      if (!now && checks[i].policy->lease > 0 && checks[i].mode == Mode::check_only)
        if (auto* l = usable_lease(groups[g].keys[j], steady_now_ms())) {
          r.remaining += l->left;  // reserved here, still free for this thread's requests
          r.allowed = true;
        }
    }
  }

  // What a lease granted beyond this request's unit stays reserved for the
  // next requests on this thread; a request not admitted keeps them all.
  for (const auto& gr : grants) {
    auto& r = d.results[groups[gr.group].index[gr.member]];
    const std::int64_t keep = d.allowed ? gr.units - 1 : gr.units;
    keep_lease(groups[gr.group].keys[gr.member], *r.policy, groups[gr.group].ask[gr.member], keep,
               r, c.sent_ms);
    r.remaining += keep;
    if (!d.allowed) r.consumed = false;
  }

  if (!d.allowed) {
    // Another scope rejected the request: give back what was counted.
    return_leased(c);
    for (auto& l : c.leased) d.results[l.index] = l.result;
    redis::Pipeline refund;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (!group_consumed[g]) continue;
      auto args = groups[g].args;
      args[0] = std::to_string(group_now[g]);
      for (std::size_t j = 0; j < groups[g].index.size(); ++j)  // leases stay reserved
        args[2 + 5 * j + 4] = d.results[groups[g].index[j]].consumed ? "1" : "0";
      refund.add_eval(refund_script(), groups[g].keys, args);
      for (auto i : groups[g].index) {
        auto& r = d.results[i];
        if (!r.consumed) continue;
        r.consumed = false;
        r.remaining = std::min(r.remaining + 1, r.limit);
        // Nothing counted any more: no slot to free (t=0, as for an unused key).
        if (r.remaining >= r.limit) r.reset_after = std::chrono::milliseconds(0);
      }
    }
    if (!refund.empty()) {
      auto r = co_await client_.exec(std::move(refund), opts);
      if (!r) jeweler::logger().warn("ratelimit: refund failed: {}", r.error().message());
    }
  }

  if (d.allowed)  // units held by an on-failure policy until release()
    for (std::size_t g = 0; g < groups.size(); ++g)
      for (std::size_t j = 0; j < groups[g].index.size(); ++j) {
        const std::size_t i = groups[g].index[j];
        if (checks[i].policy->consume != Consume::on_failure || !d.results[i].consumed) continue;
        Reservation r;
        r.policy = checks[i].policy;
        r.key = groups[g].keys[j];
        r.scope = checks[i].key.scope();
        r.at_ms = group_now[g];
        r.member = c.member;
        d.reserved.push_back(std::move(r));
      }

  down_ = false;
  if (stats_->leave_degraded()) jeweler::logger().info("ratelimit: Redis reachable again");
  stats_->record_success();
  count(d, checks);
  co_return d;
}

bool Decision::fallback() const noexcept {
  return std::any_of(results.begin(), results.end(), [](const auto& r) { return r.fallback; });
}

const LimitResult* Decision::most_restrictive() const noexcept {
  const LimitResult* best = nullptr;
  for (const auto& r : results) {
    if (!best) {
      best = &r;
      continue;
    }
    if (r.allowed != best->allowed) {
      if (!r.allowed) best = &r;
      continue;
    }
    if (!r.allowed) {
      if (r.retry_after > best->retry_after) best = &r;
      continue;
    }
    if (r.remaining != best->remaining) {
      if (r.remaining < best->remaining) best = &r;
    } else if (r.reset_at_ms() != best->reset_at_ms()) {
      if (r.reset_at_ms() > best->reset_at_ms()) best = &r;
    } else if (r.limit < best->limit) {
      best = &r;
    }
  }
  return best;
}

std::chrono::milliseconds Decision::retry_after() const noexcept {
  std::chrono::milliseconds m{0};
  for (const auto& r : results)
    if (!r.allowed) m = std::max(m, r.retry_after);
  return m;
}

}  // namespace jeweler::ratelimit
