#include <jeweler/app/config.hpp>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace jeweler::app {

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

}  // namespace

std::optional<std::string> normalize_log_level(std::string_view text) {
  std::string l = trim(text);
  for (auto& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  // Each spelling -> the name the log lines print ("level":"warning", ...).
  static const std::pair<const char*, const char*> levels[] = {
      {"trace", "trace"},      {"debug", "debug"},     {"info", "info"},
      {"information", "info"}, {"warning", "warning"}, {"warn", "warning"},
      {"error", "error"},      {"err", "error"},       {"critical", "critical"},
      {"crit", "critical"},    {"fatal", "critical"},  {"off", "off"},
      {"none", "off"}};
  for (const auto& [spelling, name] : levels)
    if (l == spelling) return std::string(name);
  return std::nullopt;
}

const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k = {
        // Redis (section 6)
        "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "REDIS_USERNAME", "REDIS_URL",
        "REDIS_TLS_CA", "REDIS_TLS_CERT", "REDIS_TLS_KEY", "REDIS_CLUSTER_NODES", "REDIS_SENTINELS",
        "REDIS_SENTINEL_MASTER", "REDIS_CONNECT_TIMEOUT_MS", "REDIS_COMMAND_TIMEOUT_MS",
        "REDIS_RETRY_BASE_MS", "REDIS_RETRY_MAX_MS", "REDIS_KEY_PREFIX",
        // Rate limiting (sections 3 and 6)
        "RATE_LIMIT_WINDOW_MS", "RATE_LIMIT_MAX_REQUESTS", "RATE_LIMIT_TENANT_MAX",
        "RATE_LIMIT_API_FAIL_OPEN", "RATE_LIMIT_API_ALGORITHM",
        // Sessions
        "SESSION_TTL", "JWT_EXPIRES_IN", "SESSION_MAX_LIFETIME", "JWT_REFRESH_EXPIRES_IN",
        "SESSION_MAX_PER_USER", "SESSION_ACTIVITY_INTERVAL", "COOKIE_SECURE",
        "SESSION_2FA_PENDING_TTL", "LOG_HASH_KEY",
        // Server
        "SHUTDOWN_TIMEOUT_MS", "LOG_LEVEL", "HOST", "PORT", "TRUST_PROXY", "DATABASE_PATH",
        "DATABASE_BUSY_TIMEOUT_MS", "BODY_LIMIT_BYTES", "UPLOAD_LIMIT_BYTES",
        "HTTP_HEADER_TIMEOUT_MS", "HTTP_IDLE_TIMEOUT_MS", "HTTP_THREADS", "HTTP_MAX_CONNECTIONS",
        "JEWELER_TEST_ROUTES", "SHUTDOWN_DRAIN_DELAY_MS",
        // HTTP abuse limits and origins (sections 1, 2 and 6)
        "HTTP_MAX_CONNECTIONS_PER_IP", "HTTP_BODY_MEMORY_BYTES", "ALLOWED_ORIGINS",
        "CORS_ALLOWED_ORIGINS",
        // Cache TTLs (section 4)
        "CACHE_TTL_KPI", "CACHE_TTL_GOLD_PRICE", "CACHE_TTL_CUSTOMER", "CACHE_TTL_PRODUCT",
        "CACHE_TTL_INVOICE", "CACHE_TTL_PERMISSIONS"};
    for (const char* name : {"AUTH", "PASSWORD_RESET", "INVOICE", "UPLOAD"})
      for (const char* suffix : {"_MAX", "_WINDOW_MS", "_FAIL_OPEN", "_ALGORITHM"})
        k.push_back(std::string("RATE_LIMIT_") + name + suffix);
    return k;
  }();
  return keys;
}

std::map<std::string, std::string, std::less<>> parse_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) bad("--config", "cannot read '" + path + "'");
  std::map<std::string, std::string, std::less<>> out;
  const auto& keys = known_keys();
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    if (t.starts_with("export ")) t = trim(std::string_view(t).substr(7));
    auto eq = t.find('=');
    std::string where = path + " line " + std::to_string(n);
    if (eq == std::string::npos) bad(where, "expected KEY=VALUE");
    std::string key = trim(std::string_view(t).substr(0, eq));
    std::string value = trim(std::string_view(t).substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      bad(key.empty() ? where : key, "unknown setting in " + where);
    if (out.count(key)) bad(key, "set twice in " + path);
    out[key] = value;
  }
  return out;
}

