#include <jeweler/ratelimit/middleware.hpp>
#include <jeweler/redis/error.hpp>
#include <jeweler/redis/log.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace jeweler::ratelimit {

KeyGenerator key_by_ip(int ipv6_prefix) {
  return [ipv6_prefix](const RequestFacts&, std::string_view ip) -> std::optional<Key> {
    if (auto k = Key::ip(ip, ipv6_prefix)) return k;
    return Key::custom("peer", ip);  // not an address (unix socket): hashed if needed
  };
}

KeyGenerator key_by_user_or_ip(int ipv6_prefix) {
  auto by_ip = key_by_ip(ipv6_prefix);
  return [by_ip](const RequestFacts& f, std::string_view ip) -> std::optional<Key> {
    if (f.user) return f.tenant ? Key::user(*f.tenant, *f.user) : Key::user(*f.user);
    return by_ip(f, ip);
  };
}

KeyGenerator key_by_user() {
  return [](const RequestFacts& f, std::string_view) -> std::optional<Key> {
    if (!f.user) return std::nullopt;
    return f.tenant ? Key::user(*f.tenant, *f.user) : Key::user(*f.user);
  };
}

KeyGenerator key_by_tenant() {
  return [](const RequestFacts& f, std::string_view) -> std::optional<Key> {
    if (!f.tenant) return std::nullopt;
    return Key::tenant(*f.tenant);
  };
}

KeyGenerator key_by_account() {
  return [](const RequestFacts& f, std::string_view) -> std::optional<Key> {
    if (f.account.find_first_not_of(" \t") == std::string_view::npos) return std::nullopt;
    return Key::email(f.account);
  };
}

LimiterSpec create_rate_limiter(std::string name, std::chrono::milliseconds window,
                                std::int64_t max_requests, KeyGenerator key, std::string message) {
  Policy p;
  p.name = name;
  p.window = window;
  p.limit = max_requests;
  p.message = std::move(message);
  p.validate();
  LimiterSpec s;
  s.name = std::move(name);
  s.rules.push_back({std::move(p), std::move(key)});
  return s;
}

MiddlewareConfig MiddlewareConfig::standard(const PolicySet& ps, TrustedProxies trust) {
  MiddlewareConfig c;
  c.trust_proxy = std::move(trust);
  const int v6 = c.ipv6_prefix;
  c.add({"api", {{ps.api, key_by_user_or_ip(v6)}, {ps.api_tenant, key_by_tenant()}}});
  c.add({"auth", {{ps.auth_ip, key_by_ip(v6)}, {ps.auth_account, key_by_account()}}});
  c.add({"passwordReset", {{ps.reset_ip, key_by_ip(v6)}, {ps.reset_email, key_by_account()}}});
  c.add({"invoice", {{ps.invoice, key_by_user()}}});
  c.add({"upload", {{ps.upload, key_by_user()}}});
  return c;
}

MiddlewareConfig MiddlewareConfig::from_env(const PolicySet::Lookup& lookup) {
  return standard(PolicySet::from_env(lookup), TrustedProxies::from_env(lookup));
}

void MiddlewareConfig::add(LimiterSpec spec) {
  for (const auto& r : spec.rules) r.policy.validate();
  auto name = spec.name;
  limiters.insert_or_assign(std::move(name), std::move(spec));
}

boost::json::object Outcome::error_body(std::string_view request_id) const {
  boost::json::object o;
  if (verdict == Verdict::reject) {
    o["error"] = "rate_limited";
    o["message"] = message;
    o["policy"] = policy;
    o["retryAfter"] = retry_after;
  } else {
    o["error"] = "service_unavailable";
    o["message"] = message;
  }
  o["requestId"] = request_id;
  return o;
}

Middleware::Middleware(Limiter& limiter, std::shared_ptr<const MiddlewareConfig> config)
    : limiter_(limiter), config_(std::move(config)) {}

std::string Middleware::client_ip(const RequestFacts& f) const {
  return config_->trust_proxy.client_ip(f.peer, f.x_forwarded_for);
}

asio::awaitable<Outcome> Middleware::apply(const RequestFacts& f,
                                           std::vector<std::string> limiters) {
  co_return co_await run(f, limiters);
}

asio::awaitable<void> Middleware::release(Outcome& o) {
  if (o.decision.reserved.empty()) co_return;
  auto reserved = std::move(o.decision.reserved);
  o.decision.reserved.clear();
  for (auto& r : o.decision.results) {
    const bool held = std::any_of(reserved.begin(), reserved.end(),
                                  [&](const Reservation& v) { return v.policy == r.policy; });
    if (!held || !r.consumed) continue;
    r.consumed = false;
    r.remaining = std::min(r.remaining + 1, r.limit);
    if (r.remaining >= r.limit) r.reset_after = std::chrono::milliseconds(0);
  }
  if (o.allowed() && !o.decision.results.empty()) o.headers = rate_limit_headers(o.decision);
  co_await limiter_.release(std::move(reserved));
}

std::vector<Check> Middleware::checks_for(const RequestFacts& f,
                                          const std::vector<std::string>& names) const {
  const std::string ip = client_ip(f);
  std::vector<Check> checks;
  for (const auto& n : names) {
    auto it = config_->limiters.find(n);
    if (it == config_->limiters.end()) {
      static std::atomic<bool> logged{false};
      if (!logged.exchange(true))
        jeweler::logger().error("ratelimit: unknown limiter '{}' ignored", n);
      continue;
    }
    for (const auto& rule : it->second.rules) {
      auto key = rule.key(f, ip);
      if (!key) continue;
      checks.push_back({&rule.policy, std::move(*key), Mode::consume});
    }
  }
  return checks;
}

Outcome Middleware::outcome(Result<Decision> d) const {
  Outcome out;
  if (!d) {
    out.verdict = Outcome::Verdict::unavailable;
    out.status = 503;
    out.retry_after = config_->unavailable_retry_after.count();
    out.message = "Rate limiting is temporarily unavailable, retry later";
    out.headers.push_back({"Retry-After", std::to_string(out.retry_after)});
    return out;
  }
  if (d->results.empty()) return out;  // no limit applied
  out.headers = rate_limit_headers(*d);
  if (!d->allowed) {
    const LimitResult* m = d->most_restrictive();
    out.verdict = Outcome::Verdict::reject;
    out.status = 429;
    out.policy = m->policy->name;
    out.retry_after = retry_after_seconds(*d);
    out.message = m->policy->message + ", retry in " + std::to_string(out.retry_after) + " s";
  }
  out.decision = std::move(*d);
  return out;
}

asio::awaitable<Outcome> Middleware::run(const RequestFacts& f,
                                         const std::vector<std::string>& names) {
  auto checks = checks_for(f, names);
  if (checks.empty()) co_return Outcome{};
  auto d = co_await limiter_.check(std::move(checks));
  co_return outcome(std::move(d));
}

Middleware::Pending Middleware::begin(const RequestFacts& f,
                                      const std::vector<std::string>& limiters,
                                      redis::Pipeline& p) {
  return limiter_.begin_check(checks_for(f, limiters), p);
}

asio::awaitable<Outcome> Middleware::end(Pending& pending,
                                         const Result<std::vector<redis::Reply>>& replies) {
  auto d = co_await limiter_.end_check(pending, replies);
  co_return outcome(std::move(d));
}

}  // namespace jeweler::ratelimit
