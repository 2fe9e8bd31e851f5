// The logger of the jeweler libraries (redis, session, cache, ratelimit,
// store). They never write through spdlog's default logger, so they never
// write into the application's own output uninvited:
//
//   * by default, jeweler::logger() is an spdlog logger named "jeweler",
//     created on first use, writing to stderr at level warn (quiet: only
//     trouble such as "Redis unreachable" or "unreadable session data");
//   * an application sends the lines where it wants, at the level it wants:
//
//       auto mine = std::make_shared<spdlog::logger>("jeweler", my_sink);
//       mine->set_level(spdlog::level::info);
//       jeweler::set_logger(mine);       // nullptr: back to the default
//
//     or just tunes the default: jeweler::logger().set_level(spdlog::level::off);
//
// jeweler-server hands its JSON logger to set_logger() (docs/server.md).
#pragma once

#include <spdlog/logger.h>

#include <memory>

namespace jeweler {

/// The logger the libraries write to. Thread-safe; the reference stays valid
/// for the life of the process (a logger replaced by set_logger is kept).
spdlog::logger& logger() noexcept;

/// Replaces the libraries' logger (nullptr restores the default). Thread-safe.
void set_logger(std::shared_ptr<spdlog::logger> l);

}  // namespace jeweler
