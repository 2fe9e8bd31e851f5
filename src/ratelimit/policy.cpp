#include <jeweler/ratelimit/policy.hpp>
#include <jeweler/redis/config.hpp>
#include <jeweler/redis/error.hpp>

#include <stdexcept>

namespace jeweler::ratelimit {

using namespace std::chrono_literals;

std::string_view to_string(Algorithm a) noexcept {
  switch (a) {
    case Algorithm::sliding_log:
      return "sliding_log";
    case Algorithm::sliding_counter:
      return "sliding_counter";
    case Algorithm::gcra:
      return "gcra";
  }
  return "unknown";
}

std::string_view shape_tag(Algorithm a) noexcept {
  switch (a) {
    case Algorithm::sliding_log:
      return "l";
    case Algorithm::sliding_counter:
      return "c";
    case Algorithm::gcra:
      return "g";
  }
  return "x";
}

std::optional<Algorithm> parse_algorithm(std::string_view s) noexcept {
  if (s == "log" || s == "sliding_log" || s == "sliding-log") return Algorithm::sliding_log;
  if (s == "counter" || s == "sliding_counter" || s == "sliding-counter")
    return Algorithm::sliding_counter;
  if (s == "gcra" || s == "token_bucket" || s == "token-bucket") return Algorithm::gcra;
  return std::nullopt;
}

bool valid_policy_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  return true;
}

void Policy::validate() const {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("rate-limit policy '" + name + "': " + what);
  };
  if (!valid_policy_name(name)) fail("name must be 1..32 of [a-z0-9_-]");
  if (limit < 1 || limit > kMaxLimit) fail("limit out of range [1, 1e15]");
  if (window < 1ms || window > std::chrono::milliseconds(30LL * 24 * 3600 * 1000))
    fail("window out of range [1 ms, 30 days]");
  if (burst < 0 || burst > kMaxLimit) fail("burst out of range [0, 1e15]");
  if (algorithm == Algorithm::sliding_log && limit > kMaxSlidingLog)
    fail("sliding_log keeps one entry per request: limit must be <= 1000000 (use counter)");
  if (lease < 0 || lease > kMaxLease) fail("lease out of range [0, 1024]");
  if (lease > 0 && (algorithm != Algorithm::sliding_counter || window < kMinLeaseWindow))
    fail("a lease needs the sliding counter and a window of at least 1 s");
}

namespace {

Policy make(std::string name, std::int64_t limit, std::chrono::milliseconds window, bool fail_open,
            Consume consume, std::string message) {
  Policy p;
  p.name = std::move(name);
  p.limit = limit;
  p.window = window;
  p.fail_open = fail_open;
  p.consume = consume;
  p.message = std::move(message);
  return p;
}

struct Reader {
  const PolicySet::Lookup& lookup;
  std::optional<std::string> get(const std::string& var) const {
    auto v = lookup ? lookup(var) : redis::getenv_lookup(var);
    if (v && v->empty()) return std::nullopt;  // set but empty = unset
    return v;
  }
  void max(const std::string& var, std::int64_t& out) const {
    if (auto v = get(var)) out = redis::parse_int(*v, var, 1, kMaxLimit);
  }
  void window(const std::string& var, std::chrono::milliseconds& out) const {
    if (auto v = get(var))
      out = std::chrono::milliseconds(redis::parse_int(*v, var, 1, 30LL * 24 * 3600 * 1000));
  }
  void fail_open(const std::string& var, bool& out) const {
    if (auto v = get(var)) out = redis::parse_bool(*v, var);
  }
  // Reads the algorithm of a policy whose limit is already read. Unless set
  // explicitly, a limit above what a sliding log may hold (one entry per
  // request) selects the O(1) sliding counter: raising a limit for a load
  // test (RATE_LIMIT_MAX_REQUESTS=1000000000) must not stop the server.
  void algorithm(const std::string& var, Algorithm& out, std::int64_t limit) const {
    if (auto v = get(var)) {
      auto a = parse_algorithm(*v);
      if (!a)
        throw redis::ConfigError(var + ": '" + *v + "' is not an algorithm (log, counter, gcra)");
      out = *a;
    } else if (out == Algorithm::sliding_log && limit > kMaxSlidingLog) {
      out = Algorithm::sliding_counter;
    }
  }
  // The pair of policies of one limiter share limit, window, mode and algorithm.
  void pair(const std::string& base, Policy& a, Policy& b) const {
    max(base + "_MAX", a.limit);
    window(base + "_WINDOW_MS", a.window);
    fail_open(base + "_FAIL_OPEN", a.fail_open);
    algorithm(base + "_ALGORITHM", a.algorithm, a.limit);
    b.limit = a.limit;
    b.window = a.window;
    b.fail_open = a.fail_open;
    b.algorithm = a.algorithm;
  }
  void check(const std::string& var, const Policy& p) const {
    try {
      p.validate();
    } catch (const std::invalid_argument& e) {
      throw redis::ConfigError(var + ": " + e.what());
    }
  }
};

}  // namespace

