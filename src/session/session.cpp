#include <jeweler/redis/log.hpp>
#include <jeweler/session/codec.hpp>
#include <jeweler/session/detail/scripts.hpp>
#include <jeweler/session/session.hpp>
#include <jeweler/session/token.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <string_view>

namespace jeweler::session {

namespace detail {

Keys::Keys(std::string prefix) : prefix_(std::move(prefix)) {
  if (prefix_.find_first_of("{}") != std::string::npos)
    throw redis::ConfigError("REDIS_KEY_PREFIX: must not contain '{' or '}' (hash tags)");
}

std::string Keys::base(std::uint32_t bucket) const {
  return fmt::format("{}sess:{{b{:04}}}:", prefix_, bucket);
}

std::string Keys::index(const TenantId& tenant, const UserId& user) const {
  return base(user_bucket(tenant, user)) + "u:" + tenant.str() + ":" + user.str();
}

std::string Keys::totp_used(const TenantId& tenant, const UserId& user, std::int64_t step) const {
  return base(user_bucket(tenant, user)) + "totp:" + tenant.str() + ":" + user.str() + ":" +
         std::to_string(step);
}

std::string Keys::tenant_stats(const TenantId& tenant) const {
  return prefix_ + "sess:tenant:" + tenant.str();
}

}  // namespace detail

namespace {

using boost::system::error_code;
using redis::Reply;

const redis::Script& script_get() {
  static const redis::Script s("session.get", detail::lua::get);
  return s;
}
const redis::Script& script_create() {
  static const redis::Script s("session.create", detail::lua::create);
  return s;
}
const redis::Script& script_update() {
  static const redis::Script s("session.update", detail::lua::update);
  return s;
}
const redis::Script& script_rotate() {
  static const redis::Script s("session.rotate", detail::lua::rotate);
  return s;
}
const redis::Script& script_destroy() {
  static const redis::Script s("session.destroy", detail::lua::destroy);
  return s;
}
const redis::Script& script_destroy_by_id() {
  static const redis::Script s("session.destroy_by_id", detail::lua::destroy_by_id);
  return s;
}
const redis::Script& script_destroy_all() {
  static const redis::Script s("session.destroy_all", detail::lua::destroy_all);
  return s;
}
const redis::Script& script_list() {
  static const redis::Script s("session.list", detail::lua::list);
  return s;
}
const redis::Script& script_tenant_stats() {
  static const redis::Script s("session.tenant_stats", detail::lua::tenant_stats);
  return s;
}
const redis::Script& script_live() {
  static const redis::Script s("session.live", detail::lua::live);
  return s;
}

error_code err(errc e) {
  return make_error_code(e);
}

// Result<bool> is constructible from error_code (explicit operator bool), so
// its error has to be placed explicitly.
Result<bool> bool_error(error_code ec) {
  return Result<bool>(boost::system::in_place_error, ec);
}

// A Redis error reply: data about one command. Replies that mean "the server
// cannot serve right now" are unavailability (503, retry), never "no session".
error_code from_error_reply(const Reply& r, std::string_view op) {
  auto code = r.error_code();
  static constexpr std::string_view transient[] = {"LOADING",    "BUSY",     "MASTERDOWN",
                                                   "READONLY",   "TRYAGAIN", "CLUSTERDOWN",
                                                   "NOREPLICAS", "MISCONF",  "OOM"};
  for (auto t : transient) {
    if (code == t) {
      jeweler::logger().warn("session: {}: redis is not serving ({})", op, code);
      return err(errc::unavailable);
    }
  }
  jeweler::logger().error("session: {}: unexpected redis error reply: {}", op,
                          redis::to_debug_string(r));
  return err(errc::internal);
}

error_code unexpected(const Reply& r, std::string_view op) {
  jeweler::logger().error("session: {}: unexpected reply shape: {}", op, redis::to_debug_string(r));
  return err(errc::internal);
}

bool is_tagged(const Reply& r, std::string_view tag) {
  return r.is_array() && !r.elements.empty() && r.elements[0].is_string() &&
         r.elements[0].str == tag;
}

std::optional<std::int64_t> int_at(const Reply& r, std::size_t i) {
  if (i >= r.elements.size()) return std::nullopt;
  return r.elements[i].to_integer();
}

std::optional<codec::Fields> fields_of(const Reply& r) {
  if (!r.is_array() || r.elements.size() % 2 != 0) return std::nullopt;
  codec::Fields f;
  f.reserve(r.elements.size() / 2);
  for (std::size_t i = 0; i < r.elements.size(); i += 2) {
    if (!r.elements[i].is_string() || !r.elements[i + 1].is_string()) return std::nullopt;
    f.emplace_back(r.elements[i].str, r.elements[i + 1].str);
  }
  return f;
}

std::vector<std::string> strings_of(const Reply& r) {
  std::vector<std::string> out;
  if (!r.is_array()) return out;
  for (const auto& e : r.elements)
    if (e.is_string()) out.push_back(e.str);
  return out;
}

std::string ms(std::chrono::milliseconds d) {
  return std::to_string(d.count());
}

// Names a session in logs without the token: the first 8 hex digits of its
// digest (useless to an attacker, enough to find the key).
std::string key_hint(const TokenRef& t) {
  return t.digest_hex.substr(0, 8);
}

std::string tenant_member(const UserId& u, std::string_view id) {
  return u.str() + ":" + std::string(id);
}
std::string live_member(const TenantId& t, const UserId& u, std::string_view id) {
  return t.str() + ":" + u.str() + ":" + std::string(id);
}

}  // namespace

SessionService::SessionService(redis::Client& client, std::shared_ptr<const Options> options,
                               std::shared_ptr<Stats> stats)
    : client_(client),
      options_(options ? std::move(options) : std::make_shared<const Options>()),
      stats_(stats ? std::move(stats) : std::make_shared<Stats>()),
      keys_(client.key_prefix()) {
  options_->validate();
}

asio::awaitable<void> SessionService::update_index_stats(redis::Pipeline p) {
  if (p.empty()) co_return;
  auto r = co_await client_.exec(std::move(p));
  if (!r) {
    jeweler::logger().warn("session: tenant statistics not updated: {}", r.error().message());
    co_return;
  }
  for (const auto& rep : *r)
    if (rep.is_error())
      jeweler::logger().warn("session: tenant statistics not updated: {}",
                             redis::to_debug_string(rep));
}

asio::awaitable<Result<IssuedSession>> SessionService::create(NewSession in) {
  if (auto ec = normalize(in)) co_return ec;
  const auto bucket = user_bucket(in.tenant_id, in.user_id);
  const std::string base = keys_.base(bucket);
  const std::string index = keys_.index(in.tenant_id, in.user_id);
  const auto& o = *options_;
  // A session waiting for its second factor lives SESSION_2FA_PENDING_TTL at
  // most (idle and absolute); the script counts it apart from verified ones.
  const auto idle = in.two_factor_verified ? o.idle_ttl : std::min(o.idle_ttl, o.pending_2fa_ttl);
  const auto life =
      in.two_factor_verified ? o.max_lifetime : std::min(o.max_lifetime, o.pending_2fa_ttl);
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto tok = generate_token(bucket);
    auto id = generate_id();
    std::vector<std::string> keys = {base + tok.ref.digest_hex, index};
    std::vector<std::string> args = {base,
                                     id,
                                     tok.ref.digest_hex,
                                     ms(idle),
                                     ms(life),
                                     std::to_string(o.max_per_user),
                                     in.tenant_id.str(),
                                     in.user_id.str(),
                                     in.email,
                                     in.role,
                                     in.device.user_agent,
                                     in.device.ip,
                                     in.device.device_id,
                                     in.two_factor_verified ? "1" : "0"};
    auto r = co_await client_.eval(script_create(), std::move(keys), std::move(args));
    if (!r) {
      stats_->add_error();
      co_return r.error();
    }
    if (r->is_error()) {
      stats_->add_error();
      co_return from_error_reply(*r, "create");
    }
    if (is_tagged(*r, "dup")) continue;  // 2^-246: practically never
    auto now = int_at(*r, 0), exp = int_at(*r, 1), reset = int_at(*r, 4);
    if (!now || !exp || !reset) {
      stats_->add_error();
      co_return unexpected(*r, "create");
    }
    auto expired = strings_of(r->elements[2]);
    auto evicted = strings_of(r->elements[3]);
    if (*reset)
      jeweler::logger().warn(
          "session: index of user {} in tenant {} was unreadable and was replaced",
          in.user_id.str(), in.tenant_id.str());
    stats_->add_created();
    stats_->add_expired(expired.size());
    stats_->add_evicted(evicted.size());

    const std::string tkey = keys_.tenant_stats(in.tenant_id);
    const std::string lkey = keys_.live();
    redis::Pipeline p;
    p.add(redis::Command::make("ZADD", tkey, *exp, tenant_member(in.user_id, id)));
    p.add(redis::Command::make("ZADD", lkey, *exp, live_member(in.tenant_id, in.user_id, id)));
    for (const auto* list : {&expired, &evicted}) {
      for (const auto& gone : *list) {
        p.add(redis::Command::make("ZREM", tkey, tenant_member(in.user_id, gone)));
        p.add(redis::Command::make("ZREM", lkey, live_member(in.tenant_id, in.user_id, gone)));
      }
    }
    // Keep the statistics keys bounded: drop members whose expected expiry
    // passed; a key nobody writes to disappears after the max lifetime.
    p.add(redis::Command::make("ZREMRANGEBYSCORE", tkey, "-inf", *now));
    p.add(redis::Command::make("ZREMRANGEBYSCORE", lkey, "-inf", *now));
    p.add(redis::Command::make("PEXPIRE", tkey, o.max_lifetime.count()));
    p.add(redis::Command::make("PEXPIRE", lkey, o.max_lifetime.count()));
    co_await update_index_stats(std::move(p));

    Session s{.id = std::move(id),
              .tenant_id = in.tenant_id,
              .user_id = in.user_id,
              .email = std::move(in.email),
              .role = std::move(in.role),
              .device = std::move(in.device),
              .login_time = *now,
              .last_activity = *now,
              .expires_at = *exp,
              .absolute_expiry = *now + life.count(),
              .two_factor_verified = in.two_factor_verified,
              .ip_changes = 0};
    co_return IssuedSession{std::move(tok.token), std::move(s), std::move(evicted)};
  }
  jeweler::logger().error("session: create: token collisions on every attempt");
  stats_->add_error();
  co_return err(errc::internal);
}

