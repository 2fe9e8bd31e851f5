// Security regression tests of issue 14, items 5-9 and 11, against the real
// jeweler-server binary (label `security`):
//   14.5  every file and directory the server creates is 0600/0700, even
//         when it is started with umask 000 (database + WAL, uploads, the
//         embedded Redis's files, the log-hash key);
//   14.6  with no REDIS_* variable the private embedded redis-server is
//         used, even when something answers on localhost:6379;
//   14.7  a TOTP code stays used after an admin clears the tenant's cache;
//   14.8  logins with the password alone never evict verified sessions, and
//         a pending session ends after SESSION_2FA_PENDING_TTL;
//   14.9  a 512-byte user agent that ends in a multi-byte character keeps
//         its session and yields valid UTF-8 JSON;
//   14.11 the log names an email address by a keyed digest (LOG_HASH_KEY, or
//         a key generated once into the data directory), not a SHA-256 prefix.
#include "e2e_support.hpp"

#include <jeweler/app/config.hpp>
#include <jeweler/app/embedded_redis.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>

using namespace e2e;
namespace fs = std::filesystem;

namespace {

/// Every path under `root` (recursively) whose permission bits give anything
/// to group or others, or that is a directory not exactly 0700 / a regular
/// file not exactly 0600. `seen` receives the relative paths checked.
std::vector<std::string> non_private(const fs::path& root, std::set<std::string>* seen = nullptr) {
  std::vector<std::string> bad;
  std::error_code ec;
  auto check = [&](const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return;  // gone meanwhile (a temp file)
    const unsigned mode = st.st_mode & 07777;
    const std::string rel = fs::relative(p, root.parent_path(), ec).string();
    if (seen) seen->insert(rel);
    bool ok = (mode & 077) == 0;
    if (S_ISDIR(st.st_mode)) ok = ok && mode == 0700;
    if (S_ISREG(st.st_mode)) ok = ok && mode == 0600;
    if (!ok) {
      std::ostringstream m;
      m << rel << " mode " << std::oct << mode;
      bad.push_back(m.str());
    }
  };
  check(root);
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec))
    check(it->path());
  return bad;
}

/// Sets the umask for its lifetime.
struct UmaskGuard {
  explicit UmaskGuard(mode_t m) : old(::umask(m)) {}
  ~UmaskGuard() { ::umask(old); }
  mode_t old;
};

std::string server_log(ServerProcess& s) {
  return s.output();
}

/// The value of "account" in the first log line containing `msg` (empty when none).
std::string logged_account(const std::string& log, const std::string& msg) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(msg) == std::string::npos) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    if (auto* a = v.as_object().if_contains("account"); a && a->is_string())
      return std::string(a->as_string());
  }
  return {};
}

