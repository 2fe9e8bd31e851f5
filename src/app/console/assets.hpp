// The web console's static files, embedded in the binary at build time by
// cmake/EmbedFiles.cmake from src/app/console/web/ (docs/console.md).
#pragma once

#include <span>
#include <string_view>

namespace jeweler::app::console {

struct Asset {
  std::string_view name;          // "app.js": the file name, as served under /console/
  std::string_view content_type;  // from the extension
  std::string_view etag;          // strong, quoted: "\"<32 hex of SHA-256>\""
  std::string_view body;
};

/// Every embedded file, sorted by name (generated).
std::span<const Asset> assets() noexcept;

/// The asset called `name`, or nullptr.
const Asset* find_asset(std::string_view name) noexcept;

}  // namespace jeweler::app::console
