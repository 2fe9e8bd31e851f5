// Session tokens and public session ids: generation, strict parsing, digests
// and the Redis Cluster bucket a token belongs to (docs/session.md, "Tokens").
//
// A token is 32 bytes from libsodium's CSPRNG, base64url without padding (43
// characters). Redis only ever sees SHA-256(token bytes) in hex. The bucket
// (0..1023) of a user is a hash of (tenant, user); a token is drawn by
// rejection sampling until its own bucket equals its user's bucket, so the
// session key (found from the token alone) and the user's index share one
// hash tag. The token stays uniform over ~2^246 values.
#pragma once

#include <jeweler/core/ids.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace jeweler::session {

inline constexpr std::size_t token_bytes = 32;
inline constexpr std::size_t token_chars = 43;  // base64url, no padding
inline constexpr std::size_t id_bytes = 16;
inline constexpr std::size_t id_chars = 22;
inline constexpr std::uint32_t bucket_count = 1024;

using TokenBytes = std::array<unsigned char, token_bytes>;

/// base64url without padding.
std::string base64url_encode(const unsigned char* data, std::size_t n);
/// Strict decoding: only the base64url alphabet, no padding, exactly `n`
/// bytes, canonical (unused trailing bits zero). False otherwise.
bool base64url_decode(std::string_view text, unsigned char* out, std::size_t n);

/// The bucket of a user's sessions.
std::uint32_t user_bucket(const TenantId& tenant, const UserId& user);
/// The bucket of a token (from its bytes).
std::uint32_t token_bucket(const TokenBytes& token);

/// A parsed, well-formed token: its bucket and the hex SHA-256 digest that
/// names its session in Redis. The token itself is not kept.
struct TokenRef {
  std::uint32_t bucket = 0;
  std::string digest_hex;  // 64 lowercase hex characters
};
/// std::nullopt unless `token` is exactly a canonical 43-character token.
std::optional<TokenRef> parse_token(std::string_view token);

/// A fresh token whose bucket is `bucket`, and its TokenRef.
struct NewToken {
  std::string token;
  TokenRef ref;
};
NewToken generate_token(std::uint32_t bucket);

/// A fresh public session id: 16 CSPRNG bytes, base64url (22 characters).
std::string generate_id();
/// True when `id` has the shape of a public session id.
bool valid_id(std::string_view id) noexcept;

/// Constant-time equality (sodium_memcmp) for values derived from secrets.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace jeweler::session
