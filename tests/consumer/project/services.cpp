// A program outside the tree that links the installed services.
#include <jeweler/cache/cache.hpp>
#include <jeweler/ratelimit/limiter.hpp>
#include <jeweler/redis/log.hpp>
#include <jeweler/session/session.hpp>

#include <iostream>

int main() {
  auto opts = jeweler::session::Options::from_env();
  auto cache_opts = jeweler::cache::Options::from_env();
  auto policies = jeweler::ratelimit::PolicySet::from_env();
  jeweler::logger().set_level(spdlog::level::off);
  std::cout << "services ok: " << policies.api.limit << " " << (opts.idle_ttl.count() > 0) << " "
            << (cache_opts.default_ttl.count() > 0) << "\n";
  return 0;
}
