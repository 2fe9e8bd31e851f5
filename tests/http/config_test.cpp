// Configuration: load_config() directly, and the real binary's exit codes and
// messages for bad settings (no Redis needed: it exits before connecting).
#include "http_support.hpp"

#include <jeweler/app/config.hpp>
#include <jeweler/app/embedded_redis.hpp>
#include <jeweler/app/help.hpp>
#include <jeweler/http/json_log.hpp>

#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

using namespace jeweler;
using namespace jeweler::test;
using namespace std::chrono_literals;

namespace {

app::Lookup env_of(std::map<std::string, std::string> m) {
  return [m](std::string_view k) -> std::optional<std::string> {
    auto it = m.find(std::string(k));
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

std::string write_file(const std::string& dir, const std::string& text) {
  auto path = dir + "/jeweler.conf";
  std::ofstream(path) << text;
  return path;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const app::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Config, Defaults) {
  auto c = app::load_config(std::nullopt, env_of({}));
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 8080);
  EXPECT_EQ(c.http.body_limit, 1u << 20);
  EXPECT_EQ(c.upload_limit, 10u << 20);
  EXPECT_EQ(c.http.header_timeout, 10s);
  EXPECT_EQ(c.http.idle_timeout, 30s);
  EXPECT_EQ(c.shutdown_timeout, 10s);
  EXPECT_EQ(c.session_ttl, 24h);
  EXPECT_EQ(c.session_max_lifetime, 7 * 24h);
  EXPECT_EQ(c.session_max_per_user, 10);
  EXPECT_TRUE(c.cookie_secure);
  EXPECT_EQ(c.database_path, "./var/jeweler.db");
  EXPECT_EQ(c.rate_limit_max_requests, 100);
  EXPECT_EQ(c.rate_limit_window_ms, 900000);
  EXPECT_FALSE(c.redis_configured);
  EXPECT_EQ(c.redis.key_prefix, "jeweler:");
}

TEST(Config, FileValuesAndEnvironmentWins) {
  auto dir = make_temp_dir("cfg");
  auto path = write_file(dir,
                         "# comment\n\nPORT=9001\nSESSION_TTL=\"90s\"\nexport LOG_LEVEL=debug\n"
                         "REDIS_PORT=6390\nCACHE_TTL_KPI=5m\n");
  auto c = app::load_config(path, env_of({{"PORT", "9002"}}));
  EXPECT_EQ(c.http.port, 9002);  // env wins
  EXPECT_EQ(c.session_ttl, 90s);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.redis.endpoint.port, 6390);
  EXPECT_TRUE(c.redis_configured);
  // Other components read their settings through the merged lookup.
  EXPECT_EQ(c.lookup("CACHE_TTL_KPI").value_or(""), "5m");
  std::filesystem::remove_all(dir);
}

TEST(Config, AliasesAndBadValuesNameTheSetting) {
  auto c = app::load_config(std::nullopt,
                            env_of({{"JWT_EXPIRES_IN", "15m"}, {"JWT_REFRESH_EXPIRES_IN", "2d"}}));
  EXPECT_EQ(c.session_ttl, 15min);
  EXPECT_EQ(c.session_max_lifetime, 48h);
  auto bad = [](std::map<std::string, std::string> env) {
    return message_of([&] { app::load_config(std::nullopt, env_of(env)); });
  };
  EXPECT_NE(bad({{"REDIS_PORT", "abc"}}).find("REDIS_PORT"), std::string::npos);
  EXPECT_NE(bad({{"SESSION_TTL", "forever"}}).find("SESSION_TTL"), std::string::npos);
  EXPECT_NE(bad({{"PORT", "70000"}}).find("PORT"), std::string::npos);
  EXPECT_NE(bad({{"HOST", "not-an-ip"}}).find("HOST"), std::string::npos);
  EXPECT_EQ(app::load_config(std::nullopt, env_of({{"HOST", "localhost"}})).http.host, "127.0.0.1");
  EXPECT_EQ(app::load_config(std::nullopt, env_of({{"HOST", "::1"}})).http.host, "::1");
  EXPECT_NE(bad({{"REDIS_URL", "redis://127.0.0.1:notaport"}}).find("REDIS_URL: the port"),
            std::string::npos);
  EXPECT_NE(bad({{"COOKIE_SECURE", "maybe"}}).find("COOKIE_SECURE"), std::string::npos);
  EXPECT_NE(bad({{"TRUST_PROXY", "10.0.0.0/8,300.1.1.1"}}).find("TRUST_PROXY"), std::string::npos);
  EXPECT_NE(bad({{"TRUST_PROXY", "10.0.0.0/33"}}).find("TRUST_PROXY"), std::string::npos);
  EXPECT_NE(bad({{"LOG_LEVEL", "loud"}}).find("LOG_LEVEL"), std::string::npos);
  EXPECT_NE(bad({{"BODY_LIMIT_BYTES", "0"}}).find("BODY_LIMIT_BYTES"), std::string::npos);
  EXPECT_NE(bad({{"RATE_LIMIT_INVOICE_MAX", "-1"}}).find("RATE_LIMIT_INVOICE_MAX"),
            std::string::npos);
  EXPECT_NE(bad({{"CACHE_TTL_PRODUCT", "1x"}}).find("CACHE_TTL_PRODUCT"), std::string::npos);
  EXPECT_NE(bad({{"SHUTDOWN_TIMEOUT_MS", "soon"}}).find("SHUTDOWN_TIMEOUT_MS"), std::string::npos);
  auto ok =
      app::load_config(std::nullopt, env_of({{"TRUST_PROXY", "10.0.0.0/8, ::1, 192.168.1.7"}}));
  EXPECT_EQ(ok.trust_proxy.size(), 3u);
}

TEST(Config, HttpAbuseLimitsAndOrigins) {
  auto bad = [](std::map<std::string, std::string> m) {
    return message_of([&] { app::load_config(std::nullopt, env_of(std::move(m))); });
  };
  auto d = app::load_config(std::nullopt, env_of({}));
  EXPECT_EQ(d.http.max_connections_per_ip, 256u);
  EXPECT_EQ(d.http.body_memory, 256u << 20);
  EXPECT_TRUE(d.origins.allowed.empty());
  EXPECT_TRUE(d.origins.cors.empty());
  auto c = app::load_config(
      std::nullopt,
      env_of({{"HTTP_MAX_CONNECTIONS_PER_IP", "0"},
              {"HTTP_BODY_MEMORY_BYTES", "20971520"},
              {"ALLOWED_ORIGINS", "https://Partner.example:443, http://10.0.0.5:8080"},
              {"CORS_ALLOWED_ORIGINS", "https://app.example/"}}));
  EXPECT_EQ(c.http.max_connections_per_ip, 0u);
  EXPECT_EQ(c.http.body_memory, 20u << 20);
  ASSERT_EQ(c.origins.allowed.size(), 2u);
  EXPECT_EQ(c.origins.allowed[0], "https://partner.example");
  EXPECT_EQ(c.origins.allowed[1], "http://10.0.0.5:8080");
  ASSERT_EQ(c.origins.cors.size(), 1u);
  EXPECT_EQ(c.origins.cors[0], "https://app.example");
  EXPECT_NE(bad({{"HTTP_MAX_CONNECTIONS_PER_IP", "-1"}}).find("HTTP_MAX_CONNECTIONS_PER_IP"),
            std::string::npos);
  EXPECT_NE(bad({{"HTTP_BODY_MEMORY_BYTES", "lots"}}).find("HTTP_BODY_MEMORY_BYTES"),
            std::string::npos);
  // Smaller than the upload limit (10 MiB): no upload could ever be read.
  EXPECT_NE(bad({{"HTTP_BODY_MEMORY_BYTES", "5242880"}}).find("HTTP_BODY_MEMORY_BYTES"),
            std::string::npos);
  EXPECT_NE(bad({{"ALLOWED_ORIGINS", "https://a.example,*"}}).find("ALLOWED_ORIGINS"),
            std::string::npos);
  EXPECT_NE(bad({{"CORS_ALLOWED_ORIGINS", "app.example"}}).find("CORS_ALLOWED_ORIGINS"),
            std::string::npos);
  EXPECT_NE(
      bad({{"CORS_ALLOWED_ORIGINS", "https://app.example/path"}}).find("CORS_ALLOWED_ORIGINS"),
      std::string::npos);
}

TEST(Config, UnknownFileKeyIsRejected) {
  auto dir = make_temp_dir("cfg");
  auto path = write_file(dir, "PORT=9001\nNOT_A_SETTING=1\n");
  auto msg = message_of([&] { app::load_config(path, env_of({})); });
  EXPECT_NE(msg.find("NOT_A_SETTING"), std::string::npos) << msg;
  path = write_file(dir, "just some words\n");
  msg = message_of([&] { app::load_config(path, env_of({})); });
  EXPECT_NE(msg.find("line 1"), std::string::npos) << msg;
  std::filesystem::remove_all(dir);
}

// Found by fuzz/config_fuzz.cpp: a key starting with a NUL byte gave a
// ConfigError whose what() was empty (the message is a C string), so the
// server exited naming nothing. Control bytes are now shown as \xNN.
TEST(Config, ControlBytesInAFileKeyAreShownNotSwallowed) {
  auto dir = make_temp_dir("cfg");
  const std::string path = dir + "/jeweler.conf";
  std::ofstream(path) << std::string("\0EDIS_PORT=1\n", 13);
  std::string msg;
  try {
    app::load_config(path, env_of({}));
  } catch (const app::ConfigError& e) {
    msg = e.what();  // as the server prints it
  }
  EXPECT_NE(msg.find("\\x00EDIS_PORT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown setting"), std::string::npos) << msg;
  std::ofstream(path) << "PORT=80\x1b[2J\n";
  msg.clear();
  try {
    app::load_config(path, env_of({}));
  } catch (const app::ConfigError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("PORT"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
  std::filesystem::remove_all(dir);
}

// The binary itself.

TEST(ServerBinary, HelpAndVersion) {
  auto r = run_server({}, {"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--config FILE"), std::string::npos);
  r = run_server({}, {"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("jeweler-server 0."), std::string::npos);
  r = run_server({}, {"--bogus"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--bogus"), std::string::npos);
}

TEST(ServerBinary, BadValuesExitNonZeroNamingTheSetting) {
  for (auto [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"REDIS_PORT", "not-a-port"},
                                                        {"SESSION_TTL", "24 hours"},
                                                        {"REDIS_URL", "http://example.com"},
                                                        {"HTTP_HEADER_TIMEOUT_MS", "-5"}}) {
    auto r = run_server({{key, value}}, {});
    EXPECT_NE(r.code, 0) << key;
    EXPECT_NE(r.output.find(key), std::string::npos) << key << ": " << r.output;
  }
}

TEST(ServerBinary, UnknownConfigFileKeyExitsNonZero) {
  auto dir = make_temp_dir("cfg");
  auto path = write_file(dir, "REDIS_PORT=6379\nREDIS_PROT=6380\n");
  auto r = run_server({}, {"--config", path});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("REDIS_PROT"), std::string::npos) << r.output;
  r = run_server({}, {"--config", dir + "/missing.conf"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("missing.conf"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

TEST(ServerBinary, PortTakenIsAClearErrorNotAHang) {
  // Hold a listening socket on a free port.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  auto port = std::to_string(ntohs(sa.sin_port));
  // A configured (unreachable) Redis: no embedded redis-server is started.
  auto r = run_server({{"PORT", port}, {"REDIS_URL", "redis://127.0.0.1:1"}}, {});
  ::close(fd);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("in use"), std::string::npos) << r.output;
}

// Issue 19: every level the log lines print, in the usual spellings.
TEST(Config, LogLevelAcceptsEveryPrintedLevelAndUsualSpellings) {
  std::vector<std::pair<std::string, std::string>> cases = {
      {"trace", "trace"},     {"DEBUG", "debug"},    {"Info", "info"},
      {"warning", "warning"}, {"warn", "warning"},   {"WARNING", "warning"},
      {"error", "error"},     {"err", "error"},      {"critical", "critical"},
      {"crit", "critical"},   {"fatal", "critical"}, {"off", "off"},
      {"none", "off"},        {" Warn ", "warning"}};
  for (const auto& [in, want] : cases) {
    auto c = app::load_config(std::nullopt, env_of({{"LOG_LEVEL", in}}));
    EXPECT_EQ(c.log_level, want) << in;
    // The logger takes the normalized name (it throws for a name it does not know).
    EXPECT_NO_THROW(http::setup_json_logging(c.log_level)) << in;
  }
  http::setup_json_logging("warning");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
  http::setup_json_logging("info");
  // What the log lines print is accepted back.
  for (auto lvl :
       {spdlog::level::trace, spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
        spdlog::level::err, spdlog::level::critical, spdlog::level::off}) {
    std::string printed(spdlog::level::to_string_view(lvl).begin(),
                        spdlog::level::to_string_view(lvl).end());
    EXPECT_EQ(app::normalize_log_level(printed).value_or("(refused)"), printed);
  }
  auto msg = message_of([] { app::load_config(std::nullopt, env_of({{"LOG_LEVEL", "loud"}})); });
  EXPECT_NE(msg.find("LOG_LEVEL"), std::string::npos) << msg;
  EXPECT_NE(msg.find("warning"), std::string::npos) << msg;
}

TEST(ServerBinary, LogLevelWarningIsAcceptedByTheBinary) {
  // A setting parsed after LOG_LEVEL is bad: the error names it, not LOG_LEVEL.
  auto r = run_server({{"LOG_LEVEL", "Warning"}, {"SESSION_TTL", "bogus"}}, {});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("SESSION_TTL"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("LOG_LEVEL"), std::string::npos) << r.output;
}

namespace {

// Every `UPPER_CASE` name in the table rows of README.md's Configuration section.
std::set<std::string> readme_settings() {
  std::ifstream in(std::string(JEWELER_SOURCE_DIR) + "/README.md");
  std::set<std::string> out;
  bool in_config = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("## ")) in_config = line == "## Configuration";
    if (!in_config || !line.starts_with("| `")) continue;
    std::string first_cell = line.substr(0, line.find(" | "));
    std::size_t pos = 0;
    while ((pos = first_cell.find('`', pos)) != std::string::npos) {
      auto end = first_cell.find('`', pos + 1);
      if (end == std::string::npos) break;
      std::string name = first_cell.substr(pos + 1, end - pos - 1);
      if (name.size() > 1 && name.front() == '_') name.clear();  // "_WINDOW_MS" of a family
      bool upper = !name.empty();
      for (char ch : name)
        if (!(std::isupper(static_cast<unsigned char>(ch)) || ch == '_' || std::isdigit(ch)))
          upper = false;
      if (upper) out.insert(name);
      pos = end + 1;
    }
  }
  return out;
}

}  // namespace

TEST(ServerBinary, HelpListsEverySettingAndPointsToTheDocs) {
  auto r = run_server({}, {"--help"});
  ASSERT_EQ(r.code, 0);
  const std::string& help = r.output;
  auto listed = [&](const std::string& name) {
    // As a whole word: REDIS_DB must not be found only inside another name.
    for (std::size_t p = help.find(name); p != std::string::npos; p = help.find(name, p + 1)) {
      auto before = p == 0 ? ' ' : help[p - 1];
      auto after = p + name.size() < help.size() ? help[p + name.size()] : ' ';
      if (!(std::isalnum(static_cast<unsigned char>(before)) || before == '_') &&
          !(std::isalnum(static_cast<unsigned char>(after)) || after == '_'))
        return true;
    }
    return false;
  };
  for (const auto& key : app::known_keys()) EXPECT_TRUE(listed(key)) << key;
  auto readme = readme_settings();
  EXPECT_GT(readme.size(), 40u);
  for (const auto& key : readme) EXPECT_TRUE(listed(key)) << key << " (README)";
  // API.md section 6, also the settings other parts of the server read.
  for (const char* key :
       {"HTTP_MAX_CONNECTIONS_PER_IP", "HTTP_BODY_MEMORY_BYTES", "ALLOWED_ORIGINS",
        "CORS_ALLOWED_ORIGINS", "SESSION_2FA_PENDING_TTL", "SHUTDOWN_DRAIN_DELAY_MS",
        "DATABASE_URL", "DATABASE_POOL_SIZE", "REDIS_URL", "JWT_EXPIRES_IN",
        "JWT_REFRESH_EXPIRES_IN", "TRUST_PROXY", "LOG_LEVEL"})
    EXPECT_TRUE(listed(key)) << key;
  for (const auto& s : app::settings_help()) EXPECT_FALSE(s.name.empty());
  EXPECT_NE(help.find("docs/README.md"), std::string::npos);
  EXPECT_NE(help.find("README.md"), std::string::npos);
}

TEST(ServerBinary, MissingRedisServerSaysWhatAndHowToFix) {
  auto dir = make_temp_dir("noredis");
  // A PATH without redis-server; no REDIS_* set: the embedded start is tried.
  auto r = run_server({{"PATH", dir}, {"DATABASE_PATH", dir + "/var/jeweler.db"}}, {});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("redis-server was not found on the PATH"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("apt-get install redis-server"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("REDIS_URL"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("redis.log"), std::string::npos) << r.output;  // no log that is not there
  std::filesystem::remove_all(dir);
}

TEST(EmbeddedRedis, FindOnPath) {
  EXPECT_TRUE(app::find_on_path("sh").has_value());
  EXPECT_FALSE(app::find_on_path("no-such-program-jeweler-19").has_value());
}
