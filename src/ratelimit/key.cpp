#include <jeweler/ratelimit/detail/ip.hpp>
#include <jeweler/ratelimit/key.hpp>

#include <openssl/sha.h>

#include <cctype>

namespace jeweler::ratelimit {

std::string hash_hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (int i = 0; i < 16; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::optional<std::string> canonical_ip(std::string_view text, int ipv6_prefix) {
  auto a = detail::parse_address(text);
  if (!a) return std::nullopt;
  if (a->v6 && ipv6_prefix < 128) detail::mask(*a, ipv6_prefix);
  return detail::format_address(*a);
}

namespace {
std::string safe(std::string_view s) {
  if (jeweler::detail::valid_id(s)) return std::string(s);
  return "#" + hash_hex(s);
}
}  // namespace

Key Key::user(const TenantId& t, const UserId& u) {
  return Key("t:" + t.str(), "u:" + u.str());
}
Key Key::user(const UserId& u) {
  return Key("u:" + u.str(), {});
}
Key Key::tenant(const TenantId& t) {
  return Key("t:" + t.str(), {});
}

std::optional<Key> Key::ip(std::string_view ip, int ipv6_prefix) {
  auto c = canonical_ip(ip, ipv6_prefix);
  if (!c) return std::nullopt;
  // IPv6 text holds ':' which is legal in a key; braces never occur.
  return Key("ip:" + *c, {});
}

Key Key::email(std::string_view email) {
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.front())))
    email.remove_prefix(1);
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.back())))
    email.remove_suffix(1);
  std::string lower(email);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return Key("em:" + hash_hex(lower), {});
}

Key Key::custom(std::string_view scope, std::string_view subject) {
  return Key("c:" + safe(scope), subject.empty() ? std::string() : safe(subject));
}

std::string Key::redis_key(std::string_view prefix, std::string_view policy) const {
  std::string k;
  k.reserve(prefix.size() + scope_.size() + policy.size() + subject_.size() + 8);
  k.append(prefix).append("rl:{").append(scope_).append("}:").append(policy);
  if (!subject_.empty()) k.append(":").append(subject_);
  return k;
}

std::string Key::redis_key(std::string_view prefix, const Policy& policy) const {
  const std::string_view shape = shape_tag(policy.algorithm);
  std::string k;
  k.reserve(prefix.size() + scope_.size() + policy.name.size() + subject_.size() + 12);
  k.append(prefix).append("rl:{").append(scope_).append("}:").append(policy.name);
  k.append(".").append(shape);
  if (!subject_.empty()) k.append(":").append(subject_);
  return k;
}

}  // namespace jeweler::ratelimit