asio::awaitable<Result<std::optional<Lookup>>> SessionService::get(std::string token,
                                                                   std::optional<DeviceSeen> seen) {
  co_return co_await lookup(std::move(token), std::move(seen), false);
}

asio::awaitable<Result<std::optional<Session>>> SessionService::extend(std::string token) {
  std::optional<DeviceSeen> none;  // a local: g++ 12 double-destroys temporaries in co_await
  auto r = co_await lookup(std::move(token), std::move(none), true);
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<Session>{};
  co_return std::optional<Session>(std::move((*r)->session));
}

asio::awaitable<Result<std::optional<Lookup>>> SessionService::lookup(
    std::string token, std::optional<DeviceSeen> seen, bool extend) {
  using Out = std::optional<Lookup>;
  const std::string_view op = extend ? "extend" : "get";
  if (seen) {
    if (auto ec = normalize(*seen)) co_return ec;
  }
  auto ref = parse_token(token);
  if (!ref) {
    stats_->add_miss();
    co_return Out{};
  }
  if (!extend) {
    auto quick = co_await quick_get(*ref, seen);
    if (quick) co_return std::move(*quick);
  }
  const auto& o = *options_;
  std::vector<std::string> keys = {keys_.session(*ref)};
  std::vector<std::string> args = {ms(o.idle_ttl), extend ? "0" : ms(o.activity_interval),
                                   seen ? "1" : "0", seen ? seen->user_agent : std::string(),
                                   seen ? seen->ip : std::string()};
  auto r = co_await client_.eval(script_get(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = !seen});
  if (!r) {
    stats_->add_error();
    co_return r.error();
  }
  if (r->is_error()) {
    stats_->add_error();
    co_return from_error_reply(*r, op);
  }
  if (r->is_integer() && r->integer == 0) {
    stats_->add_miss();
    co_return Out{};
  }
  if (is_tagged(*r, "corrupt")) {
    jeweler::logger().warn(
        "session: {}: unreadable session data ({}), key {}…; treated as no session", op,
        r->elements.size() > 1 ? r->elements[1].str : "", key_hint(*ref));
    stats_->add_corrupt();
    stats_->add_miss();
    co_return Out{};
  }
  auto exp = int_at(*r, 1), touched = int_at(*r, 2), flags = int_at(*r, 3);
  if (!r->is_array() || r->elements.size() != 6 || !exp || !touched || !flags ||
      !r->elements[4].is_string()) {
    stats_->add_error();
    co_return unexpected(*r, op);
  }
  auto fields = fields_of(r->elements[5]);
  std::string why;
  std::optional<Session> s = fields ? codec::decode(*fields, *exp, &why) : std::nullopt;
  if (!s) {
    jeweler::logger().warn(
        "session: {}: unreadable session data ({}), key {}…; treated as no session", op,
        fields ? why : "not a field list", key_hint(*ref));
    stats_->add_corrupt();
    stats_->add_miss();
    co_return Out{};
  }
  stats_->add_hit();
  std::string ver = "0";
  for (const auto& [k, v] : *fields)
    if (k == codec::field::change_count) ver = v;
  remember(*ref, *s, std::move(ver));
  if (*touched) {
    // Once per activity interval: move the session's expected expiry in the
    // statistics sets (XX: never re-add one that was destroyed meanwhile).
    redis::Pipeline p;
    p.add(redis::Command::make("ZADD", keys_.tenant_stats(s->tenant_id), "XX", *exp,
                               tenant_member(s->user_id, s->id)));
    p.add(redis::Command::make("ZADD", keys_.live(), "XX", *exp,
                               live_member(s->tenant_id, s->user_id, s->id)));
    co_await update_index_stats(std::move(p));
  }
  Lookup l{.session = std::move(*s),
           .user_agent_changed = (*flags & 1) != 0,
           .ip_changed = (*flags & 2) != 0,
           .previous_ip = r->elements[4].str};
  co_return Out(std::move(l));
}