std::optional<std::string> decode_key_text(std::string_view text) {
  // Surrounding whitespace (a file's final newline) is not part of the key.
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  std::string t(text);
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  bool hex = !t.empty() && t.size() % 2 == 0 &&
             std::all_of(t.begin(), t.end(), [&](char c) { return hexval(c) >= 0; });
  if (hex) {
    for (std::size_t i = 0; i < t.size(); i += 2)
      out += static_cast<char>(hexval(t[i]) * 16 + hexval(t[i + 1]));
  } else {
    auto b64 = [](char c) -> int {
      if (c >= 'A' && c <= 'Z') return c - 'A';
      if (c >= 'a' && c <= 'z') return c - 'a' + 26;
      if (c >= '0' && c <= '9') return c - '0' + 52;
      if (c == '+' || c == '-') return 62;
      if (c == '/' || c == '_') return 63;
      return -1;
    };
    while (!t.empty() && t.back() == '=') t.pop_back();
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : t) {
      int v = b64(c);
      if (v < 0) return std::nullopt;
      acc = (acc << 6) | static_cast<std::uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    if (t.size() % 4 == 1) return std::nullopt;
  }
  if (out.size() < 16 || out.size() > 64) return std::nullopt;
  return out;
}

void validate_cidr(std::string_view cidr, std::string_view what) {
  std::string s = trim(cidr);
  auto slash = s.find('/');
  std::string addr = s.substr(0, slash);
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(addr, ec);
  if (ec) bad(what, "'" + s + "' is not an IP address or CIDR");
  if (slash != std::string::npos)
    redis::parse_int(std::string_view(s).substr(slash + 1), what, 0, a.is_v4() ? 32 : 128);
}

