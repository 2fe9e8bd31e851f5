// A Lua script, registered once (its SHA1 computed at construction) and run
// with EVALSHA; the client falls back to EVAL when Redis answers NOSCRIPT.
// Scripts are meant to be long-lived (static or service members).
#pragma once

#include <string>
#include <string_view>

namespace jeweler::redis {

class Script {
 public:
  /// `name` is for logs and metrics only.
  Script(std::string_view name, std::string source);
  const std::string& name() const noexcept { return name_; }
  const std::string& source() const noexcept { return source_; }
  const std::string& sha1() const noexcept { return sha1_; }

 private:
  std::string name_, source_, sha1_;
};

}  // namespace jeweler::redis