void SessionService::remember(const TokenRef& ref, const Session& s, std::string ver) {
  if (validated_.size() >= kValidatedMax && !validated_.count(ref.digest_hex))
    validated_.clear();  // bounded; entries are cheap to rebuild
  validated_.insert_or_assign(ref.digest_hex, Validated{s, std::move(ver)});
}

std::optional<SessionService::PendingGet> SessionService::prepare_quick(
    const TokenRef& ref, const std::optional<DeviceSeen>& seen, redis::Pipeline& p) {
  auto it = validated_.find(ref.digest_hex);
  if (it == validated_.end()) return std::nullopt;
  const auto& o = *options_;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  // The script decides whatever the cached copy cannot: a lastActivity to
  // write, a device change to report, the absolute deadline.
  const Session& s = it->second.session;
  if (now < s.last_activity || now - s.last_activity >= o.activity_interval.count() ||
      now >= s.absolute_expiry ||
      (seen && (seen->user_agent != s.device.user_agent || seen->ip != s.device.ip))) {
    validated_.erase(it);
    return std::nullopt;
  }
  PendingGet g{.session = s,
               .digest = ref.digest_hex,
               .ver = it->second.ver,
               .now = now,
               .ttl = std::min<std::int64_t>(o.idle_ttl.count(), s.absolute_expiry - now),
               .first = p.size()};
  const std::string key = keys_.session(ref);
  p.add(redis::Command::make("PEXPIRE", key, g.ttl));
  p.add(redis::Command::make("HGET", key, codec::field::change_count));
  return g;
}

