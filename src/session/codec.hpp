// The mapping between Session and its Redis hash (docs/session.md, "Key
// schema"). Public so that it can be tested without Redis; services use
// SessionService, never this directly.
#pragma once

#include <jeweler/session/types.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jeweler::session::codec {

/// Hash field names. `v` is the schema version (1).
namespace field {
inline constexpr std::string_view version = "v";
inline constexpr std::string_view id = "id";
inline constexpr std::string_view tenant = "tid";
inline constexpr std::string_view user = "uid";
inline constexpr std::string_view email = "em";
inline constexpr std::string_view role = "role";
inline constexpr std::string_view user_agent = "ua";
inline constexpr std::string_view ip = "ip";
inline constexpr std::string_view device_id = "dev";
inline constexpr std::string_view login_time = "lt";
inline constexpr std::string_view last_activity = "la";
inline constexpr std::string_view absolute_expiry = "mx";
inline constexpr std::string_view two_factor = "tf";
inline constexpr std::string_view ip_changes = "ipc";
/// Counts changes other than lastActivity (read by the local validation cache).
inline constexpr std::string_view change_count = "ver";
}  // namespace field

inline constexpr std::string_view schema_version = "1";

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

/// The session stored in `fields` (a HGETALL), with `expires_at` (from the
/// key's TTL). std::nullopt when anything is missing or malformed (corrupt).
/// `why` (optional) receives a short reason for the log (never field values).
std::optional<Session> decode(const Fields& fields, std::int64_t expires_at,
                              std::string* why = nullptr);

/// HSET field/value pairs for a patch (only the fields that are set).
std::vector<std::string> encode_patch(const SessionPatch& p);

}  // namespace jeweler::session::codec
