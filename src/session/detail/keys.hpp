// The one place where session keys are built (docs/session.md, "Key schema").
// The Lua scripts derive the same names from the bucket base they are given
// (base .. digest, base .. "u:" .. tenant .. ":" .. user); tests check both agree.
#pragma once

#include <jeweler/core/ids.hpp>
#include <jeweler/session/token.hpp>

#include <cstdint>
#include <string>

namespace jeweler::session::detail {

class Keys {
 public:
  /// Throws redis::ConfigError when the prefix contains '{' or '}' (it would
  /// break the hash tags).
  explicit Keys(std::string prefix);

  /// "<prefix>sess:{bNNNN}:" — every key of a bucket starts with it.
  std::string base(std::uint32_t bucket) const;
  /// "<prefix>sess:{bNNNN}:<sha256 hex>" — the session hash.
  std::string session(const TokenRef& t) const { return base(t.bucket) + t.digest_hex; }
  /// "<prefix>sess:{bNNNN}:u:<tenant>:<user>" — the user's index (id -> digest).
  std::string index(const TenantId& tenant, const UserId& user) const;
  /// "<prefix>sess:{bNNNN}:totp:<tenant>:<user>:<step>" — a used TOTP time
  /// step (replay marker). Session key space, not the cache: no cache
  /// invalidation reaches it.
  std::string totp_used(const TenantId& tenant, const UserId& user, std::int64_t step) const;
  /// "<prefix>sess:tenant:<tenant>" — ZSET "<user>:<id>" scored by expected expiry.
  std::string tenant_stats(const TenantId& tenant) const;
  /// "<prefix>sess:live" — ZSET "<tenant>:<user>:<id>" scored by expected expiry.
  std::string live() const { return prefix_ + "sess:live"; }

  const std::string& prefix() const noexcept { return prefix_; }

 private:
  std::string prefix_;
};

}  // namespace jeweler::session::detail