ServerConfig load_config(const std::optional<std::string>& file, Lookup env_in) {
  Lookup env = env_in ? env_in : Lookup(redis::getenv_lookup);
  auto file_values = std::make_shared<std::map<std::string, std::string, std::less<>>>();
  if (file) *file_values = parse_config_file(*file);

  ServerConfig c;
  c.config_file = file;
  // The environment wins; an empty variable counts as unset.
  c.lookup = [env, file_values](std::string_view name) -> std::optional<std::string> {
    if (auto v = env(name); v && !v->empty()) return v;
    if (auto it = file_values->find(name); it != file_values->end()) return it->second;
    return std::nullopt;
  };
  const Lookup& get = c.lookup;

  c.redis = redis::Config::from_env(get);
  c.redis_configured = redis::Config::any_configured(get);

  auto integer = [&](const char* name, std::int64_t min, std::int64_t max,
                     std::int64_t def) -> std::int64_t {
    if (auto v = get(name)) return redis::parse_int(*v, name, min, max);
    return def;
  };
  auto millis = [&](const char* name, std::int64_t min, std::int64_t max,
                    std::chrono::milliseconds def) {
    return std::chrono::milliseconds(integer(name, min, max, def.count()));
  };
  auto boolean = [&](const char* name, bool def) {
    if (auto v = get(name)) return redis::parse_bool(*v, name);
    return def;
  };
  auto duration = [&](const char* name, const char* alias, std::chrono::milliseconds def) {
    auto v = get(name);
    const char* which = name;
    if (!v && alias) {
      v = get(alias);
      which = alias;
    }
    if (!v) return def;
    auto d = redis::parse_duration(*v, which);
    if (d.count() <= 0) bad(which, "must be positive");
    return d;
  };

  if (auto v = get("HOST")) {
    // An IP address, or "localhost" (the loopback address, IPv4).
    std::string host = trim(*v);
    if (host == "localhost") host = "127.0.0.1";
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec) bad("HOST", "'" + *v + "' is not an IP address (or localhost) to listen on");
    c.http.host = host;
  }
  c.http.port = static_cast<std::uint16_t>(integer("PORT", 0, 65535, 8080));
  c.http.threads = static_cast<std::size_t>(
      integer("HTTP_THREADS", 1, 256, std::max(1u, std::thread::hardware_concurrency())));
  c.http.body_limit = static_cast<std::size_t>(integer("BODY_LIMIT_BYTES", 1, 1LL << 30, 1 << 20));
  c.upload_limit = static_cast<std::size_t>(integer("UPLOAD_LIMIT_BYTES", 1, 1LL << 32, 10 << 20));
  c.http.header_timeout = millis("HTTP_HEADER_TIMEOUT_MS", 1, 600'000, c.http.header_timeout);
  c.http.idle_timeout = millis("HTTP_IDLE_TIMEOUT_MS", 1, 3'600'000, c.http.idle_timeout);
  c.http.max_connections =
      static_cast<std::size_t>(integer("HTTP_MAX_CONNECTIONS", 1, 1'000'000, 10000));
  c.shutdown_timeout = millis("SHUTDOWN_TIMEOUT_MS", 0, 3'600'000, c.shutdown_timeout);
  c.shutdown_drain_delay = millis("SHUTDOWN_DRAIN_DELAY_MS", 0, 3'600'000, c.shutdown_drain_delay);
  c.http.max_connections_per_ip =
      static_cast<std::size_t>(integer("HTTP_MAX_CONNECTIONS_PER_IP", 0, 1'000'000, 256));
  c.http.body_memory =
      static_cast<std::size_t>(integer("HTTP_BODY_MEMORY_BYTES", 1, 1LL << 40, 256LL << 20));
  if (c.http.body_memory < std::max(c.http.body_limit, c.upload_limit))
    bad("HTTP_BODY_MEMORY_BYTES", "must be at least BODY_LIMIT_BYTES and UPLOAD_LIMIT_BYTES (" +
                                      std::to_string(std::max(c.http.body_limit, c.upload_limit)) +
                                      "), or no body that large could ever be read");
  for (auto [name, list] : {std::pair{"ALLOWED_ORIGINS", &c.origins.allowed},
                            std::pair{"CORS_ALLOWED_ORIGINS", &c.origins.cors}}) {
    if (auto v = get(name)) {
      try {
        *list = http::parse_origin_list(*v);
      } catch (const std::invalid_argument& e) {
        bad(name, e.what());
      }
    }
  }

  if (auto v = get("LOG_LEVEL")) {
    auto l = normalize_log_level(*v);
    if (!l)
      bad("LOG_LEVEL", "'" + *v +
                           "' is not a level: trace, debug, info, warning (warn), error (err), "
                           "critical (crit, fatal), off (none)");
    c.log_level = *l;
  }

  c.session_ttl = duration("SESSION_TTL", "JWT_EXPIRES_IN", c.session_ttl);
  c.session_max_lifetime =
      duration("SESSION_MAX_LIFETIME", "JWT_REFRESH_EXPIRES_IN", c.session_max_lifetime);
  c.session_max_per_user = static_cast<int>(integer("SESSION_MAX_PER_USER", 1, 1000, 10));
  c.cookie_secure = boolean("COOKIE_SECURE", true);
  c.session_2fa_pending_ttl =
      duration("SESSION_2FA_PENDING_TTL", nullptr, c.session_2fa_pending_ttl);
  if (auto v = get("LOG_HASH_KEY")) {
    c.log_hash_key = decode_key_text(*v);
    if (!c.log_hash_key)
      bad("LOG_HASH_KEY", "must be 16 to 64 bytes in hex or base64 (e.g. openssl rand -hex 32)");
  }

  if (auto v = get("TRUST_PROXY")) {
    std::string_view list = *v;
    while (!list.empty()) {
      auto comma = list.find(',');
      std::string item = trim(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (item.empty()) continue;
      validate_cidr(item, "TRUST_PROXY");
      c.trust_proxy.push_back(item);
    }
  }
  if (auto v = get("DATABASE_PATH")) {
    if (trim(*v).empty()) bad("DATABASE_PATH", "empty path");
    c.database_path = trim(*v);
  }

  c.rate_limit_window_ms = integer("RATE_LIMIT_WINDOW_MS", 1, 366LL * 86'400'000, 900000);
  c.rate_limit_max_requests = integer("RATE_LIMIT_MAX_REQUESTS", 1, 1'000'000'000, 100);
  integer("RATE_LIMIT_TENANT_MAX", 1, 1'000'000'000, 0);
  boolean("RATE_LIMIT_API_FAIL_OPEN", true);
  for (const char* name : {"AUTH", "PASSWORD_RESET", "INVOICE", "UPLOAD"}) {
    std::string base = std::string("RATE_LIMIT_") + name;
    integer((base + "_MAX").c_str(), 1, 1'000'000'000, 0);
    integer((base + "_WINDOW_MS").c_str(), 1, 366LL * 86'400'000, 0);
    boolean((base + "_FAIL_OPEN").c_str(), false);
  }
  for (const char* name : {"CACHE_TTL_KPI", "CACHE_TTL_GOLD_PRICE", "CACHE_TTL_CUSTOMER",
                           "CACHE_TTL_PRODUCT", "CACHE_TTL_INVOICE", "CACHE_TTL_PERMISSIONS"})
    duration(name, nullptr, std::chrono::milliseconds(1));
  c.test_routes = boolean("JEWELER_TEST_ROUTES", false);
  return c;
}

}  // namespace jeweler::app