std::optional<Result<std::optional<Lookup>>> SessionService::end_get(
    PendingGet& g, const Result<std::vector<redis::Reply>>& replies) {
  using Out = std::optional<Lookup>;
  if (!replies || replies->size() < g.first + 2) return std::nullopt;  // the caller asks again
  const auto& a = (*replies)[g.first];
  const auto& b = (*replies)[g.first + 1];
  const bool gone = a.is_integer() && a.integer == 0;
  const bool same = a.is_integer() && a.integer == 1 &&
                    (b.is_nil() ? g.ver == "0" : (b.is_string() && b.str == g.ver));
  if (!same) {
    validated_.erase(g.digest);
    if (!gone) return std::nullopt;  // changed meanwhile: the script reads it again
    stats_->add_miss();
    return Result<Out>(Out{});
  }
  stats_->add_hit();
  g.session.expires_at = g.now + g.ttl;
  return Result<Out>(Out(Lookup{.session = std::move(g.session)}));
}

std::optional<SessionService::PendingGet> SessionService::begin_get(std::string_view token,
                                                                    DeviceSeen seen,
                                                                    redis::Pipeline& p) {
  if (normalize(seen)) return std::nullopt;  // get() reports the error
  auto ref = parse_token(token);
  if (!ref) return std::nullopt;
  std::optional<DeviceSeen> s(std::move(seen));
  return prepare_quick(*ref, s, p);
}

