// Configuration: load_config() directly, and the real binary's exit codes and
// messages for bad settings (no Redis needed: it exits before connecting).
#include "http_support.hpp"

#include <jeweler/app/config.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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
