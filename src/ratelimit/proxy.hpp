// TRUST_PROXY: the proxies whose X-Forwarded-For is believed, and the client
// address derived from the socket peer and that header.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::ratelimit {

/// An IPv4 or IPv6 network. IPv4 is held as IPv4 (mapped ::ffff:a.b.c.d
/// addresses are compared as IPv4).
struct Cidr {
  bool v6 = false;
  std::uint8_t bytes[16] = {};
  int prefix = 0;
  bool contains(std::string_view address) const noexcept;
  std::string to_string() const;
  /// "10.0.0.0/8", "2001:db8::/32", or a bare address (/32, /128).
  static std::optional<Cidr> parse(std::string_view text);
};

class TrustedProxies {
 public:
  TrustedProxies() = default;  // trusts nobody: X-Forwarded-For is ignored
  /// Comma- or space-separated CIDRs and bare addresses, plus the names
  /// "loopback" (127.0.0.0/8, ::1), "linklocal" (169.254.0.0/16, fe80::/10)
  /// and "uniquelocal" (10/8, 172.16/12, 192.168/16, fc00::/7).
  /// Throws redis::ConfigError naming `what` on a bad entry.
  static TrustedProxies parse(std::string_view list, std::string_view what = "TRUST_PROXY");
  /// TRUST_PROXY from `lookup` (the process environment when empty).
  static TrustedProxies from_env(
      const std::function<std::optional<std::string>(std::string_view)>& lookup = {});

  bool trusts(std::string_view address) const noexcept;
  bool empty() const noexcept { return nets_.empty(); }
  const std::vector<Cidr>& networks() const noexcept { return nets_; }

  /// The client address: the socket peer, unless the peer is a trusted proxy;
  /// then X-Forwarded-For (all header lines joined with ",") is walked from
  /// the right and the first address that is not a trusted proxy is the
  /// client. When every hop is trusted the left-most is taken; an entry that
  /// is not an address stops the walk at the last valid hop. The result is a
  /// canonical address (IPv4-mapped IPv6 shown as IPv4), or the peer text as
  /// given when the peer itself is not an address.
  std::string client_ip(std::string_view peer, std::string_view x_forwarded_for) const;

 private:
  std::vector<Cidr> nets_;
};

}  // namespace jeweler::ratelimit
