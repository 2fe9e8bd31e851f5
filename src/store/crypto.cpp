#include <jeweler/store/crypto.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <array>
#include <mutex>
#include <new>
#include <stdexcept>

namespace jeweler::store::crypto {

namespace {

constexpr char kBase32Upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr char kBase32Lower[] = "abcdefghijklmnopqrstuvwxyz234567";

std::once_flag g_init_once;
std::string* g_dummy_hash = nullptr;  // leaked on purpose: used until exit

std::string encode32(const unsigned char* data, std::size_t n, const char* alphabet) {
  std::string out;
  out.reserve((n * 8 + 4) / 5);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    buffer = (buffer << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

}  // namespace

void init() {
  std::call_once(g_init_once, [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
    // The dummy hash has the default cost, so verifying against it takes as
    // long as a real verification.
    g_dummy_hash = new std::string(hash_password("jeweler-dummy-password-never-valid"));
  });
}

std::string hash_password(std::string_view password, const PasswordParams& params) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), params.ops_limit,
                        params.mem_limit) != 0)
    throw std::bad_alloc();
  return std::string(out);
}

bool verify_password(std::string_view password, std::string_view hash) noexcept {
  if (sodium_init() < 0) return false;
  // crypto_pwhash_str_verify wants a NUL-terminated string of bounded size.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  char buf[crypto_pwhash_STRBYTES] = {};
  std::copy(hash.begin(), hash.end(), buf);
  return crypto_pwhash_str_verify(buf, password.data(), password.size()) == 0;
}

bool verify_password_dummy(std::string_view password) noexcept {
  try {
    init();
  } catch (...) {
    return false;
  }
  (void)verify_password(password, *g_dummy_hash);
  return false;
}

namespace detail {
const std::string& dummy_hash() {
  init();
  return *g_dummy_hash;
}
}  // namespace detail

bool password_needs_rehash(std::string_view hash, const PasswordParams& params) noexcept {
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return true;
  char buf[crypto_pwhash_STRBYTES] = {};
  std::copy(hash.begin(), hash.end(), buf);
  return crypto_pwhash_str_needs_rehash(buf, params.ops_limit, params.mem_limit) != 0;
}

// ---------------------------------------------------------------------------

std::optional<std::vector<unsigned char>> base32_decode(std::string_view s) {
  std::vector<unsigned char> out;
  out.reserve(s.size() * 5 / 8);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a';
    else if (c >= '2' && c <= '7')
      v = c - '2' + 26;
    else if (c == ' ' || c == '-' || c == '=')
      continue;
    else
      return std::nullopt;
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<unsigned char>((buffer >> (bits - 8)) & 0xFF));
      bits -= 8;
    }
  }
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string base32_encode(const unsigned char* data, std::size_t n) {
  return encode32(data, n, kBase32Upper);
}

std::string generate_totp_secret() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  std::array<unsigned char, 20> key;
  randombytes_buf(key.data(), key.size());
  return base32_encode(key.data(), key.size());
}

std::string totp_code(const unsigned char* key, std::size_t key_len, std::int64_t unix_seconds,
                      const TotpParams& params) {
  const int digits = params.digits < 6 ? 6 : (params.digits > 8 ? 8 : params.digits);
  const std::int64_t step = params.step_seconds > 0 ? params.step_seconds : 30;
  std::uint64_t counter = unix_seconds < 0 ? 0 : static_cast<std::uint64_t>(unix_seconds / step);
  unsigned char msg[8];
  for (int i = 7; i >= 0; --i) {
    msg[i] = static_cast<unsigned char>(counter & 0xFF);
    counter >>= 8;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  static const unsigned char empty_key = 0;
  if (HMAC(EVP_sha1(), key_len ? key : &empty_key, static_cast<int>(key_len), msg, sizeof msg, mac,
           &mac_len) == nullptr ||
      mac_len < 20)
    return {};
  const int offset = mac[mac_len - 1] & 0x0F;
  const std::uint32_t bin = (static_cast<std::uint32_t>(mac[offset] & 0x7F) << 24) |
                            (static_cast<std::uint32_t>(mac[offset + 1]) << 16) |
                            (static_cast<std::uint32_t>(mac[offset + 2]) << 8) |
                            static_cast<std::uint32_t>(mac[offset + 3]);
  std::uint32_t mod = 1;
  for (int i = 0; i < digits; ++i) mod *= 10;
  std::uint32_t value = bin % mod;
  std::string out(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out;
}

std::string totp_code(std::string_view secret_base32, std::int64_t unix_seconds,
                      const TotpParams& params) {
  auto key = base32_decode(secret_base32);
  if (!key || key->empty()) return {};
  return totp_code(key->data(), key->size(), unix_seconds, params);
}

std::optional<std::int64_t> verify_totp(std::string_view secret_base32, std::string_view code,
                                        std::int64_t unix_seconds, const TotpParams& params) {
  auto key = base32_decode(secret_base32);
  if (!key || key->empty()) return std::nullopt;
  const std::int64_t step = params.step_seconds > 0 ? params.step_seconds : 30;
  const int window = params.window < 0 ? 0 : (params.window > 10 ? 10 : params.window);
  const std::int64_t now_step = unix_seconds / step;
  std::optional<std::int64_t> match;
  // No early exit: every candidate is computed and compared.
  for (int d = -window; d <= window; ++d) {
    const std::int64_t s = now_step + d;
    if (s < 0) continue;
    std::string candidate = totp_code(key->data(), key->size(), s * step, params);
    bool eq = !candidate.empty() && constant_time_equal(candidate, code);
    if (eq && !match) match = s;
  }
  sodium_memzero(key->data(), key->size());
  return match;
}

// ---------------------------------------------------------------------------

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_id(std::string_view prefix) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  std::array<unsigned char, 16> raw;
  randombytes_buf(raw.data(), raw.size());
  std::string out(prefix);
  out += encode32(raw.data(), raw.size(), kBase32Lower);
  return out;
}

namespace {
std::string to_hex(const unsigned char* p, std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(hex[p[i] >> 4]);
    out.push_back(hex[p[i] & 15]);
  }
  return out;
}
}  // namespace

std::string keyed_digest_hex(std::string_view key, std::string_view data) {
  if (key.size() < crypto_generichash_KEYBYTES_MIN || key.size() > crypto_generichash_KEYBYTES_MAX)
    throw std::invalid_argument("keyed_digest_hex: the key must be 16 to 64 bytes");
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  std::array<unsigned char, 16> out;
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size(), reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return to_hex(out.data(), out.size());
}

std::string random_hex(std::size_t n) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  std::vector<unsigned char> raw(n);
  randombytes_buf(raw.data(), raw.size());
  auto out = to_hex(raw.data(), raw.size());
  sodium_memzero(raw.data(), raw.size());
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

}  // namespace jeweler::store::crypto