asio::awaitable<std::optional<Result<std::optional<Lookup>>>> SessionService::quick_get(
    const TokenRef& ref, const std::optional<DeviceSeen>& seen) {
  using Quick = std::optional<Result<std::optional<Lookup>>>;
  redis::Pipeline p;
  auto g = prepare_quick(ref, seen, p);
  if (!g) co_return Quick{};
  // Refreshing a TTL to a given deadline is idempotent: safe to resend.
  auto r = co_await client_.exec(std::move(p), redis::ExecOptions{.idempotent = true});
  if (!r) {
    stats_->add_error();
    co_return Quick(r.error());
  }
  co_return end_get(*g, r);
}

asio::awaitable<Result<std::optional<Session>>> SessionService::update(std::string token,
                                                                       SessionPatch patch) {
  using Out = std::optional<Session>;
  if (auto ec = normalize(patch)) co_return ec;
  auto ref = parse_token(token);
  if (!ref) co_return Out{};
  std::vector<std::string> keys = {keys_.session(*ref)};
  auto args = codec::encode_patch(patch);
  // Setting fields to given values is idempotent: safe to resend.
  auto r = co_await client_.eval(script_update(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = true});
  if (!r) {
    stats_->add_error();
    co_return r.error();
  }
  if (r->is_error()) {
    stats_->add_error();
    co_return from_error_reply(*r, "update");
  }
  if (r->is_integer() && r->integer == 0) co_return Out{};
  if (is_tagged(*r, "corrupt")) {
    jeweler::logger().warn(
        "session: update: unreadable session data, key {}…; treated as no session", key_hint(*ref));
    stats_->add_corrupt();
    co_return Out{};
  }
  auto exp = int_at(*r, 1);
  if (!r->is_array() || r->elements.size() != 3 || !exp) {
    stats_->add_error();
    co_return unexpected(*r, "update");
  }
  auto fields = fields_of(r->elements[2]);
  std::string why;
  auto s = fields ? codec::decode(*fields, *exp, &why) : std::nullopt;
  if (!s) {
    jeweler::logger().warn("session: update: unreadable session data ({}), key {}…", why,
                           key_hint(*ref));
    stats_->add_corrupt();
    co_return Out{};
  }
  co_return s;
}