PolicySet PolicySet::defaults() {
  PolicySet s;
  const auto always = Consume::always;
  s.api = make("api", 100, 15min, true, always, "Too many requests");
  s.api_tenant = make("api-tenant", 1000, 15min, true, always, "Too many requests for this tenant");
  s.auth_ip =
      make("auth-ip", 5, 15min, false, Consume::on_failure, "Too many failed login attempts");
  s.auth_account =
      make("auth-account", 5, 15min, false, Consume::on_failure, "Too many failed login attempts");
  s.reset_ip = make("password-reset-ip", 3, 1h, false, always, "Too many password reset requests");
  s.reset_email =
      make("password-reset-email", 3, 1h, false, always, "Too many password reset requests");
  s.invoice = make("invoice", 10, 1min, true, always, "Too many invoices created");
  s.upload = make("upload", 20, 1min, true, always, "Too many uploads");
  return s;
}

PolicySet PolicySet::from_env(const Lookup& lookup) {
  PolicySet s = defaults();
  Reader r{lookup};
  r.max("RATE_LIMIT_MAX_REQUESTS", s.api.limit);
  r.window("RATE_LIMIT_WINDOW_MS", s.api.window);
  r.fail_open("RATE_LIMIT_API_FAIL_OPEN", s.api.fail_open);
  // The tenant budget follows the user limit unless set on its own.
  s.api_tenant.limit = s.api.limit > kMaxLimit / 10 ? kMaxLimit : 10 * s.api.limit;
  r.max("RATE_LIMIT_TENANT_MAX", s.api_tenant.limit);
  s.api_tenant.window = s.api.window;
  s.api_tenant.fail_open = s.api.fail_open;
  r.algorithm("RATE_LIMIT_API_ALGORITHM", s.api.algorithm, s.api.limit);
  s.api_tenant.algorithm = s.api.algorithm;
  // A large tenant budget is cheaper with the O(1) counter than with a log.
  if (s.api_tenant.algorithm == Algorithm::sliding_log && s.api_tenant.limit > kMaxSlidingLog)
    s.api_tenant.algorithm = Algorithm::sliding_counter;
  r.pair("RATE_LIMIT_AUTH", s.auth_ip, s.auth_account);
  r.pair("RATE_LIMIT_PASSWORD_RESET", s.reset_ip, s.reset_email);
  Policy unused;
  r.pair("RATE_LIMIT_INVOICE", s.invoice, unused);
  r.pair("RATE_LIMIT_UPLOAD", s.upload, unused);

  // Budgets this large are load-test or "unlimited" values: reserving a few
  // units per thread changes nothing a client can see and saves the script
  // run on most requests.
  for (Policy* p : {&s.api, &s.api_tenant, &s.auth_ip, &s.auth_account, &s.reset_ip, &s.reset_email,
                    &s.invoice, &s.upload})
    if (p->algorithm == Algorithm::sliding_counter && p->limit >= kMinLeaseLimit &&
        p->window >= kMinLeaseWindow && p->consume == Consume::always)
      p->lease = kDefaultLease;

  r.check("RATE_LIMIT_MAX_REQUESTS", s.api);
  r.check("RATE_LIMIT_TENANT_MAX", s.api_tenant);
  r.check("RATE_LIMIT_AUTH_MAX", s.auth_ip);
  r.check("RATE_LIMIT_PASSWORD_RESET_MAX", s.reset_ip);
  r.check("RATE_LIMIT_INVOICE_MAX", s.invoice);
  r.check("RATE_LIMIT_UPLOAD_MAX", s.upload);
  return s;
}

std::vector<const Policy*> PolicySet::all() const {
  return {&api, &api_tenant, &auth_ip, &auth_account, &reset_ip, &reset_email, &invoice, &upload};
}

}  // namespace jeweler::ratelimit
