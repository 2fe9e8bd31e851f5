// Connection settings: a plain struct with defaults, parsed once at start-up
// from environment variables (API.md section 6) or a URL. A bad value throws
// ConfigError whose message names the variable.
#pragma once

#include <jeweler/redis/error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::redis {

using namespace std::chrono_literals;

struct Endpoint {
  std::string host;
  std::uint16_t port = 6379;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

enum class Mode { standalone, cluster, sentinel };
std::string_view to_string(Mode m) noexcept;

struct TlsConfig {
  bool enabled = false;     // rediss:// or any REDIS_TLS_* variable
  std::string ca_file;      // REDIS_TLS_CA: trust these CAs (else the system store)
  std::string cert_file;    // REDIS_TLS_CERT: client certificate (mutual TLS)
  std::string key_file;     // REDIS_TLS_KEY: its private key
  bool verify_peer = true;  // verify the server certificate chain
  std::string server_name;  // SNI / host name to verify; defaults to the host
};

struct Config {
  Mode mode = Mode::standalone;
  Endpoint endpoint{"localhost", 6379};  // REDIS_HOST, REDIS_PORT
  std::string unix_path;                 // unix:///path.sock (then endpoint unused)
  std::vector<Endpoint> cluster_nodes;   // REDIS_CLUSTER_NODES
  std::vector<Endpoint> sentinels;       // REDIS_SENTINELS
  std::string sentinel_master;           // REDIS_SENTINEL_MASTER
  std::string username;                  // REDIS_USERNAME (ACL user)
  std::string password;                  // REDIS_PASSWORD; never logged
  int db = 0;                            // REDIS_DB
  TlsConfig tls;
  std::chrono::milliseconds connect_timeout = 2000ms;  // REDIS_CONNECT_TIMEOUT_MS
  std::chrono::milliseconds command_timeout = 1000ms;  // REDIS_COMMAND_TIMEOUT_MS
  std::chrono::milliseconds retry_base = 50ms;         // REDIS_RETRY_BASE_MS
  std::chrono::milliseconds retry_max = 5000ms;        // REDIS_RETRY_MAX_MS
  std::chrono::milliseconds health_interval = 1000ms;  // PING period while idle
  std::string key_prefix = "jeweler:";                 // REDIS_KEY_PREFIX
  std::string client_name = "jeweler";                 // CLIENT SETNAME
  std::size_t max_pending = 100000;  // commands waiting or in flight before queue_full
  bool resp3 = true;                 // try HELLO 3, fall back to RESP2

  /// "host:port" or "unix:/path" (no credentials): safe to log.
  std::string describe() const;

  /// Reads the variables of API.md section 6 through `lookup` (the process
  /// environment by default). REDIS_URL overrides host/port/password/db.
  using Lookup = std::function<std::optional<std::string>(std::string_view name)>;
  static Config from_env(const Lookup& lookup = {});
  /// redis://[user[:password]@]host[:port][/db][?db=N], rediss://...,
  /// unix:///path.sock[?db=N][&password=P] (also redis+unix://, and a bare
  /// socket path "/run/redis.sock"). Any db >= 0 is accepted: whether the
  /// server has it shows at connect time (SELECT).
  /// Throws ConfigError (message "<what>: <reason>") for anything else.
  /// `what` names the setting in error messages.
  static Config from_url(std::string_view url, std::string_view what = "REDIS_URL");
  /// True when any REDIS_* connection variable is set (the server starts an
  /// embedded redis-server only when nothing is configured).
  static bool any_configured(const Lookup& lookup = {});
};

/// The process environment as a Lookup.
std::optional<std::string> getenv_lookup(std::string_view name);

/// Parses "host:port,host:port" ("[::1]:7000" for IPv6).
std::vector<Endpoint> parse_endpoints(std::string_view list, std::string_view what);

/// Durations: "250ms", "90s", "15m", "24h", "7d", or a bare number of seconds.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what);
/// A decimal integer in [min, max]; throws ConfigError naming `what`.
std::int64_t parse_int(std::string_view text, std::string_view what, std::int64_t min,
                       std::int64_t max);
bool parse_bool(std::string_view text, std::string_view what);

}  // namespace jeweler::redis
