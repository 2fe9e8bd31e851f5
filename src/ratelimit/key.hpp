// Who a limit counts: a Key names the hash-tag scope and the subject of one
// budget. Keys are only built from validated ids, parsed IP addresses or
// hashed free text (emails), never from raw user input.
//
// Redis key: <prefix>rl:{<scope>}:<policy>.<shape>[:<subject>]
//   user      {t:<tenant>}:api.l:u:<user>     tenant  {t:<tenant>}:api-tenant.l
//   ip        {ip:<address>}:auth-ip.l        email   {em:<sha256/128 hex>}:auth-account.l
// <shape> = shape_tag(algorithm): l (sliding log, ZSET), c (sliding counter,
// HASH), g (GCRA, STRING).
// Keys of one scope share a Redis Cluster hash tag, so all the limits of one
// scope in a request are checked by one script.
#pragma once

#include <jeweler/core/ids.hpp>
#include <jeweler/ratelimit/policy.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace jeweler::ratelimit {

class Key {
 public:
  /// The user `u` of tenant `t` (shares the tenant's hash tag).
  static Key user(const TenantId& t, const UserId& u);
  /// A user without tenant.
  static Key user(const UserId& u);
  /// The tenant-wide budget.
  static Key tenant(const TenantId& t);
  /// A client address in canonical form (see canonical_ip); std::nullopt when
  /// `ip` is not an IPv4/IPv6 address. IPv6 addresses are keyed by their
  /// /`ipv6_prefix` network (default /64: one customer line) so rotating
  /// addresses inside one network does not buy a fresh budget.
  static std::optional<Key> ip(std::string_view ip, int ipv6_prefix = 64);
  /// An account identifier typed by the user (email): trimmed, lower-cased,
  /// then hashed (SHA-256, 128 bits hex), so no user text reaches a key.
  static Key email(std::string_view email);
  /// Anything else: scope and subject are kept when they are valid ids
  /// ([A-Za-z0-9_.@-], 1..64), otherwise replaced by "#" + their hash.
  static Key custom(std::string_view scope, std::string_view subject = {});

  const std::string& scope() const noexcept { return scope_; }
  const std::string& subject() const noexcept { return subject_; }
  /// <prefix>rl:{<scope>}:<policy>[:<subject>] (`policy` taken verbatim).
  std::string redis_key(std::string_view prefix, std::string_view policy) const;
  /// <prefix>rl:{<scope>}:<policy>.<shape>[:<subject>]: the key a Limiter
  /// uses. <shape> names the Redis type and layout of the value (shape_tag):
  /// processes configured with different algorithms never share a key, so
  /// none reads another's value with the wrong shape (WRONGTYPE).
  std::string redis_key(std::string_view prefix, const Policy& policy) const;

  friend bool operator==(const Key&, const Key&) = default;

 private:
  Key(std::string scope, std::string subject)
      : scope_(std::move(scope)), subject_(std::move(subject)) {}
  std::string scope_, subject_;
};

/// The canonical text of an address with IPv4-mapped IPv6 turned into IPv4,
/// and IPv6 masked to `ipv6_prefix` bits; std::nullopt when not an address.
/// Accepts "a.b.c.d", "a.b.c.d:port", "::1", "[::1]", "[::1]:port".
std::optional<std::string> canonical_ip(std::string_view text, int ipv6_prefix = 128);

/// First 128 bits of SHA-256 of `text`, lower-case hex (32 characters).
std::string hash_hex(std::string_view text);

}  // namespace jeweler::ratelimit