std::string upload_something(std::uint16_t port, const std::string& token) {
  auto r = call(port, "POST", "/api/uploads", token, "secret receipt\n",
                {{"X-Filename", "r.txt"}, {"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 201) << r.body;
  return str(obj(r), "id");
}

}  // namespace

// --- 14.5 + 14.6 + 14.11: the embedded stack, started with umask 000 ------------

TEST(SecurityFiles, EverythingCreatedIsPrivateWhateverTheUmask) {
  auto cwd = jeweler::test::make_temp_dir("sec-files");
  {
    std::unique_ptr<ServerProcess> server;
    {
      UmaskGuard wide(0);  // the server (and its children) inherit umask 000
      server = std::make_unique<ServerProcess>(Env{{"COOKIE_SECURE", "false"}},
                                               std::vector<std::string>{"--demo-data"}, cwd);
    }
    auto port = server->wait_listening(30s);
    ASSERT_NE(port, 0) << server->output();
    ASSERT_NE(server->output().find("embedded redis-server"), std::string::npos)
        << server->output();
    const std::string token = token_of(port, kOwner);
    ASSERT_FALSE(token.empty());
    upload_something(port, token);
    // A write to the database (the WAL grows) and a failed login (log digest).
    auto inv = call(port, "GET", "/api/customers?limit=1", token);
    EXPECT_EQ(inv.status, 200) << inv.body;
    json::object bad{{"email", kClerk.email}, {"password", "wrong"}};
    EXPECT_EQ(call(port, "POST", "/api/auth/login", {}, ser(bad)).status, 401);

    std::set<std::string> seen;
    auto bad_modes = non_private(fs::path(cwd) / "var", &seen);
    EXPECT_TRUE(bad_modes.empty()) << ::testing::PrintToString(bad_modes);
    // The walk saw what matters (else the test proves nothing).
    for (const char* p : {"var", "var/jeweler.db", "var/jeweler.db-wal", "var/jeweler.db-shm",
                          "var/uploads", "var/uploads/t-aurum", "var/redis.sock", "var/redis.log",
                          "var/redis.pid", "var/log-hash.key"})
      EXPECT_TRUE(seen.count(p)) << p << " not found; saw " << ::testing::PrintToString(seen);

    server->signal(SIGTERM);
    EXPECT_EQ(server->wait_exit(20s), 0) << server->output();
  }
  // After shutdown (the embedded Redis saved its RDB and AOF): still private.
  std::set<std::string> seen;
  auto bad_modes = non_private(fs::path(cwd) / "var", &seen);
  EXPECT_TRUE(bad_modes.empty()) << ::testing::PrintToString(bad_modes);
  EXPECT_TRUE(seen.count("var/dump.rdb") || seen.count("var/appendonlydir"))
      << ::testing::PrintToString(seen);
  fs::remove_all(cwd);
}

// 14.6: something listens on localhost:6379 and answers like a Redis; with
// no REDIS_* variable set, the server must not even connect to it.
TEST(SecurityRedis, NeverAdoptsWhatListensOnTheDefaultPort) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(6379);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    GTEST_SKIP() << "127.0.0.1:6379 is in use on this machine: cannot place the fake Redis "
                    "there (the start-up decision itself is covered by "
                    "SecurityRedis.DecisionIgnoresTheDefaultPort)";
  }
  std::atomic<int> accepted{0};
  std::atomic<bool> stop{false};
  std::thread fake([&] {
    while (!stop) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) continue;
      ++accepted;
      char buf[256];
      pollfd q{c, POLLIN, 0};
      if (::poll(&q, 1, 500) == 1 && ::recv(c, buf, sizeof buf, 0) > 0) {
        const char pong[] = "+PONG\r\n";  // a forged Redis would answer like this
        (void)::send(c, pong, sizeof pong - 1, MSG_NOSIGNAL);
      }
      ::close(c);
    }
  });
  auto cwd = jeweler::test::make_temp_dir("sec-6379");
  {
    ServerProcess server({}, {}, cwd);  // no REDIS_* at all
    auto port = server.wait_listening(30s);
    EXPECT_NE(port, 0) << server.output();
    auto out = server.output();
    EXPECT_NE(out.find("embedded redis-server"), std::string::npos) << out;
    EXPECT_NE(out.find("unix:" + fs::canonical(cwd).string() + "/var/redis.sock"),
              std::string::npos)
        << out;
    if (port != 0) {
      auto r = wait_status(port, "/health", 200, 10s);
      EXPECT_EQ(r.status, 200) << r.body;
    }
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(20s), 0) << server.output();
  }
  stop = true;
  fake.join();
  ::close(fd);
  EXPECT_EQ(accepted.load(), 0) << "the server connected to the Redis on localhost:6379";
  fs::remove_all(cwd);
}

// --- 14.7 + 14.8 + 14.9: one stack on a harness Redis ---------------------------------

class SecuritySessions : public SharedStackTest<SecuritySessions> {
 public:
  static Env settings() {
    return {{"SESSION_MAX_PER_USER", "2"},
            {"SESSION_2FA_PENDING_TTL", "2s"},
            {"LOG_HASH_KEY", std::string(64, 'a')}};
  }

 protected:
  /// Verifies the pending session `token` of kSecure with a code of a time
  /// step no earlier call used (a code is accepted once per step): tries the
  /// steps of the acceptance window, waiting for the next step when all are
  /// used. Returns the rotated token (empty on failure).
  std::string verify_fresh(const std::string& token) {
    for (int round = 0; round < 4; ++round) {
      const std::int64_t now = unix_seconds();
      for (int d = -1; d <= 1; ++d) {
        const std::int64_t step = now / 30 + d;
        if (used_steps_.count(step)) continue;
        const std::string code =
            jeweler::store::crypto::totp_code(std::string_view(kTotpSecret), step * 30);
        auto r =
            call(port(), "POST", "/api/auth/2fa/verify", token, ser(json::object{{"code", code}}));
        used_steps_.insert(step);
        if (r.status == 200) return str(obj(r), "token");
        if (r.status != 401) {
          ADD_FAILURE() << r.status << " " << r.body;
          return {};
        }
      }
      std::this_thread::sleep_for(std::chrono::seconds(30 - unix_seconds() % 30 + 1));
    }
    return {};
  }
  static inline std::set<std::int64_t> used_steps_;
};