asio::awaitable<Result<std::optional<IssuedSession>>> SessionService::rotate(std::string token,
                                                                             SessionPatch patch) {
  using Out = std::optional<IssuedSession>;
  if (auto ec = normalize(patch)) co_return ec;
  auto ref = parse_token(token);
  if (!ref) co_return Out{};
  const std::string base = keys_.base(ref->bucket);
  const auto& o = *options_;
  const bool promote = patch.two_factor_verified.value_or(false);
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto tok = generate_token(ref->bucket);
    std::vector<std::string> keys = {keys_.session(*ref), keys_.session(tok.ref)};
    std::vector<std::string> args = {
        base,           tok.ref.digest_hex, promote ? "1" : "0",
        ms(o.idle_ttl), ms(o.max_lifetime), std::to_string(o.max_per_user)};
    for (auto& a : codec::encode_patch(patch)) args.push_back(std::move(a));
    auto r = co_await client_.eval(script_rotate(), std::move(keys), std::move(args));
    if (!r) {
      stats_->add_error();
      co_return r.error();
    }
    if (r->is_error()) {
      stats_->add_error();
      co_return from_error_reply(*r, "rotate");
    }
    if (r->is_integer() && r->integer == 0) co_return Out{};
    if (is_tagged(*r, "dup")) continue;
    if (is_tagged(*r, "corrupt")) {
      jeweler::logger().warn(
          "session: rotate: unreadable session data, key {}…; treated as no session",
          key_hint(*ref));
      stats_->add_corrupt();
      co_return Out{};
    }
    auto exp = int_at(*r, 1);
    if (!r->is_array() || r->elements.size() != 4 || !exp) {
      stats_->add_error();
      co_return unexpected(*r, "rotate");
    }
    auto evicted = strings_of(r->elements[3]);
    auto fields = fields_of(r->elements[2]);
    std::string why;
    auto s = fields ? codec::decode(*fields, *exp, &why) : std::nullopt;
    if (!s) {
      // The old token is already dead; the new one leads to unreadable data.
      jeweler::logger().warn("session: rotate: unreadable session data ({}), key {}…", why,
                             key_hint(tok.ref));
      stats_->add_corrupt();
      co_return Out{};
    }
    stats_->add_rotated();
    stats_->add_evicted(evicted.size());
    {
      // The statistics sets follow: the promoted session's new expected
      // expiry (XX: only if still listed), the evicted ones leave.
      redis::Pipeline p;
      const std::string tkey = keys_.tenant_stats(s->tenant_id);
      const std::string lkey = keys_.live();
      p.add(redis::Command::make("ZADD", tkey, "XX", *exp, tenant_member(s->user_id, s->id)));
      p.add(redis::Command::make("ZADD", lkey, "XX", *exp,
                                 live_member(s->tenant_id, s->user_id, s->id)));
      for (const auto& gone : evicted) {
        p.add(redis::Command::make("ZREM", tkey, tenant_member(s->user_id, gone)));
        p.add(redis::Command::make("ZREM", lkey, live_member(s->tenant_id, s->user_id, gone)));
      }
      co_await update_index_stats(std::move(p));
    }
    co_return Out(IssuedSession{std::move(tok.token), std::move(*s), std::move(evicted)});
  }
  jeweler::logger().error("session: rotate: token collisions on every attempt");
  stats_->add_error();
  co_return err(errc::internal);
}

asio::awaitable<Result<bool>> SessionService::claim_totp_step(TenantId tenant, UserId user,
                                                              std::int64_t step,
                                                              std::chrono::milliseconds ttl) {
  if (ttl <= std::chrono::milliseconds(0)) co_return bool_error(err(errc::invalid_argument));
  // SET NX PX: the check and the marker are one atomic step (two requests
  // with the same code: exactly one sees OK). Not resent after a lost
  // reply: a resend would find the marker and refuse (fail closed).
  auto cmd = redis::Command::make("SET", keys_.totp_used(tenant, user, step), "1", "NX", "PX",
                                  ttl.count());
  auto r = co_await client_.exec(std::move(cmd));
  if (!r) {
    stats_->add_error();
    co_return bool_error(r.error());
  }
  // An error reply (OOM under noeviction, READONLY, ...): no marker was
  // stored, so the code must not be accepted -> unavailable (503).
  if (r->is_error()) {
    stats_->add_error();
    co_return bool_error(from_error_reply(*r, "claim_totp_step"));
  }
  if (r->is_nil()) co_return false;  // used before
  if (r->is_string() && r->str == "OK") co_return true;
  stats_->add_error();
  co_return bool_error(unexpected(*r, "claim_totp_step"));
}

