// Identity types shared by the services. A TenantId or UserId can only be
// made from a validated string, so no key can be built from an unchecked,
// unscoped value: the services take these types, never raw strings.
#pragma once

#include <compare>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace jeweler {

namespace detail {
/// 1..64 characters of [A-Za-z0-9_.@-]: safe inside Redis keys and hash tags
/// (no '{', '}', ':', glob metacharacters or whitespace).
constexpr bool valid_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '@';
    if (!ok) return false;
  }
  return true;
}

template <class Tag>
class Id {
 public:
  /// std::nullopt when `s` is not a valid id.
  static std::optional<Id> parse(std::string_view s) {
    if (!valid_id(s)) return std::nullopt;
    return Id(std::string(s));
  }
  /// Throws std::invalid_argument when `s` is not a valid id.
  static Id from(std::string_view s) {
    if (!valid_id(s)) throw std::invalid_argument(std::string(Tag::name) + " is not a valid id");
    return Id(std::string(s));
  }
  const std::string& str() const noexcept { return value_; }
  friend auto operator<=>(const Id&, const Id&) = default;
  friend bool operator==(const Id&, const Id&) = default;

 private:
  explicit Id(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

struct TenantTag {
  static constexpr const char* name = "tenant id";
};
struct UserTag {
  static constexpr const char* name = "user id";
};
}  // namespace detail

using TenantId = detail::Id<detail::TenantTag>;
using UserId = detail::Id<detail::UserTag>;

}  // namespace jeweler
