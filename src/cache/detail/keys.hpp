// Internal to jeweler::cache: the key schema, the Lua scripts and small
// helpers shared by the files of CacheService (cache.cpp: values and
// cache-aside; invalidation.cpp: the tenant key index; shared_stats.cpp:
// statistics in Redis). docs/cache.md describes the schema.
//
//   value:  <prefix>cache:{<tenant>}:<namespace>:<key>
//   lock:   <prefix>cachelock:{<tenant>}:<namespace>:<key>  single flight across processes
//   epoch:  <prefix>cachemeta:{<tenant>}:epoch              bumped by invalidation
//   index:  <prefix>cacheidx:{<tenant>}                     ZSET "<namespace>:<key>" ->
//                                                           expiry (ms, Redis clock; +inf)
//   stats:  <prefix>cachestats:{<tenant>}                   HASH "<namespace>:<counter>" -> n
//
// All keys of a tenant share the hash tag {<tenant>}: one slot, so every
// script below (which touches only the keys it declares) and every MGET is
// valid in Redis Cluster.
#pragma once

#include <jeweler/core/errc.hpp>
#include <jeweler/core/ids.hpp>
#include <jeweler/redis/client.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace jeweler::cache::detail {

// Safe to resend after a dropped connection (reads, SET, UNLINK, the index
// scripts) or not (counting scripts, the single-flight lock).
inline constexpr redis::ExecOptions kIdempotent{std::chrono::milliseconds{0}, true};
inline constexpr redis::ExecOptions kOnce{std::chrono::milliseconds{0}, false};

/// "<prefix><kind>:{<tenant>}:"
std::string tenant_part(std::string_view prefix, std::string_view kind, std::string_view tenant);
std::string value_key(std::string_view prefix, std::string_view tenant, std::string_view ns,
                      std::string_view key);
std::string lock_key(std::string_view prefix, std::string_view tenant, std::string_view ns,
                     std::string_view key);
std::string epoch_key(std::string_view prefix, std::string_view tenant);
std::string index_key(std::string_view prefix, std::string_view tenant);
std::string stats_key(std::string_view prefix, std::string_view tenant);
/// The index member of an entry: "<namespace>:<key>".
std::string member(std::string_view ns, std::string_view key);

// --- scripts (KEYS / ARGV in scripts.cpp) -------------------------------------
const redis::Script& acquire_script();
const redis::Script& store_script();
const redis::Script& fail_script();
const redis::Script& set_script();
const redis::Script& mset_script();
const redis::Script& del_script();
const redis::Script& expire_script();
const redis::Script& incr_script();
const redis::Script& unlink_script();
const redis::Script& held_script();
const redis::Script& stats_add_script();
const redis::Script& stats_read_script();

// --- errors ---------------------------------------------------------------------
inline boost::system::error_code invalid() {
  return make_error_code(errc::invalid_argument);
}
inline boost::system::error_code internal() {
  return make_error_code(errc::internal);
}
/// A Redis error reply (or a reply of the wrong shape) for a cache command:
/// logged, errc::internal.
boost::system::error_code bad_reply(std::string_view what, const redis::Reply& r);

}  // namespace jeweler::cache::detail
