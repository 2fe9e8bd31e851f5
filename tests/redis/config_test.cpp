#include <jeweler/redis/config.hpp>

#include <gtest/gtest.h>

#include <map>

using namespace jeweler::redis;
using namespace std::chrono_literals;

namespace {
Config::Lookup env(std::map<std::string, std::string> vars) {
  return [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(std::map<std::string, std::string> vars) {
  try {
    Config::from_env(env(std::move(vars)));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, Defaults) {
  auto c = Config::from_env(env({}));
  EXPECT_EQ(c.endpoint.host, "localhost");
  EXPECT_EQ(c.endpoint.port, 6379);
  EXPECT_EQ(c.db, 0);
  EXPECT_EQ(c.connect_timeout, 2000ms);
  EXPECT_EQ(c.command_timeout, 1000ms);
  EXPECT_EQ(c.retry_base, 50ms);
  EXPECT_EQ(c.retry_max, 5000ms);
  EXPECT_EQ(c.key_prefix, "jeweler:");
  EXPECT_EQ(c.mode, Mode::standalone);
  EXPECT_FALSE(Config::any_configured(env({})));
}

TEST(Config, SeedVariables) {
  auto c = Config::from_env(env({{"REDIS_HOST", "cache.internal"},
                                 {"REDIS_PORT", "6380"},
                                 {"REDIS_PASSWORD", "s3cret"},
                                 {"REDIS_DB", "3"},
                                 {"REDIS_USERNAME", "app"},
                                 {"REDIS_CONNECT_TIMEOUT_MS", "500"},
                                 {"REDIS_COMMAND_TIMEOUT_MS", "250"},
                                 {"REDIS_RETRY_BASE_MS", "10"},
                                 {"REDIS_RETRY_MAX_MS", "1000"},
                                 {"REDIS_KEY_PREFIX", "t1:"}}));
  EXPECT_EQ(c.endpoint.host, "cache.internal");
  EXPECT_EQ(c.endpoint.port, 6380);
  EXPECT_EQ(c.password, "s3cret");
  EXPECT_EQ(c.username, "app");
  EXPECT_EQ(c.db, 3);
  EXPECT_EQ(c.command_timeout, 250ms);
  EXPECT_EQ(c.key_prefix, "t1:");
  EXPECT_EQ(c.describe().find("s3cret"), std::string::npos);
}

TEST(Config, Urls) {
  auto c = Config::from_url("redis://user:pa%40ss@10.0.0.5:7000/2");
  EXPECT_EQ(c.endpoint.host, "10.0.0.5");
  EXPECT_EQ(c.endpoint.port, 7000);
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pa@ss");
  EXPECT_EQ(c.db, 2);
  EXPECT_FALSE(c.tls.enabled);

  auto t = Config::from_url("rediss://:pw@example.com");
  EXPECT_TRUE(t.tls.enabled);
  EXPECT_EQ(t.password, "pw");
  EXPECT_EQ(t.endpoint.port, 6379);

  auto u = Config::from_url("unix:///var/run/redis.sock?db=4");
  EXPECT_EQ(u.unix_path, "/var/run/redis.sock");
  EXPECT_EQ(u.db, 4);

  auto v6 = Config::from_url("redis://[::1]:6390");
  EXPECT_EQ(v6.endpoint.host, "::1");
  EXPECT_EQ(v6.endpoint.port, 6390);

  // REDIS_URL overrides the four separate variables.
  auto o = Config::from_env(env({{"REDIS_URL", "redis://h2:1234"}, {"REDIS_HOST", "h1"}}));
  EXPECT_EQ(o.endpoint.host, "h2");
}

TEST(Config, ClusterAndSentinel) {
  auto c = Config::from_env(env({{"REDIS_CLUSTER_NODES", "a:7000, b:7001,[::1]:7002"}}));
  EXPECT_EQ(c.mode, Mode::cluster);
  ASSERT_EQ(c.cluster_nodes.size(), 3u);
  EXPECT_EQ(c.cluster_nodes[2].host, "::1");
  auto s = Config::from_env(
      env({{"REDIS_SENTINELS", "s1:26379"}, {"REDIS_SENTINEL_MASTER", "mymaster"}}));
  EXPECT_EQ(s.mode, Mode::sentinel);
  EXPECT_EQ(s.sentinel_master, "mymaster");
}

TEST(Config, BadValuesNameTheVariable) {
  EXPECT_NE(error_of({{"REDIS_PORT", "abc"}}).find("REDIS_PORT"), std::string::npos);
  EXPECT_NE(error_of({{"REDIS_PORT", "70000"}}).find("REDIS_PORT"), std::string::npos);
  EXPECT_NE(error_of({{"REDIS_DB", "-1"}}).find("REDIS_DB"), std::string::npos);
  EXPECT_NE(error_of({{"REDIS_URL", "http://x"}}).find("REDIS_URL"), std::string::npos);
  EXPECT_NE(error_of({{"REDIS_URL", "redis://h:0"}}).find("REDIS_URL"), std::string::npos);
  EXPECT_NE(error_of({{"REDIS_COMMAND_TIMEOUT_MS", "0"}}).find("REDIS_COMMAND_TIMEOUT_MS"),
            std::string::npos);
  EXPECT_NE(error_of({{"REDIS_RETRY_BASE_MS", "100"}, {"REDIS_RETRY_MAX_MS", "10"}})
                .find("REDIS_RETRY_MAX_MS"),
            std::string::npos);
  EXPECT_NE(error_of({{"REDIS_CLUSTER_NODES", "nohostport"}}).find("REDIS_CLUSTER_NODES"),
            std::string::npos);
  EXPECT_NE(error_of({{"REDIS_SENTINELS", "s:1"}}).find("REDIS_SENTINEL_MASTER"),
            std::string::npos);
  EXPECT_NE(error_of({{"REDIS_TLS_CERT", "/c.pem"}}).find("REDIS_TLS"), std::string::npos);
  EXPECT_NE(error_of({{"REDIS_KEY_PREFIX", "a{b}"}}).find("REDIS_KEY_PREFIX"), std::string::npos);
}

TEST(Config, Durations) {
  EXPECT_EQ(parse_duration("90s", "X"), 90s);
  EXPECT_EQ(parse_duration("15m", "X"), 15min);
  EXPECT_EQ(parse_duration("24h", "X"), 24h);
  EXPECT_EQ(parse_duration("7d", "X"), 168h);
  EXPECT_EQ(parse_duration("250ms", "X"), 250ms);
  EXPECT_EQ(parse_duration("60", "X"), 60s);
  EXPECT_THROW(parse_duration("soon", "SESSION_TTL"), ConfigError);
  EXPECT_THROW(parse_duration("5y", "SESSION_TTL"), ConfigError);
  try {
    parse_duration("-5s", "SESSION_TTL");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("SESSION_TTL"), std::string::npos);
  }
}

// The REDIS_URL forms redis-cli and ioredis users type (issue 19).
TEST(Config, UrlFormsOfOtherClients) {
  auto bare = Config::from_url("/run/redis.sock");
  EXPECT_EQ(bare.unix_path, "/run/redis.sock");
  EXPECT_EQ(bare.db, 0);
  EXPECT_EQ(bare.describe(), "unix:/run/redis.sock");

  auto bare_db = Config::from_env(env({{"REDIS_URL", " /run/redis.sock?db=3 "}}));
  EXPECT_EQ(bare_db.unix_path, "/run/redis.sock");
  EXPECT_EQ(bare_db.db, 3);
  EXPECT_EQ(bare_db.describe(), "unix:/run/redis.sock?db=3");

  auto plus = Config::from_url("redis+unix:///var/run/redis/redis.sock?db=2&password=s%26cret");
  EXPECT_EQ(plus.unix_path, "/var/run/redis/redis.sock");
  EXPECT_EQ(plus.db, 2);
  EXPECT_EQ(plus.password, "s&cret");
  EXPECT_EQ(plus.describe().find("cret"), std::string::npos);

  auto user = Config::from_url("unix://app:pw@/tmp/r.sock?db=1");
  EXPECT_EQ(user.unix_path, "/tmp/r.sock");
  EXPECT_EQ(user.username, "app");
  EXPECT_EQ(user.password, "pw");
  EXPECT_EQ(user.db, 1);

  auto upper = Config::from_url("UNIX:///tmp/r.sock");
  EXPECT_EQ(upper.unix_path, "/tmp/r.sock");

  // Databases above 15 (a server with `databases 64`): the server decides.
  EXPECT_EQ(Config::from_url("redis://h:6379/42").db, 42);
  EXPECT_EQ(Config::from_url("redis://h?db=63").db, 63);
  EXPECT_EQ(Config::from_env(env({{"REDIS_DB", "100"}})).db, 100);
  EXPECT_EQ(Config::from_url("redis://h/20").describe(), "redis://h:6379/20");
  EXPECT_EQ(Config::from_url("redis://h?password=pw&username=u").username, "u");
}

TEST(Config, BadUrlFormsNameTheVariable) {
  auto error_of_url = [](const std::string& url) -> std::string {
    try {
      Config::from_env(env({{"REDIS_URL", url}}));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  };
  for (const char* url :
       {"unix://", "unix://host/tmp/r.sock", "redis+unix://", "redis://h/x", "redis://h?db=-1",
        "unix:///tmp/r.sock?db=two", "http://h", "relative.sock", "redis://h/99999999999"}) {
    auto msg = error_of_url(url);
    EXPECT_EQ(msg.rfind("REDIS_URL: ", 0), 0u) << url << " -> " << msg;
  }
  EXPECT_NE(error_of_url("unix://host/tmp/r.sock").find("no host"), std::string::npos);
  EXPECT_NE(error_of_url("ftp://h").find("redis+unix://"), std::string::npos);
}

// Found by fuzz/config_fuzz.cpp: what() is printed as a C string, so a NUL
// in a message (a key or value from a config file) cut it short, down to
// nothing when the key came first. Control bytes are shown as \xNN.
TEST(Config, ControlBytesInMessagesAreEscaped) {
  auto msg = error_of({{"REDIS_PORT", std::string("63\0"
                                                  "79\x1b[2J",
                                                  9)}});
  EXPECT_NE(msg.find("REDIS_PORT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("63\\x0079\\x1b[2J"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
}

// Found by fuzz/config_fuzz.cpp: "[]:7001" in a node list was accepted as an
// endpoint with an empty host (a failure at connect time, not at start-up).
TEST(Config, BracketedEndpointNeedsAHost) {
  for (const char* var : {"REDIS_CLUSTER_NODES", "REDIS_SENTINELS"}) {
    std::map<std::string, std::string> vars = {{var, "a:7000,[]:7001"}};
    if (std::string_view(var) == "REDIS_SENTINELS") vars["REDIS_SENTINEL_MASTER"] = "mymaster";
    auto msg = error_of(vars);
    EXPECT_NE(msg.find(var), std::string::npos) << msg;
    EXPECT_NE(msg.find("[]:7001"), std::string::npos) << msg;
  }
  EXPECT_THROW(parse_endpoints("[]:7001", "X"), ConfigError);
  EXPECT_EQ(parse_endpoints("[::1]:7001", "X").at(0).host, "::1");
}