// 14.7: the replay marker is not cache data: an admin's cache clear does not
// re-open the code.
TEST_F(SecuritySessions, TotpCodeStaysUsedAfterAdminCacheClear) {
  auto first = login(port(), kSecure);
  ASSERT_EQ(first.status(), 200) << first.res.body;
  // The code of the current step (or the next one, if a test used it).
  std::int64_t step = unix_seconds() / 30;
  if (used_steps_.count(step)) ++step;
  ASSERT_FALSE(used_steps_.count(step));
  const std::string code =
      jeweler::store::crypto::totp_code(std::string_view(kTotpSecret), step * 30);
  used_steps_.insert(step);
  auto ok =
      call(port(), "POST", "/api/auth/2fa/verify", first.token, ser(json::object{{"code", code}}));
  ASSERT_EQ(ok.status, 200) << ok.body;

  const std::string admin = token_of(port(), kOwner);
  auto clear = call(port(), "DELETE", "/api/admin/cache", admin);
  ASSERT_EQ(clear.status, 200) << clear.body;

  auto second = login(port(), kSecure);
  ASSERT_EQ(second.status(), 200);
  auto replay =
      call(port(), "POST", "/api/auth/2fa/verify", second.token, ser(json::object{{"code", code}}));
  EXPECT_API_ERROR(replay, 401, "unauthorized");
  EXPECT_API_ERROR(call(port(), "GET", "/api/customers?limit=1", second.token), 403,
                   "two_factor_required");
  // Nothing of the 2FA state lives under the cache's keys.
  auto keys = stack_->redis->cli({"KEYS", "*cache*totp*"});
  EXPECT_TRUE(keys.empty()) << keys;
}

// 14.8: with the password alone (15 pending logins), the owner's verified
// sessions (the limit, 2 here: each needs a TOTP step of its own) all stay;
// a pending session ends after SESSION_2FA_PENDING_TTL (2 s here); a
// verified one gets the normal lifetime. (The library test does it with 10.)
TEST_F(SecuritySessions, PasswordAloneNeverEvictsVerifiedSessions) {
  std::vector<std::string> verified;
  for (int i = 0; i < 2; ++i) {
    auto l = login(port(), kSecure);
    ASSERT_EQ(l.status(), 200) << l.res.body;
    auto t = verify_fresh(l.token);
    ASSERT_FALSE(t.empty());
    auto me = obj(call(port(), "GET", "/api/auth/me", t));
    const auto& s = me.at("session").as_object();
    EXPECT_TRUE(s.at("twoFactorVerified").as_bool());
    // The normal idle timeout (24 h), not the pending 2 s.
    EXPECT_GT(num(s, "expiresAt") - num(s, "loginTime"), 3600 * 1000) << ser(s);
    verified.push_back(t);
  }
  std::string last_pending;
  for (int i = 0; i < 15; ++i) {
    auto l = login(port(), kSecure);
    ASSERT_EQ(l.status(), 200) << l.res.body;
    EXPECT_LE(num(l.session, "expiresAt") - num(l.session, "loginTime"), 2000) << ser(l.session);
    last_pending = l.token;
  }
  for (const auto& t : verified) {
    auto me = call(port(), "GET", "/api/auth/me", t);
    EXPECT_EQ(me.status, 200) << "a verified session was evicted by a password-only login: "
                              << me.body;
  }
  auto list = obj(call(port(), "GET", "/api/auth/sessions", verified[0]));
  ASSERT_TRUE(list.contains("sessions"));
  EXPECT_LE(list.at("sessions").as_array().size(), 4u) << ser(list);  // 2 + at most 2 pending

  // The pending session ends by itself (poll; generous upper bound).
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", last_pending).status, 200);
  auto r = wait_status(port(), "/api/auth/me", 401, 30s, last_pending);
  EXPECT_EQ(r.status, 401) << "the pending session did not expire: " << r.body;
  EXPECT_EQ(call(port(), "GET", "/api/auth/me", verified[1]).status, 200);
}

