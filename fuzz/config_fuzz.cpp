// libFuzzer target: configuration parsing — redis::Config::from_url,
// parse_duration / parse_int / parse_bool / parse_endpoints, validate_cidr,
// and the --config file of jeweler-server (parse_config_file + load_config +
// the platform module's check_config, which read every component's
// settings through the file's values).
//
// The first byte picks the parser, the rest is the text. A bad value must be
// refused with redis::ConfigError (or std::invalid_argument where the API
// says so) whose message is not empty; any other exception, a crash or
// undefined behaviour is a bug. Accepted values are checked against the
// documented ranges.
#include <jeweler/app/config.hpp>
#include <jeweler/app/routes/module.hpp>
#include <jeweler/redis/config.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "config fuzz: %s %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

// The config file lives in memory: /proc/self/fd/N of a memfd.
const std::string& config_path(std::string_view content) {
  static int fd = memfd_create("jeweler-fuzz-config", 0);
  static std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0 ||
      pwrite(fd, content.data(), content.size(), 0) != static_cast<ssize_t>(content.size()))
    fail("cannot write the memfd");
  return path;
}

void run(std::uint8_t which, std::string_view text) {
  namespace redis = jeweler::redis;
  switch (which) {
    case 0: {
      auto c = redis::Config::from_url(text);
      if (c.db < 0) fail("negative db accepted", text);
      if (c.unix_path.empty() && c.endpoint.host.empty()) fail("empty host accepted", text);
      (void)c.describe();
      break;
    }
    case 1: {
      auto d = redis::parse_duration(text, "FUZZ_MS");
      if (d.count() < 0) fail("negative duration accepted", text);
      break;
    }
    case 2: {
      auto v = redis::parse_int(text, "FUZZ", -1000, 1000);
      if (v < -1000 || v > 1000) fail("out-of-range integer accepted", text);
      break;
    }
    case 3:
      (void)redis::parse_bool(text, "FUZZ");
      break;
    case 4: {
      auto eps = redis::parse_endpoints(text, "REDIS_CLUSTER_NODES");
      for (const auto& e : eps)
        if (e.host.empty()) fail("endpoint without host accepted", text);
      break;
    }
    case 5:
      jeweler::app::validate_cidr(text, "TRUST_PROXY");
      break;
    default: {
      // A whole --config file, nothing from the environment.
      jeweler::app::Lookup no_env = [](std::string_view) -> std::optional<std::string> {
        return std::nullopt;
      };
      auto cfg = jeweler::app::load_config(config_path(text), no_env);
      jeweler::app::routes::check_config(cfg);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    run(data[0] % 8, text);
  } catch (const jeweler::redis::ConfigError& e) {
    if (std::string_view(e.what()).empty()) fail("ConfigError without a message");
  } catch (const std::invalid_argument& e) {
    if (std::string_view(e.what()).empty()) fail("invalid_argument without a message");
  } catch (const std::exception& e) {
    fail("unexpected exception:", e.what());
  }
  return 0;
}
