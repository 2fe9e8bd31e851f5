// Address parsing shared by Key and TrustedProxies.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace jeweler::ratelimit::detail {

struct Address {
  bool v6 = false;                       // false: bytes[0..3] hold the IPv4 address
  std::array<std::uint8_t, 16> bytes{};  //
};

/// "a.b.c.d", "a.b.c.d:port", "::1", "[::1]", "[::1]:port", "fe80::1%eth0" (zone
/// dropped); IPv4-mapped IPv6 becomes IPv4. Surrounding blanks are ignored.
std::optional<Address> parse_address(std::string_view text);
std::string format_address(const Address& a);
/// Zeroes the bits after `prefix`.
void mask(Address& a, int prefix);

}  // namespace jeweler::ratelimit::detail
