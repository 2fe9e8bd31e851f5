// libFuzzer target: the RESP parser (src/redis/detail/resp_parser.*).
//
// Any bytes are a stream from a Redis server. The stream is parsed in one
// piece, then again split into fragments (byte by byte, random sizes through
// feed(), random sizes through prepare()/commit() as the client reads), and
// every way must give the same outcome: the same replies, then the same
// protocol error or the same number of bytes left over. Memory must follow
// the bytes fed (RespParser::allocated()), never an announced length.
// The first byte picks the limits: the defaults, or tiny ones so that every
// limit is crossed by short inputs.
#include <jeweler/redis/detail/resp_parser.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using jeweler::redis::Reply;
using jeweler::redis::detail::ParserLimits;
using jeweler::redis::detail::RespParser;

void describe(const Reply& r, std::string& out) {
  out += std::to_string(static_cast<int>(r.type));
  out += '[';
  out += std::to_string(r.str.size()) + ':' + r.str + ';' + std::to_string(r.integer) + ';';
  std::uint64_t bits;
  std::memcpy(&bits, &r.number, sizeof bits);
  out += std::to_string(bits);
  for (const auto& e : r.elements) describe(e, out);
  out += ']';
}

// Deterministic fragment sizes from the input itself (no global state: the
// run is reproducible from the crash file alone).
struct Rng {
  std::uint64_t s;
  std::size_t below(std::size_t n) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<std::size_t>(s % n);
  }
};

enum class Feed { whole, bytewise, random_feed, random_prepare };

std::string outcome(std::string_view bytes, const ParserLimits& limits, Feed how,
                    std::uint64_t seed) {
  RespParser p(limits);
  std::string out;
  Rng rng{seed | 1};
  std::size_t fed = 0;
  std::size_t pos = 0;
  while (pos < bytes.size() || (pos == 0 && bytes.empty())) {
    std::size_t n = bytes.size() - pos;
    if (how == Feed::bytewise) n = std::min<std::size_t>(n, 1);
    if (how == Feed::random_feed || how == Feed::random_prepare)
      n = std::min(n, 1 + rng.below(rng.below(4) == 0 ? 4096 : 16));
    if (how == Feed::random_prepare) {
      // The client's way: a writable area larger than what arrives.
      std::size_t area = n + rng.below(64);
      char* dst = p.prepare(area);
      std::memcpy(dst, bytes.data() + pos, n);
      p.commit(n);
    } else {
      p.feed(bytes.substr(pos, n));
    }
    pos += n;
    fed += n;
    // Memory follows bytes received: the buffer (at most doubled, plus the
    // prepare() slack), the aggregates under construction (an element is at
    // least 3 bytes), the stack (a level is at least 4 bytes).
    if (p.allocated() > 64 * 1024 + 256 * fed) {
      std::fprintf(stderr, "RESP parser holds %zu bytes after %zu fed\n", p.allocated(), fed);
      std::abort();
    }
    for (;;) {
      auto r = p.next();
      if (!r) {
        out += "error";
        // Sticky until reset.
        if (p.next()) {
          std::fprintf(stderr, "a protocol error was not sticky\n");
          std::abort();
        }
        return out;
      }
      if (!*r) break;
      describe(**r, out);
      out += '\n';
    }
    if (bytes.empty()) break;
  }
  return out + "more:" + std::to_string(p.buffered());
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ParserLimits limits;
  if (data[0] & 1) {
    limits.max_line = 1 + (data[0] >> 1) % 16;
    limits.max_depth = 1 + (data[0] >> 5);
    limits.max_bulk = 8;
    limits.max_elements = 5;
  }
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string whole = outcome(bytes, limits, Feed::whole, 0);
  const std::uint64_t seed = fnv1a(bytes);
  auto check = [&](Feed how, std::uint64_t s, const char* name) {
    std::string other = outcome(bytes, limits, how, s);
    if (other != whole) {
      std::fprintf(stderr,
                   "RESP outcome depends on segmentation (%s):\n one piece: %s\n split: %s\n", name,
                   whole.c_str(), other.c_str());
      std::abort();
    }
  };
  if (bytes.size() <= 4096) check(Feed::bytewise, 0, "byte by byte");
  check(Feed::random_feed, seed, "random feed");
  check(Feed::random_prepare, seed ^ 0x9e3779b97f4a7c15ull, "random prepare/commit");
  return 0;
}
