// The text of `jeweler-server --help`: the command line and every setting
// (API.md sections 6 and 7, README "Configuration"), grouped as the README
// groups them, with defaults, and where the documentation is.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace jeweler::app {

struct SettingHelp {
  std::string_view group;     // "Redis", "Sessions", ...
  std::string_view name;      // "REDIS_URL", or a family such as "RATE_LIMIT_<NAME>_MAX"
  std::string_view fallback;  // the default, as the README writes it ("" = none)
  std::string_view meaning;   // one line
};

/// Every setting --help lists, in order.
const std::vector<SettingHelp>& settings_help();

/// The whole --help text.
std::string help_text();

}  // namespace jeweler::app
