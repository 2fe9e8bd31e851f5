#include <jeweler/app/help.hpp>

#include <algorithm>

namespace jeweler::app {

const std::vector<SettingHelp>& settings_help() {
  // Keep in step with README "Configuration" and API.md section 6:
  // tests/http/config_test.cpp checks that every known setting and every
  // variable of the README's tables is listed here.
  static const std::vector<SettingHelp> s = {
      {"Redis (docs/redis.md)", "REDIS_URL", "none",
       "redis://[user[:pass]@]host[:port][/db], rediss:// (TLS), unix:///path.sock[?db=N], "
       "redis+unix://, or a bare socket path; overrides the five below"},
      {"", "REDIS_HOST, REDIS_PORT", "localhost, 6379", "server address"},
      {"", "REDIS_PASSWORD", "none", "AUTH password (never logged)"},
      {"", "REDIS_USERNAME", "none", "ACL user"},
      {"", "REDIS_DB", "0",
       "database number (SELECT; above 15 if the server's `databases` allows)"},
      {"", "REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY", "none",
       "TLS to Redis: CA file; client certificate + key (mutual TLS)"},
      {"", "REDIS_SENTINELS, REDIS_SENTINEL_MASTER", "none",
       "Sentinel mode: host:port,... and the master name"},
      {"", "REDIS_CLUSTER_NODES", "none", "host:port,... seeds: Redis Cluster mode"},
      {"", "REDIS_CONNECT_TIMEOUT_MS, REDIS_COMMAND_TIMEOUT_MS", "2000, 1000",
       "connect + handshake deadline; per-command deadline"},
      {"", "REDIS_RETRY_BASE_MS, REDIS_RETRY_MAX_MS", "50, 5000", "reconnect backoff with jitter"},
      {"", "REDIS_KEY_PREFIX", "jeweler:", "prefix of every key"},

      {"Sessions (docs/session.md)", "SESSION_TTL (alias JWT_EXPIRES_IN)", "24h",
       "idle timeout; each use refreshes it"},
      {"", "SESSION_MAX_LIFETIME (alias JWT_REFRESH_EXPIRES_IN)", "7d",
       "absolute lifetime from login"},
      {"", "SESSION_MAX_PER_USER", "10", "live sessions per user; a new login evicts the oldest"},
      {"", "SESSION_2FA_PENDING_TTL", "5m", "lifetime of a session waiting for its 2FA code"},
      {"", "SESSION_ACTIVITY_INTERVAL", "1s", "how often a session's lastActivity is written"},
      {"", "COOKIE_SECURE", "true", "false drops Secure from the sid cookie (development only)"},
      {"", "ALLOWED_ORIGINS", "none",
       "other origins allowed to send cookie-authenticated unsafe requests (CSRF)"},
      {"", "CORS_ALLOWED_ORIGINS", "none",
       "origins allowed by CORS (preflight answered; credentials only for these)"},

      {"Rate limiting (docs/ratelimit.md)", "RATE_LIMIT_MAX_REQUESTS, RATE_LIMIT_WINDOW_MS",
       "100, 900000", "the api limiter (per user, or per IP when anonymous)"},
      {"", "RATE_LIMIT_TENANT_MAX", "10 x RATE_LIMIT_MAX_REQUESTS", "the api-tenant budget"},
      {"", "RATE_LIMIT_API_FAIL_OPEN, RATE_LIMIT_API_ALGORITHM", "true, log",
       "without Redis: in-process fallback or 503; log, counter or gcra"},
      {"", "RATE_LIMIT_AUTH_MAX, RATE_LIMIT_AUTH_WINDOW_MS", "5, 900000",
       "failed logins / 2FA codes, per IP and per account"},
      {"", "RATE_LIMIT_AUTH_FAIL_OPEN, RATE_LIMIT_AUTH_ALGORITHM", "false, log", ""},
      {"", "RATE_LIMIT_PASSWORD_RESET_MAX, RATE_LIMIT_PASSWORD_RESET_WINDOW_MS", "3, 3600000",
       "password-reset requests, per IP and per email"},
      {"", "RATE_LIMIT_PASSWORD_RESET_FAIL_OPEN, RATE_LIMIT_PASSWORD_RESET_ALGORITHM", "false, log",
       ""},
      {"", "RATE_LIMIT_INVOICE_MAX, RATE_LIMIT_INVOICE_WINDOW_MS", "10, 60000",
       "POST /api/invoices, per user"},
      {"", "RATE_LIMIT_INVOICE_FAIL_OPEN, RATE_LIMIT_INVOICE_ALGORITHM", "true, log", ""},
      {"", "RATE_LIMIT_UPLOAD_MAX, RATE_LIMIT_UPLOAD_WINDOW_MS", "20, 60000",
       "POST /api/uploads, per user"},
      {"", "RATE_LIMIT_UPLOAD_FAIL_OPEN, RATE_LIMIT_UPLOAD_ALGORITHM", "true, log", ""},
      {"", "TRUST_PROXY", "none", "IPs/CIDRs of proxies whose X-Forwarded-For is honoured"},

      {"Cache TTLs (docs/cache.md)", "CACHE_TTL_KPI", "5m", ""},
      {"", "CACHE_TTL_GOLD_PRICE", "60s", ""},
      {"", "CACHE_TTL_CUSTOMER", "1h", ""},
      {"", "CACHE_TTL_PRODUCT", "30m", ""},
      {"", "CACHE_TTL_INVOICE", "10m", ""},
      {"", "CACHE_TTL_PERMISSIONS", "15m", ""},

      {"Server (docs/server.md)", "HOST, PORT", "127.0.0.1, 8080",
       "listen address (IP or localhost); PORT=0 picks a free port"},
      {"", "HTTP_THREADS", "number of cores", "io threads, each with its own Redis connection"},
      {"", "HTTP_MAX_CONNECTIONS", "10000", "over it: 503 + close"},
      {"", "HTTP_MAX_CONNECTIONS_PER_IP", "256", "open connections per client address"},
      {"", "HTTP_BODY_MEMORY_BYTES", "268435456",
       "memory for bodies being read, in all (then 503)"},
      {"", "HTTP_HEADER_TIMEOUT_MS", "10000", "the header block must arrive within it (408)"},
      {"", "HTTP_IDLE_TIMEOUT_MS", "30000", "idle keep-alive connections close"},
      {"", "BODY_LIMIT_BYTES", "1048576", "request body limit (413 before reading)"},
      {"", "UPLOAD_LIMIT_BYTES", "10485760", "body limit of POST /api/uploads"},
      {"", "SHUTDOWN_TIMEOUT_MS", "10000", "how long in-flight requests may finish after SIGTERM"},
      {"", "SHUTDOWN_DRAIN_DELAY_MS", "0",
       "on SIGTERM, /health/ready answers 503 this long before the listener closes"},
      {"", "LOG_LEVEL", "info",
       "trace, debug, info, warning (warn), error (err), critical (fatal), off; JSON lines"},
      {"", "LOG_HASH_KEY", "generated into <data dir>/log-hash.key",
       "key (hex or base64, 16-64 bytes) of the email digests in logs"},
      {"", "JEWELER_TEST_ROUTES", "false", "test-only routes under /__test/ (never in production)"},

      {"Store (docs/store.md)", "DATABASE_PATH", "./var/jeweler.db",
       "SQLite database; uploads and the embedded Redis live in its folder"},
      {"", "DATABASE_BUSY_TIMEOUT_MS", "5000", "SQLite lock wait before 503"},
      {"", "DATABASE_URL", "none",
       "postgresql://...: PostgreSQL as the primary store; overrides DATABASE_PATH"},
      {"", "DATABASE_POOL_SIZE", "8", "PostgreSQL connections per process"},
  };
  return s;
}

std::string help_text() {
  std::string out =
      "usage: jeweler-server [--config FILE] [--demo-data] [--help] [--version]\n"
      "\n"
      "  --config FILE  read settings from FILE (KEY=VALUE lines); environment variables win\n"
      "  --demo-data    create the demo tenants when DATABASE_PATH holds no data yet\n"
      "  --help         show this help\n"
      "  --version      show the version\n"
      "\n"
      "Settings (environment variables, or KEY=VALUE lines of --config FILE). An empty\n"
      "variable counts as unset; a bad value stops start-up naming the setting (exit 2).\n"
      "Durations: 250ms, 90s, 15m, 24h, 7d or seconds.\n";
  for (const auto& s : settings_help()) {
    if (!s.group.empty()) {
      out += "\n";
      out += s.group;
      out += "\n";
    }
    std::string line = "  ";
    line += s.name;
    line += " [";
    line += s.fallback.empty() ? "none" : s.fallback;
    line += "]";
    if (!s.meaning.empty()) {
      line += "\n      ";
      line += s.meaning;
    }
    out += line + "\n";
  }
  out +=
      "\n"
      "With no REDIS_* connection variable set and nothing answering on localhost:6379, a\n"
      "private redis-server (from the PATH) is started on a unix socket in the folder of\n"
      "DATABASE_PATH (./var/), with persistence on.\n"
      "\n"
      "Documentation: README.md (Configuration), docs/README.md (index of the docs),\n"
      "docs/server.md (operations, health, metrics, shutdown), docs/openapi.yaml (HTTP API).\n";
  return out;
}

}  // namespace jeweler::app
