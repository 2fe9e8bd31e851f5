#include <jeweler/session/token.hpp>

#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace jeweler::session {

namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

void ensure_sodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium could not be initialised");
}

// SipHash-2-4 with a fixed, public key: only used to spread tokens and users
// over buckets (not a secret, not a MAC).
constexpr unsigned char bucket_key[crypto_shorthash_KEYBYTES] = {
    'j', 'e', 'w', 'e', 'l', 'e', 'r', '-', 's', 'e', 's', 's', 'i', 'o', 'n', 's'};

std::uint32_t bucket_of(const unsigned char* data, std::size_t n) {
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, data, n, bucket_key);
  std::uint32_t v = static_cast<std::uint32_t>(out[0]) | (static_cast<std::uint32_t>(out[1]) << 8);
  return v % bucket_count;
}

std::string digest_hex(const unsigned char* token) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, token, token_bytes);
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.resize(2 * sizeof d);
  for (std::size_t i = 0; i < sizeof d; ++i) {
    s[2 * i] = hex[d[i] >> 4];
    s[2 * i + 1] = hex[d[i] & 15];
  }
  return s;
}

}  // namespace

std::string base64url_encode(const unsigned char* data, std::size_t n) {
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    std::uint32_t v =
        (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (n - i == 1) {
    std::uint32_t v = std::uint32_t{data[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

bool base64url_decode(std::string_view text, unsigned char* out, std::size_t n) {
  if (text.size() != (n * 4 + 2) / 3) return false;
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t o = 0;
  for (char c : text) {
    int v = decode_char(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= n) return false;
      out[o++] = static_cast<unsigned char>((acc >> bits) & 0xff);
    }
  }
  // Canonical: the bits left over must be zero.
  if (o != n || (acc & ((1u << bits) - 1)) != 0) return false;
  return true;
}

std::uint32_t user_bucket(const TenantId& tenant, const UserId& user) {
  ensure_sodium();
  std::string m;
  m.reserve(tenant.str().size() + user.str().size() + 3);
  m += "u";
  m += '\0';
  m += tenant.str();
  m += '\0';
  m += user.str();
  return bucket_of(reinterpret_cast<const unsigned char*>(m.data()), m.size());
}

std::uint32_t token_bucket(const TokenBytes& token) {
  ensure_sodium();
  return bucket_of(token.data(), token.size());
}

std::optional<TokenRef> parse_token(std::string_view token) {
  TokenBytes raw;
  if (!base64url_decode(token, raw.data(), raw.size())) return std::nullopt;
  TokenRef ref{token_bucket(raw), digest_hex(raw.data())};
  sodium_memzero(raw.data(), raw.size());
  return ref;
}

NewToken generate_token(std::uint32_t bucket) {
  ensure_sodium();
  if (bucket >= bucket_count) throw std::invalid_argument("bucket out of range");
  constexpr std::size_t batch = 64;
  std::array<unsigned char, token_bytes * batch> buf;
  for (;;) {
    randombytes_buf(buf.data(), buf.size());
    for (std::size_t i = 0; i < batch; ++i) {
      const unsigned char* t = buf.data() + i * token_bytes;
      if (bucket_of(t, token_bytes) != bucket) continue;
      NewToken nt{base64url_encode(t, token_bytes), TokenRef{bucket, digest_hex(t)}};
      sodium_memzero(buf.data(), buf.size());
      return nt;
    }
  }
}

std::string generate_id() {
  ensure_sodium();
  unsigned char b[id_bytes];
  randombytes_buf(b, sizeof b);
  return base64url_encode(b, sizeof b);
}

bool valid_id(std::string_view id) noexcept {
  unsigned char b[id_bytes];
  return base64url_decode(id, b, sizeof b);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace jeweler::session
