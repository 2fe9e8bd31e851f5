// Password hashing (Argon2id, libsodium), TOTP (RFC 6238, HMAC-SHA1 via
// OpenSSL), base32, random ids and constant-time comparison. All functions are
// thread-safe. Password hashing blocks for ~65 ms and 64 MiB: run it on the
// blocking pool (store/blocking.hpp), never on an io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::store::crypto {

/// Initialises libsodium and precomputes the dummy hash. Idempotent and
/// thread-safe; every function below calls it, call it at start-up to take its
/// one-time cost (~65 ms) out of the first login. Throws std::runtime_error
/// when libsodium cannot initialise.
void init();

/// Argon2id cost: libsodium's INTERACTIVE profile (t=2, m=64 MiB, p=1):
/// ~65 ms for a hash or a verify on this project's reference machine.
struct PasswordParams {
  unsigned long long ops_limit = 2;
  std::size_t mem_limit = 64u * 1024 * 1024;
};

/// A PHC string "$argon2id$v=19$m=65536,t=2,p=1$salt$hash" (random salt).
/// Throws std::bad_alloc when the memory cannot be had.
std::string hash_password(std::string_view password, const PasswordParams& params = {});

/// True when `password` matches `hash` (any Argon2 string libsodium accepts).
/// A malformed hash is simply false.
bool verify_password(std::string_view password, std::string_view hash) noexcept;

/// Verifies `password` against a fixed dummy hash of the same cost and returns
/// false: call it for an unknown user so a login takes the same time whether
/// the email exists or not.
bool verify_password_dummy(std::string_view password) noexcept;

namespace detail {
/// The hash verify_password_dummy checks against (for tests).
const std::string& dummy_hash();
}  // namespace detail

/// True when `hash` was made with weaker parameters than `params` (rehash on login).
bool password_needs_rehash(std::string_view hash, const PasswordParams& params = {}) noexcept;

// ---------------------------------------------------------------------------

/// RFC 4648 base32 (A-Z2-7). Decoding ignores case, spaces, '-' and '='
/// padding; std::nullopt on any other character or on non-zero trailing bits.
std::optional<std::vector<unsigned char>> base32_decode(std::string_view s);
std::string base32_encode(const unsigned char* data, std::size_t n);

/// A fresh 160-bit TOTP secret, base32 (32 characters).
std::string generate_totp_secret();

struct TotpParams {
  std::int64_t step_seconds = 30;
  int digits = 6;  // 6..8
  int window = 1;  // steps accepted either side of the current one
};

/// RFC 6238 HOTP value of `key` for time `unix_seconds`, zero-padded to
/// `digits` (HMAC-SHA1, T0 = 0).
std::string totp_code(const unsigned char* key, std::size_t key_len, std::int64_t unix_seconds,
                      const TotpParams& params = {});
/// Same with a base32 secret; empty string when the secret is not base32.
std::string totp_code(std::string_view secret_base32, std::int64_t unix_seconds,
                      const TotpParams& params = {});

/// Checks `code` against steps t-window..t+window in constant time (every
/// candidate is computed and compared). Returns the matching time step (the
/// caller may remember it to refuse a replay of the same code), or
/// std::nullopt when the code does not match or the secret is not base32.
std::optional<std::int64_t> verify_totp(std::string_view secret_base32, std::string_view code,
                                        std::int64_t unix_seconds, const TotpParams& params = {});

// ---------------------------------------------------------------------------

/// Equal length and contents, in time depending only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

/// `prefix` + 26 lower-case base32 characters of 128 random bits, e.g.
/// "cus_3v2k…". Fits jeweler's id alphabet for prefixes of [a-z_].
std::string random_id(std::string_view prefix);

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Lower-case hex of a keyed BLAKE2b digest (libsodium crypto_generichash,
/// 16 bytes = 32 hex characters) of `data` under `key` (16..64 bytes; throws
/// std::invalid_argument otherwise). Without the key, a digest cannot be
/// matched against a list of candidate inputs (emails in logs).
std::string keyed_digest_hex(std::string_view key, std::string_view data);

/// `n` bytes from the CSPRNG (libsodium randombytes_buf), as lower-case hex.
std::string random_hex(std::size_t n);

}  // namespace jeweler::store::crypto
