// jeweler-server configuration: environment variables (API.md section 6)
// and an optional KEY=VALUE file (--config). The environment wins over the
// file; unknown keys in the file are rejected; every value is validated once
// at start-up and a bad one throws redis::ConfigError naming the variable.
#pragma once

#include <jeweler/http/origin.hpp>
#include <jeweler/http/server.hpp>
#include <jeweler/redis/config.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::app {

using namespace std::chrono_literals;
using ConfigError = redis::ConfigError;
using Lookup = redis::Config::Lookup;

struct ServerConfig {
  http::ServerOptions http;                           // HOST, PORT, HTTP_*, BODY_LIMIT_BYTES
  std::size_t upload_limit = 10u << 20;               // UPLOAD_LIMIT_BYTES (uploads route)
  redis::Config redis;                                // REDIS_* (redis::Config::from_env)
  bool redis_configured = false;                      // any REDIS_* connection variable set
  std::chrono::milliseconds shutdown_timeout{10000};  // SHUTDOWN_TIMEOUT_MS
  std::chrono::milliseconds shutdown_drain_delay{0};  // SHUTDOWN_DRAIN_DELAY_MS
  std::string log_level = "info";                     // LOG_LEVEL (normalized)
  std::chrono::milliseconds session_ttl{24h};         // SESSION_TTL / JWT_EXPIRES_IN
  std::chrono::milliseconds session_max_lifetime{
      7 * 24h};                                    // SESSION_MAX_LIFETIME / JWT_REFRESH_EXPIRES_IN
  int session_max_per_user = 10;                   // SESSION_MAX_PER_USER
  bool cookie_secure = true;                       // COOKIE_SECURE
  std::vector<std::string> trust_proxy;            // TRUST_PROXY (validated CIDRs)
  std::string database_path = "./var/jeweler.db";  // DATABASE_PATH
  std::int64_t rate_limit_window_ms = 900000;      // RATE_LIMIT_WINDOW_MS
  std::int64_t rate_limit_max_requests = 100;      // RATE_LIMIT_MAX_REQUESTS
  std::chrono::milliseconds session_2fa_pending_ttl{5min};  // SESSION_2FA_PENDING_TTL
  /// LOG_HASH_KEY (the decoded bytes): key of the digest that names an email
  /// address in logs. Unset: generated once into the data directory
  /// (log-hash.key, 0600) and reused.
  std::optional<std::string> log_hash_key;
  http::OriginPolicy origins;  // ALLOWED_ORIGINS, CORS_ALLOWED_ORIGINS (docs/server.md)
  bool test_routes = false;    // JEWELER_TEST_ROUTES=1: test-only routes (never in production)
  bool demo_data = false;      // --demo-data
  std::optional<std::string> config_file;  // --config FILE

  /// The merged lookup (env, then file): other components read their own
  /// settings (rate-limit policies, cache TTLs, ...) through it, so the
  /// file works for them too. Only keys listed in known_keys() exist.
  Lookup lookup;
};

/// Every key the file may contain (section 6 + limits of section 1 +
/// rate-limit and cache settings of sections 3 and 4 + HTTP_* tuning).
const std::vector<std::string>& known_keys();

/// Parses a KEY=VALUE file ('#' comments, blank lines, optional quotes).
/// Throws ConfigError for a malformed line or an unknown key.
std::map<std::string, std::string, std::less<>> parse_config_file(const std::string& path);

/// Loads and validates everything. `env` defaults to the process environment.
ServerConfig load_config(const std::optional<std::string>& file, Lookup env = {});

/// A secret given as text: hex (an even number of [0-9a-fA-F]) or base64
/// (standard or URL alphabet, padding optional), decoded; std::nullopt when
/// it is neither or decodes to fewer than 16 or more than 64 bytes.
std::optional<std::string> decode_key_text(std::string_view text);

/// LOG_LEVEL, case-insensitive, in the usual spellings (warn/warning,
/// err/error, crit/critical/fatal, none/off, ...) -> the level name the log
/// lines print (trace, debug, info, warning, error, critical, off); nullopt
/// for anything else.
std::optional<std::string> normalize_log_level(std::string_view text);

/// Checks "a.b.c.d[/n]" or IPv6 "x::y[/n]"; throws ConfigError naming `what`.
void validate_cidr(std::string_view cidr, std::string_view what);

}  // namespace jeweler::app
