#include <jeweler/redis/config.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
#include <cstdlib>

namespace jeweler::redis {

namespace {

// what() is printed as a C string: a control byte that came from a config
// file or the environment (a NUL first in a key made the message empty;
// found by fuzz/config_fuzz.cpp) is shown as \xNN.
std::string printable(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

[[noreturn]] void bad(std::string_view what, std::string_view why) {
  throw ConfigError(printable(std::string(what) + ": " + std::string(why)));
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return std::string(s);
}

std::uint16_t parse_port(std::string_view text, std::string_view what) {
  return static_cast<std::uint16_t>(parse_int(text, what, 1, 65535));
}

/// A database number. Redis has 16 by default, but `databases N` in its
/// configuration allows more: the server, not this parser, says whether the
/// number exists (SELECT fails with a clear error at connect time).
int parse_db(std::string_view text, std::string_view what) {
  return static_cast<int>(parse_int(text, what, 0, 2'147'483'647));
}

}  // namespace

std::string_view to_string(Mode m) noexcept {
  switch (m) {
    case Mode::standalone:
      return "standalone";
    case Mode::cluster:
      return "cluster";
    case Mode::sentinel:
      return "sentinel";
  }
  return "unknown";
}

std::optional<std::string> getenv_lookup(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

std::int64_t parse_int(std::string_view text, std::string_view what, std::int64_t min,
                       std::int64_t max) {
  std::string t = trim(text);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size())
    bad(what, "'" + t + "' is not an integer");
  if (v < min || v > max)
    bad(what, std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                  std::to_string(max) + "]");
  return v;
}

bool parse_bool(std::string_view text, std::string_view what) {
  std::string t = trim(text);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
  if (t == "0" || t == "false" || t == "no" || t == "off") return false;
  bad(what, "'" + t + "' is not a boolean (true/false)");
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what) {
  std::string t = trim(text);
  if (t.empty()) bad(what, "empty duration");
  std::size_t i = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  if (i == 0) bad(what, "'" + t + "' is not a duration (e.g. 90s, 15m, 24h, 7d)");
  std::int64_t n = parse_int(std::string_view(t).substr(0, i), what, 0, 1'000'000'000);
  std::string unit = t.substr(i);
  std::int64_t ms;
  if (unit.empty() || unit == "s")
    ms = n * 1000;
  else if (unit == "ms")
    ms = n;
  else if (unit == "m")
    ms = n * 60'000;
  else if (unit == "h")
    ms = n * 3'600'000;
  else if (unit == "d")
    ms = n * 86'400'000;
  else
    bad(what, "unknown duration unit '" + unit + "' (use ms, s, m, h, d)");
  if (ms > 366LL * 86'400'000) bad(what, "duration longer than a year");
  return std::chrono::milliseconds(ms);
}

std::vector<Endpoint> parse_endpoints(std::string_view list, std::string_view what) {
  std::vector<Endpoint> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    std::string item =
        trim(list.substr(start, comma == std::string_view::npos ? list.npos : comma - start));
    if (!item.empty()) {
      Endpoint ep;
      std::string_view s = item;
      if (s.front() == '[') {
        auto close = s.find(']');
        if (close == s.npos || close + 1 >= s.size() || s[close + 1] != ':')
          bad(what, "'" + item + "' is not [ipv6]:port");
        ep.host = std::string(s.substr(1, close - 1));
        // "[]:7000" named no host (found by fuzz/config_fuzz.cpp).
        if (ep.host.empty()) bad(what, "'" + item + "' has no host");
        ep.port = parse_port(s.substr(close + 2), what);
      } else {
        auto colon = s.rfind(':');
        if (colon == s.npos || colon == 0) bad(what, "'" + item + "' is not host:port");
        ep.host = std::string(s.substr(0, colon));
        ep.port = parse_port(s.substr(colon + 1), what);
      }
      out.push_back(std::move(ep));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (out.empty()) bad(what, "no host:port given");
  return out;
}

Config Config::from_url(std::string_view url_in, std::string_view what) {
  Config c;
  std::string url = trim(url_in);
  // A bare socket path, as redis-cli -s and ioredis take it: "/run/redis.sock".
  if (!url.empty() && url.front() == '/') url = "unix://" + url;
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed)
    bad(what,
        "not a valid URL (expected redis://host[:port][/db], rediss://..., "
        "unix:///path.sock[?db=N], redis+unix:///path.sock[?db=N] or a socket path)");
  boost::urls::url_view u = *parsed;
  std::string scheme(u.scheme());
  for (auto& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (scheme == "unix" || scheme == "redis+unix" || scheme == "redis-socket") {
    // unix:///path, unix://[user[:pass]@]/path, or (redis-py) unix:/path.
    c.unix_path = std::string(u.path());
    if (c.unix_path.empty() || c.unix_path == "/")
      bad(what, scheme + ":// URL without a socket path");
    if (u.has_authority() && !u.host().empty())
      bad(what, "a unix socket URL has no host: write " + scheme + ":///path/to/redis.sock");
  } else if (scheme == "redis" || scheme == "rediss") {
    c.tls.enabled = scheme == "rediss";
    if (u.host().empty()) bad(what, "URL without a host");
    c.endpoint.host =
        std::string(u.host_name().empty() ? u.encoded_host().decode() : u.host_name());
    if (u.host_type() == boost::urls::host_type::ipv6)
      c.endpoint.host = u.host_ipv6_address().to_string();
    if (u.has_port() && u.port().empty())  // "host:notaport" leaves an empty port
      bad(what, "the port is not a number 1..65535");
    c.endpoint.port = u.has_port() ? parse_port(u.port(), what) : 6379;
    std::string path(u.path());
    if (!path.empty() && path != "/") c.db = parse_db(std::string_view(path).substr(1), what);
  } else {
    bad(what,
        "scheme must be redis://, rediss://, unix:// or redis+unix:// (or a bare socket path)");
  }
  if (u.has_userinfo()) {
    std::string user = u.user();
    std::string pass = u.password();
    if (u.has_password()) {
      c.username = user;
      c.password = pass;
    } else {
      c.password = user;  // redis://secret@host: a bare password, as redis-cli reads it
    }
  }
  for (auto param : u.params()) {
    if (param.key == "db")
      c.db = parse_db(param.value, what);
    else if (param.key == "password")
      c.password = std::string(param.value);
    else if (param.key == "username" || param.key == "user")
      c.username = std::string(param.value);
  }
  return c;
}

bool Config::any_configured(const Lookup& lookup_in) {
  Lookup lookup = lookup_in ? lookup_in : Lookup(getenv_lookup);
  for (const char* name :
       {"REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "REDIS_USERNAME",
        "REDIS_CLUSTER_NODES", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_TLS_CA",
        "REDIS_TLS_CERT", "REDIS_TLS_KEY"}) {
    if (auto v = lookup(name); v && !v->empty()) return true;
  }
  return false;
}

Config Config::from_env(const Lookup& lookup_in) {
  Lookup lookup = lookup_in ? lookup_in : Lookup(getenv_lookup);
  auto get = [&](const char* name) -> std::optional<std::string> {
    auto v = lookup(name);
    if (v && v->empty()) return std::nullopt;  // an empty variable counts as unset
    return v;
  };
  Config c;
  if (auto url = get("REDIS_URL")) {
    c = from_url(*url, "REDIS_URL");
  } else {
    if (auto v = get("REDIS_HOST")) c.endpoint.host = trim(*v);
    if (auto v = get("REDIS_PORT")) c.endpoint.port = parse_port(*v, "REDIS_PORT");
    if (auto v = get("REDIS_PASSWORD")) c.password = *v;
    if (auto v = get("REDIS_DB")) c.db = parse_db(*v, "REDIS_DB");
    if (auto v = get("REDIS_USERNAME")) c.username = *v;
  }
  if (c.endpoint.host.empty()) bad("REDIS_HOST", "empty host");
  if (auto v = get("REDIS_TLS_CA")) c.tls.ca_file = *v;
  if (auto v = get("REDIS_TLS_CERT")) c.tls.cert_file = *v;
  if (auto v = get("REDIS_TLS_KEY")) c.tls.key_file = *v;
  if (!c.tls.ca_file.empty() || !c.tls.cert_file.empty() || !c.tls.key_file.empty())
    c.tls.enabled = true;
  if (c.tls.cert_file.empty() != c.tls.key_file.empty())
    bad(c.tls.cert_file.empty() ? "REDIS_TLS_CERT" : "REDIS_TLS_KEY",
        "REDIS_TLS_CERT and REDIS_TLS_KEY must be set together");
  if (c.tls.enabled && !c.unix_path.empty())
    bad("REDIS_URL", "TLS over a unix socket is not supported");

  if (auto v = get("REDIS_CLUSTER_NODES")) {
    c.cluster_nodes = parse_endpoints(*v, "REDIS_CLUSTER_NODES");
    c.mode = Mode::cluster;
  }
  if (auto v = get("REDIS_SENTINELS")) {
    if (c.mode == Mode::cluster)
      bad("REDIS_SENTINELS", "cannot be combined with REDIS_CLUSTER_NODES");
    c.sentinels = parse_endpoints(*v, "REDIS_SENTINELS");
    c.mode = Mode::sentinel;
    auto m = get("REDIS_SENTINEL_MASTER");
    if (!m) bad("REDIS_SENTINEL_MASTER", "required with REDIS_SENTINELS");
    c.sentinel_master = *m;
  } else if (get("REDIS_SENTINEL_MASTER")) {
    bad("REDIS_SENTINEL_MASTER", "needs REDIS_SENTINELS");
  }

  auto ms = [&](const char* name, std::chrono::milliseconds& field, std::int64_t min,
                std::int64_t max) {
    if (auto v = get(name)) field = std::chrono::milliseconds(parse_int(*v, name, min, max));
  };
  ms("REDIS_CONNECT_TIMEOUT_MS", c.connect_timeout, 1, 600'000);
  ms("REDIS_COMMAND_TIMEOUT_MS", c.command_timeout, 1, 600'000);
  ms("REDIS_RETRY_BASE_MS", c.retry_base, 1, 600'000);
  ms("REDIS_RETRY_MAX_MS", c.retry_max, 1, 3'600'000);
  if (c.retry_max < c.retry_base) bad("REDIS_RETRY_MAX_MS", "must be at least REDIS_RETRY_BASE_MS");
  if (auto v = lookup("REDIS_KEY_PREFIX")) {
    if (v->size() > 64) bad("REDIS_KEY_PREFIX", "longer than 64 characters");
    for (char ch : *v)
      if (static_cast<unsigned char>(ch) <= ' ' || ch == '{' || ch == '}' || ch == '*' ||
          ch == '?' || ch == '[' || ch == ']' || ch == '\\')
        bad("REDIS_KEY_PREFIX", "may not contain whitespace, braces or glob characters");
    c.key_prefix = *v;
  }
  return c;
}

std::string Config::describe() const {
  switch (mode) {
    case Mode::cluster: {
      std::string s;
      for (const auto& e : cluster_nodes)
        s += (s.empty() ? "" : ",") + e.host + ":" + std::to_string(e.port);
      return s;
    }
    case Mode::sentinel: {
      std::string s = sentinel_master + "@";
      for (std::size_t i = 0; i < sentinels.size(); ++i)
        s += (i ? "," : "") + sentinels[i].host + ":" + std::to_string(sentinels[i].port);
      return s;
    }
    case Mode::standalone:
      break;
  }
  if (!unix_path.empty()) return "unix:" + unix_path + (db ? "?db=" + std::to_string(db) : "");
  std::string host =
      endpoint.host.find(':') != std::string::npos ? "[" + endpoint.host + "]" : endpoint.host;
  return std::string(tls.enabled ? "rediss://" : "redis://") + host + ":" +
         std::to_string(endpoint.port) + (db ? "/" + std::to_string(db) : "");
}

}  // namespace jeweler::redis