asio::awaitable<Result<bool>> SessionService::destroy(std::string token) {
  auto ref = parse_token(token);
  if (!ref) co_return false;
  validated_.erase(ref->digest_hex);
  std::vector<std::string> keys = {keys_.session(*ref)};
  std::vector<std::string> args = {keys_.base(ref->bucket)};
  auto r = co_await client_.eval(script_destroy(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = true});
  if (!r) {
    stats_->add_error();
    co_return bool_error(r.error());
  }
  if (r->is_error()) {
    stats_->add_error();
    co_return bool_error(from_error_reply(*r, "destroy"));
  }
  if (r->is_integer() && r->integer == 0) co_return false;
  auto v = strings_of(*r);
  if (v.size() != 3) {
    stats_->add_error();
    co_return bool_error(unexpected(*r, "destroy"));
  }
  stats_->add_destroyed();
  auto t = TenantId::parse(v[1]);
  auto u = UserId::parse(v[2]);
  if (t && u && !v[0].empty()) {
    redis::Pipeline p;
    p.add(redis::Command::make("ZREM", keys_.tenant_stats(*t), tenant_member(*u, v[0])));
    p.add(redis::Command::make("ZREM", keys_.live(), live_member(*t, *u, v[0])));
    co_await update_index_stats(std::move(p));
  }
  co_return true;
}

asio::awaitable<Result<bool>> SessionService::destroy_by_id(TenantId tenant, UserId user,
                                                            std::string id) {
  if (!valid_id(id)) co_return false;
  std::vector<std::string> keys = {keys_.index(tenant, user)};
  std::vector<std::string> args = {keys_.base(user_bucket(tenant, user)), id};
  auto r = co_await client_.eval(script_destroy_by_id(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = true});
  if (!r) {
    stats_->add_error();
    co_return bool_error(r.error());
  }
  if (r->is_error()) {
    stats_->add_error();
    co_return bool_error(from_error_reply(*r, "destroy_by_id"));
  }
  if (!r->is_integer()) {
    stats_->add_error();
    co_return bool_error(unexpected(*r, "destroy_by_id"));
  }
  redis::Pipeline p;
  p.add(redis::Command::make("ZREM", keys_.tenant_stats(tenant), tenant_member(user, id)));
  p.add(redis::Command::make("ZREM", keys_.live(), live_member(tenant, user, id)));
  co_await update_index_stats(std::move(p));
  if (r->integer == 1) stats_->add_destroyed();
  co_return r->integer == 1;
}

asio::awaitable<Result<std::size_t>> SessionService::destroy_all(
    TenantId tenant, UserId user, std::optional<std::string> keep_id) {
  std::vector<std::string> keys = {keys_.index(tenant, user)};
  std::vector<std::string> args = {keys_.base(user_bucket(tenant, user)),
                                   keep_id ? *keep_id : std::string()};
  auto r = co_await client_.eval(script_destroy_all(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = true});
  if (!r) {
    stats_->add_error();
    co_return r.error();
  }
  if (r->is_error()) {
    stats_->add_error();
    co_return from_error_reply(*r, "destroy_all");
  }
  if (!r->is_array() || r->elements.size() != 2) {
    stats_->add_error();
    co_return unexpected(*r, "destroy_all");
  }
  auto destroyed = strings_of(r->elements[0]);
  auto expired = strings_of(r->elements[1]);
  stats_->add_destroyed(destroyed.size());
  stats_->add_expired(expired.size());
  redis::Pipeline p;
  const auto tkey = keys_.tenant_stats(tenant);
  for (const auto* list : {&destroyed, &expired}) {
    for (const auto& id : *list) {
      p.add(redis::Command::make("ZREM", tkey, tenant_member(user, id)));
      p.add(redis::Command::make("ZREM", keys_.live(), live_member(tenant, user, id)));
    }
  }
  co_await update_index_stats(std::move(p));
  co_return destroyed.size();
}

