// spdlog output as one JSON object per line: {"time","level","logger",...}.
// A message that is itself a JSON object ("{...}", as the access log writes)
// is merged into the line; any other message becomes "msg" (escaped).
#pragma once

#include <memory>
#include <string>

namespace spdlog {
class formatter;
}

namespace jeweler::http {

std::unique_ptr<spdlog::formatter> make_json_formatter();

/// Sets up the default logger and an "access" logger on stdout with the JSON
/// formatter and the given level name (trace, debug, info, warn, error,
/// critical, off). Throws std::invalid_argument for another level name.
void setup_json_logging(const std::string& level);

}  // namespace jeweler::http