// 14.9: a user agent of more than 512 bytes whose 512th byte falls inside a
// multi-byte character: the session survives its next request, and the JSON
// that shows the agent is valid UTF-8.
TEST_F(SecuritySessions, LongMultiByteUserAgentKeepsItsSession) {
  const std::string ua = std::string(511, 'a') + "\xC3\xA9";  // 513 bytes
  auto l = login(port(), kOwner, {{"User-Agent", ua}});
  ASSERT_EQ(l.status(), 200) << l.res.body;
  ASSERT_FALSE(parse(l.res).is_null()) << "login body is not valid JSON";
  EXPECT_EQ(str(l.session.at("deviceInfo").as_object(), "userAgent"), std::string(511, 'a'));
  for (int i = 0; i < 3; ++i) {
    auto me = call(port(), "GET", "/api/auth/me", l.token, {}, {{"User-Agent", ua}});
    ASSERT_EQ(me.status, 200) << "the session ended on its own user agent: " << me.body;
    auto v = parse(me);
    ASSERT_TRUE(v.is_object()) << "not valid JSON";
    EXPECT_EQ(
        str(v.as_object().at("session").as_object().at("deviceInfo").as_object(), "userAgent"),
        std::string(511, 'a'));
  }
  // Bytes that are not UTF-8: replaced, the JSON stays valid, the session too.
  const std::string latin1 = "Agent/1.0 (caf\xE9)";
  auto l2 = login(port(), kOwner, {{"User-Agent", latin1}});
  ASSERT_EQ(l2.status(), 200) << l2.res.body;
  EXPECT_EQ(str(l2.session.at("deviceInfo").as_object(), "userAgent"),
            "Agent/1.0 (caf\xEF\xBF\xBD)");
  auto me = call(port(), "GET", "/api/auth/sessions", l2.token, {}, {{"User-Agent", latin1}});
  EXPECT_EQ(me.status, 200) << me.body;
  EXPECT_TRUE(parse(me).is_object()) << me.body;
}

