#include <jeweler/ratelimit/detail/ip.hpp>
#include <jeweler/ratelimit/proxy.hpp>
#include <jeweler/redis/config.hpp>
#include <jeweler/redis/error.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

namespace jeweler::ratelimit {

namespace {
bool contains_addr(const Cidr& c, const detail::Address& a) {
  if (c.v6 != a.v6) return false;
  detail::Address x = a;
  detail::mask(x, c.prefix);
  return std::memcmp(x.bytes.data(), c.bytes, 16) == 0;
}
}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  auto slash = text.find('/');
  auto addr_text = text.substr(0, slash);
  // A CIDR is an address without port or brackets.
  if (addr_text.empty() || addr_text.front() == '[') return std::nullopt;
  if (std::count(addr_text.begin(), addr_text.end(), ':') == 1) return std::nullopt;  // a port
  auto a = detail::parse_address(addr_text);
  if (!a) return std::nullopt;
  bool v6_text = addr_text.find(':') != std::string_view::npos;
  if (!a->v6 && v6_text && addr_text.find('.') == std::string_view::npos) return std::nullopt;
  int max_bits = a->v6 ? 128 : 32;
  int prefix = max_bits;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size()) return std::nullopt;
    // ::ffff:10.0.0.0/104 is the IPv4 network 10.0.0.0/8
    if (!a->v6 && v6_text) prefix -= 96;
    if (prefix < 0 || prefix > max_bits) return std::nullopt;
  }
  Cidr c;
  c.v6 = a->v6;
  c.prefix = prefix;
  detail::mask(*a, prefix);
  std::memcpy(c.bytes, a->bytes.data(), 16);
  return c;
}

bool Cidr::contains(std::string_view address) const noexcept {
  auto a = detail::parse_address(address);
  return a && contains_addr(*this, *a);
}

std::string Cidr::to_string() const {
  detail::Address a;
  a.v6 = v6;
  std::memcpy(a.bytes.data(), bytes, 16);
  return detail::format_address(a) + "/" + std::to_string(prefix);
}

TrustedProxies TrustedProxies::parse(std::string_view list, std::string_view what) {
  TrustedProxies t;
  auto add = [&](std::string_view e) {
    auto c = Cidr::parse(e);
    if (!c)
      throw redis::ConfigError(std::string(what) + ": '" + std::string(e) +
                               "' is not a CIDR or an IP address");
    t.nets_.push_back(*c);
  };
  std::size_t i = 0;
  while (i <= list.size()) {
    auto j = list.find_first_of(", \t", i);
    if (j == std::string_view::npos) j = list.size();
    auto item = list.substr(i, j - i);
    i = j + 1;
    if (item.empty()) continue;
    if (item == "loopback") {
      add("127.0.0.0/8");
      add("::1/128");
    } else if (item == "linklocal") {
      add("169.254.0.0/16");
      add("fe80::/10");
    } else if (item == "uniquelocal") {
      add("10.0.0.0/8");
      add("172.16.0.0/12");
      add("192.168.0.0/16");
      add("fc00::/7");
    } else {
      add(item);
    }
  }
  return t;
}

TrustedProxies TrustedProxies::from_env(
    const std::function<std::optional<std::string>(std::string_view)>& lookup) {
  auto v = lookup ? lookup("TRUST_PROXY") : redis::getenv_lookup("TRUST_PROXY");
  if (!v) return {};
  return parse(*v, "TRUST_PROXY");
}

bool TrustedProxies::trusts(std::string_view address) const noexcept {
  auto a = detail::parse_address(address);
  if (!a) return false;
  for (const auto& c : nets_)
    if (contains_addr(c, *a)) return true;
  return false;
}

std::string TrustedProxies::client_ip(std::string_view peer, std::string_view xff) const {
  auto p = detail::parse_address(peer);
  if (!p) return std::string(peer);
  auto trusted = [&](const detail::Address& a) {
    for (const auto& c : nets_)
      if (contains_addr(c, a)) return true;
    return false;
  };
  detail::Address current = *p;
  if (!trusted(current) || xff.empty()) return detail::format_address(current);
  // Walk the hops from the right: each was appended by the proxy to its right.
  std::vector<std::string_view> hops;
  for (std::size_t i = 0; i <= xff.size();) {
    auto j = xff.find(',', i);
    if (j == std::string_view::npos) j = xff.size();
    hops.push_back(xff.substr(i, j - i));
    i = j + 1;
  }
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (it->find_first_not_of(" \t") == std::string_view::npos) continue;  // "a,,b"
    auto a = detail::parse_address(*it);
    if (!a) break;  // garbage written by a trusted hop: stop at the last valid one
    current = *a;
    if (!trusted(current)) break;
  }
  return detail::format_address(current);
}

}  // namespace jeweler::ratelimit
