// Sessions: log in (create), authenticate a request (get), log out
// (destroy). Run: REDIS_URL=... ./sessions   (docs/session.md)
#include <jeweler/core/errc.hpp>
#include <jeweler/redis/client.hpp>
#include <jeweler/session/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <exception>

namespace asio = boost::asio;
namespace redis = jeweler::redis;
namespace session = jeweler::session;
using namespace std::chrono_literals;

asio::awaitable<int> run(redis::Client& client) {
  // Options and statistics are shared by every thread; the service is per thread.
  auto opts = std::make_shared<const session::Options>(session::Options::from_env());
  auto stats = std::make_shared<session::Stats>();
  session::SessionService sessions(client, opts, stats);

  session::NewSession in{.tenant_id = jeweler::TenantId::from("aurum"),
                         .user_id = jeweler::UserId::from("usr_example"),
                         .email = "owner@aurum.example",
                         .role = "admin",
                         .device = {"example-agent/1.0", "203.0.113.7", "laptop-1"}};
  auto created = co_await sessions.create(std::move(in));
  if (!created) {  // jeweler::is_unavailable(ec): Redis trouble, answer 503
    std::printf("create failed: %s\n", created.error().message().c_str());
    co_return 1;
  }
  std::string token = created->token;  // 43 characters; Redis holds only its digest
  std::printf("login: session %s, token of %zu characters\n", created->session.id.c_str(),
              token.size());

  std::optional<session::DeviceSeen> seen = session::DeviceSeen{"example-agent/1.0", "203.0.113.7"};
  auto found = co_await sessions.get(token, seen);
  if (!found) co_return 1;   // Redis trouble: 503, never "logged out"
  if (!*found) co_return 1;  // no such session: 401
  std::printf("request: user %s, user agent changed: %s\n", (*found)->session.user_id.str().c_str(),
              (*found)->user_agent_changed ? "yes" : "no");

  auto gone = co_await sessions.destroy(token);
  if (!gone || !*gone) co_return 1;
  std::optional<session::DeviceSeen> no_device;  // a named local: no temporary in co_await
  auto after = co_await sessions.get(token, no_device);
  if (!after || *after) co_return 1;  // the token no longer works
  std::printf("logout: the token stopped working\n");
  co_await client.shutdown(2s);
  co_return 0;
}

int main() {
  asio::io_context io;
  auto client = redis::make_client(io.get_executor(), redis::Config::from_env());
  int rc = 1;
  asio::co_spawn(io, run(*client), [&rc](std::exception_ptr e, int r) {
    if (!e) rc = r;
  });
  io.run();
  std::printf("sessions example: %s\n", rc == 0 ? "ok" : "failed");
  return rc;
}