// 14.11: the log's digest of an email address is keyed with LOG_HASH_KEY: it
// is not the SHA-256 prefix anyone could compute from a list of addresses.
TEST_F(SecuritySessions, LogEmailDigestIsKeyed) {
  const std::string email = "nobody-here@aurum.example";
  json::object b{{"email", email}, {"password", "whatever"}};
  EXPECT_EQ(call(port(), "POST", "/api/auth/login", {}, ser(b)).status, 401);
  std::string logged;
  for (int i = 0; i < 50 && logged.empty(); ++i) {  // the log is flushed every second
    logged = logged_account(server_log(stack_->server()), "login failed");
    if (logged.empty()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(logged.empty()) << server_log(stack_->server());
  const std::string key(32, '\xaa');  // LOG_HASH_KEY = "aa" * 32
  EXPECT_EQ(logged, jeweler::store::crypto::keyed_digest_hex(key, email));
  const std::string sha = jeweler::store::crypto::sha256_hex(email);
  EXPECT_EQ(logged.find(sha.substr(0, 16)), std::string::npos);
  EXPECT_EQ(server_log(stack_->server()).find(email), std::string::npos);
}

// 14.11: without LOG_HASH_KEY, a key is generated once into the data
// directory (0600) and reused after a restart: digests stay comparable.
TEST(SecurityLogKey, GeneratedOnceAndReused) {
  auto cwd = jeweler::test::make_temp_dir("sec-logkey");
  RedisServer redis;
  Env env{{"REDIS_URL", redis.url()}, {"DATABASE_PATH", cwd + "/data/jeweler.db"}};
  const std::string email = "ghost@aurum.example";
  auto failed_login_digest = [&]() -> std::string {
    // The previous run's output must not be read as this run's start-up line.
    std::error_code ec;
    fs::remove(fs::path(cwd) / "server.out", ec);
    ServerProcess server(env, {"--demo-data"}, cwd);
    auto port = server.wait_listening(30s);
    EXPECT_NE(port, 0) << server.output();
    if (port == 0) return {};
    json::object b{{"email", email}, {"password", "x"}};
    EXPECT_EQ(call(port, "POST", "/api/auth/login", {}, ser(b)).status, 401);
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(20s), 0);
    return logged_account(server.output(), "login failed");
  };
  auto first = failed_login_digest();
  ASSERT_FALSE(first.empty());
  const fs::path key_file = fs::path(cwd) / "data" / "log-hash.key";
  ASSERT_TRUE(fs::exists(key_file));
  struct stat st {};
  ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(key_file);
  std::string hex;
  in >> hex;
  EXPECT_EQ(hex.size(), 64u);
  std::string key;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    key += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  EXPECT_EQ(first, jeweler::store::crypto::keyed_digest_hex(key, email));
  EXPECT_NE(first.substr(0, 16), jeweler::store::crypto::sha256_hex(email).substr(0, 16));
  auto second = failed_login_digest();
  EXPECT_EQ(first, second);  // the same key after a restart
  fs::remove_all(cwd);
}

// New settings: a bad value stops start-up naming the setting.
TEST(SecurityConfig, BadValuesNameTheirSetting) {
  for (auto [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"SESSION_2FA_PENDING_TTL", "0"},
                                                        {"SESSION_2FA_PENDING_TTL", "soon"},
                                                        {"LOG_HASH_KEY", "short"},
                                                        {"LOG_HASH_KEY", "not hex nor base64!"}}) {
    auto r = jeweler::test::run_server({{name, value}, {"REDIS_URL", "redis://127.0.0.1:1"}}, {});
    EXPECT_EQ(r.code, 2) << name << "=" << value << ": " << r.output;
    EXPECT_NE(r.output.find(name), std::string::npos) << r.output;
    if (name == "LOG_HASH_KEY") {
      EXPECT_EQ(r.output.find(value), std::string::npos) << r.output;
    }
  }
  // Hex and base64 (standard or URL alphabet) keys of 16..64 bytes are accepted.
  EXPECT_EQ(jeweler::app::decode_key_text(std::string(64, 'f')), std::string(32, '\xff'));
  EXPECT_EQ(jeweler::app::decode_key_text("q83vEjRWeJq83vEjRWeJqw=="),
            std::string("\xab\xcd\xef\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab"));
  EXPECT_EQ(jeweler::app::decode_key_text("q83vEjRWeJq83vEjRWeJqw"),
            jeweler::app::decode_key_text("q83vEjRWeJq83vEjRWeJqw=="));
  EXPECT_FALSE(jeweler::app::decode_key_text(std::string(30, 'f')));   // 15 bytes
  EXPECT_FALSE(jeweler::app::decode_key_text(std::string(130, 'f')));  // 65 bytes
  EXPECT_FALSE(jeweler::app::decode_key_text("not a key at all!"));
  EXPECT_EQ(jeweler::app::decode_key_text(std::string(64, 'f') + "\n"), std::string(32, '\xff'));
}

// 14.6: the start-up decision depends on the configuration alone: no REDIS_*
// connection variable -> the embedded Redis, whatever listens on 6379 (the
// decision probes nothing); any of them -> the configured Redis.
TEST(SecurityRedis, DecisionIgnoresTheDefaultPort) {
  auto cfg_of = [](std::map<std::string, std::string> m) {
    return jeweler::app::load_config(std::nullopt,
                                     [m](std::string_view n) -> std::optional<std::string> {
                                       auto it = m.find(std::string(n));
                                       if (it == m.end()) return std::nullopt;
                                       return it->second;
                                     });
  };
  EXPECT_TRUE(jeweler::app::use_embedded_redis(cfg_of({})));
  EXPECT_TRUE(jeweler::app::use_embedded_redis(cfg_of({{"REDIS_KEY_PREFIX", "x:"}})));
  for (const char* name : {"REDIS_HOST", "REDIS_PORT", "REDIS_URL", "REDIS_PASSWORD", "REDIS_DB"}) {
    std::string value = std::string(name) == "REDIS_URL"    ? "redis://127.0.0.1:6379"
                        : std::string(name) == "REDIS_PORT" ? "6379"
                        : std::string(name) == "REDIS_DB"   ? "0"
                                                            : "localhost";
    EXPECT_FALSE(jeweler::app::use_embedded_redis(cfg_of({{name, value}}))) << name;
  }
}