asio::awaitable<Result<std::vector<Session>>> SessionService::list(TenantId tenant, UserId user) {
  std::vector<std::string> keys = {keys_.index(tenant, user)};
  std::vector<std::string> args = {keys_.base(user_bucket(tenant, user))};
  auto r = co_await client_.eval(script_list(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = true});
  if (!r) {
    stats_->add_error();
    co_return r.error();
  }
  if (r->is_error()) {
    stats_->add_error();
    co_return from_error_reply(*r, "list");
  }
  auto now = int_at(*r, 0);
  if (!r->is_array() || r->elements.size() != 3 || !now || !r->elements[2].is_array() ||
      r->elements[2].elements.size() % 2 != 0) {
    stats_->add_error();
    co_return unexpected(*r, "list");
  }
  auto expired = strings_of(r->elements[1]);
  std::vector<Session> out;
  const auto& entries = r->elements[2].elements;
  for (std::size_t i = 0; i < entries.size(); i += 2) {
    auto pttl = entries[i + 1].to_integer();
    auto fields = fields_of(entries[i]);
    std::string why = "not a field list";
    std::optional<Session> s;
    if (fields && pttl) s = codec::decode(*fields, *now + std::max<std::int64_t>(*pttl, 0), &why);
    // A session listed under another user's index is never shown.
    if (s && (s->tenant_id != tenant || s->user_id != user)) {
      why = "listed under another user";
      s.reset();
    }
    if (!s) {
      jeweler::logger().warn(
          "session: list: unreadable session of user {} in tenant {} skipped ({})", user.str(),
          tenant.str(), why);
      stats_->add_corrupt();
      continue;
    }
    out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](const Session& a, const Session& b) {
    if (a.login_time != b.login_time) return a.login_time > b.login_time;
    return a.id > b.id;
  });
  if (!expired.empty()) {
    stats_->add_expired(expired.size());
    redis::Pipeline p;
    for (const auto& id : expired) {
      p.add(redis::Command::make("ZREM", keys_.tenant_stats(tenant), tenant_member(user, id)));
      p.add(redis::Command::make("ZREM", keys_.live(), live_member(tenant, user, id)));
    }
    co_await update_index_stats(std::move(p));
  }
  co_return out;
}

asio::awaitable<Result<TenantStats>> SessionService::tenant_stats(TenantId tenant) {
  std::vector<std::string> keys = {keys_.tenant_stats(tenant)};
  std::vector<std::string> args;
  auto r = co_await client_.eval(script_tenant_stats(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = true});
  if (!r) co_return r.error();
  if (r->is_error()) co_return from_error_reply(*r, "tenant_stats");
  if (!r->is_array()) co_return unexpected(*r, "tenant_stats");
  TenantStats st;
  std::set<std::string_view> users;
  for (const auto& m : r->elements) {
    if (!m.is_string()) continue;
    auto colon = m.str.rfind(':');
    if (colon == std::string::npos) continue;
    ++st.live_sessions;
    users.insert(std::string_view(m.str).substr(0, colon));
  }
  st.users_with_sessions = users.size();
  co_return st;
}

asio::awaitable<Result<std::uint64_t>> SessionService::active_sessions() {
  std::vector<std::string> keys = {keys_.live()};
  std::vector<std::string> args;
  auto r = co_await client_.eval(script_live(), std::move(keys), std::move(args),
                                 redis::ExecOptions{.idempotent = true});
  if (!r) co_return r.error();
  if (r->is_error()) co_return from_error_reply(*r, "active_sessions");
  auto n = r->to_integer();
  if (!n || *n < 0) co_return unexpected(*r, "active_sessions");
  stats_->set_last_active(*n);
  co_return static_cast<std::uint64_t>(*n);
}

}  // namespace jeweler::session
