#include <jeweler/redis/detail/resp_parser.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace jeweler::redis;
using jeweler::redis::detail::RespParser;

namespace {

// Parses `bytes` fed one byte at a time and returns every complete reply.
std::vector<Reply> parse_bytewise(std::string_view bytes) {
  RespParser p;
  std::vector<Reply> out;
  for (char c : bytes) {
    p.feed(std::string_view(&c, 1));
    for (;;) {
      auto r = p.next();
      EXPECT_TRUE(r) << "protocol error";
      if (!r || !*r) break;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

Reply parse_one(std::string_view bytes) {
  RespParser p;
  p.feed(bytes);
  auto r = p.next();
  EXPECT_TRUE(r);
  EXPECT_TRUE(r && *r) << "incomplete: " << bytes;
  EXPECT_EQ(p.buffered(), 0u);
  return r && *r ? **r : Reply{};
}

bool is_protocol_error(std::string_view bytes) {
  RespParser p;
  p.feed(bytes);
  auto r = p.next();
  return !r && r.error() == make_error_code(errc::protocol_error);
}

// What a parse of a whole stream comes to: every reply (written out, NaN
// included, which Reply's operator== never finds equal), then "error" or
// "more:<bytes buffered>".
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

// Feeds `bytes` cut at the ascending positions `cuts`, draining next() after
// each piece as the client does.
std::string outcome(std::string_view bytes, const std::vector<std::size_t>& cuts,
                    detail::ParserLimits limits = {}) {
  RespParser p(limits);
  std::string out;
  std::size_t from = 0;
  auto drain = [&]() -> bool {
    for (;;) {
      auto r = p.next();
      if (!r) {
        out += "error";
        return false;
      }
      if (!*r) return true;
      describe(**r, out);
      out += '\n';
    }
  };
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    std::size_t to = i < cuts.size() ? cuts[i] : bytes.size();
    p.feed(bytes.substr(from, to - from));
    from = to;
    if (!drain()) return out;
  }
  return out + "more:" + std::to_string(p.buffered());
}

// Splits every input at every position (and, for short ones, at every pair
// of positions) and expects the one-shot outcome each time.
void expect_segmentation_independent(std::string_view bytes, detail::ParserLimits limits = {}) {
  const std::string whole = outcome(bytes, {}, limits);
  for (std::size_t i = 0; i <= bytes.size(); ++i) {
    ASSERT_EQ(outcome(bytes, {i}, limits), whole) << "split at " << i << " of " << bytes.size();
    if (bytes.size() <= 64) {
      for (std::size_t j = i; j <= bytes.size(); ++j)
        ASSERT_EQ(outcome(bytes, {i, j}, limits), whole) << "split at " << i << "," << j;
    }
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < bytes.size(); ++i) every.push_back(i);
  ASSERT_EQ(outcome(bytes, every, limits), whole) << "byte by byte";
}

}  // namespace

TEST(RespParser, SimpleTypes) {
  EXPECT_EQ(parse_one("+OK\r\n"), Reply::make_string("OK", ReplyType::simple_string));
  auto e = parse_one("-ERR unknown command\r\n");
  EXPECT_TRUE(e.is_error());
  EXPECT_EQ(e.error_code(), "ERR");
  EXPECT_EQ(parse_one(":-42\r\n").integer, -42);
  EXPECT_EQ(parse_one("$5\r\nhello\r\n").str, "hello");
  EXPECT_EQ(parse_one("$0\r\n\r\n").str, "");
  EXPECT_TRUE(parse_one("$-1\r\n").is_nil());
  EXPECT_TRUE(parse_one("*-1\r\n").is_nil());
  EXPECT_TRUE(parse_one("_\r\n").is_nil());
}

TEST(RespParser, Resp3Types) {
  auto d = parse_one(",3.25\r\n");
  EXPECT_EQ(d.type, ReplyType::double_number);
  EXPECT_DOUBLE_EQ(d.number, 3.25);
  EXPECT_TRUE(std::isinf(parse_one(",-inf\r\n").number));
  EXPECT_TRUE(std::isnan(parse_one(",nan\r\n").number));
  EXPECT_EQ(parse_one("#t\r\n").integer, 1);
  EXPECT_EQ(parse_one("#f\r\n").integer, 0);
  auto big = parse_one("(3492890328409238509324850943850943825024385\r\n");
  EXPECT_EQ(big.type, ReplyType::big_number);
  EXPECT_EQ(big.str, "3492890328409238509324850943850943825024385");
  auto v = parse_one("=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(v.type, ReplyType::verbatim_string);
  EXPECT_EQ(v.str, "Some string");
  auto be = parse_one("!21\r\nSYNTAX invalid syntax\r\n");
  EXPECT_TRUE(be.is_error());
  EXPECT_EQ(be.error_code(), "SYNTAX");
}

TEST(RespParser, Aggregates) {
  auto a = parse_one("*3\r\n:1\r\n$3\r\nfoo\r\n*2\r\n+a\r\n_\r\n");
  ASSERT_EQ(a.type, ReplyType::array);
  ASSERT_EQ(a.elements.size(), 3u);
  EXPECT_EQ(a.elements[1].str, "foo");
  ASSERT_EQ(a.elements[2].elements.size(), 2u);
  EXPECT_TRUE(a.elements[2].elements[1].is_nil());

  auto m = parse_one("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n");
  ASSERT_TRUE(m.is_map());
  auto pairs = m.pairs();
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].first, "second");
  EXPECT_EQ(pairs[1].second->integer, 2);

  auto s = parse_one("~2\r\n+a\r\n+b\r\n");
  EXPECT_EQ(s.type, ReplyType::set);
  EXPECT_TRUE(s.is_array());
  auto p = parse_one(">2\r\n+invalidate\r\n*0\r\n");
  EXPECT_EQ(p.type, ReplyType::push);
  EXPECT_TRUE(parse_one("*0\r\n").elements.empty());
}

TEST(RespParser, AttributesAreSkipped) {
  auto r = parse_one("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:1\r\n:2\r\n");
  ASSERT_EQ(r.type, ReplyType::array);
  EXPECT_EQ(r.elements.size(), 2u);
  auto nested = parse_one("*2\r\n|1\r\n+a\r\n+b\r\n:7\r\n:8\r\n");
  ASSERT_EQ(nested.elements.size(), 2u);
  EXPECT_EQ(nested.elements[0].integer, 7);
}

TEST(RespParser, PartialInputNeedsMore) {
  RespParser p;
  p.feed("$11\r\nhello");
  auto r = p.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  p.feed(" world\r\n");
  r = p.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->str, "hello world");
}

TEST(RespParser, ByteByByteEqualsWhole) {
  std::string stream =
      "+OK\r\n:12\r\n$3\r\nabc\r\n*2\r\n$1\r\nx\r\n%1\r\n+k\r\n,1.5\r\n_\r\n#t\r\n"
      "=7\r\ntxt:abc\r\n(12345\r\n>1\r\n+p\r\n~1\r\n:3\r\n!3\r\nERR\r\n";
  auto replies = parse_bytewise(stream);
  ASSERT_EQ(replies.size(), 11u);
  RespParser whole;
  whole.feed(stream);
  for (const auto& expected : replies) {
    auto r = whole.next();
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(**r, expected);
  }
}

TEST(RespParser, MalformedInputIsAProtocolError) {
  for (std::string_view bad :
       {"?\r\n", ":12a\r\n", ":\r\n", "$abc\r\n", "$-2\r\n", "$3\r\nabcXY", "*-2\r\n", "#x\r\n",
        ",1.5x\r\n", "(12a\r\n", "_x\r\n", "=2\r\nab\r\n", "%-1\r\n",
        ":99999999999999999999999\r\n", "$99999999999999\r\n"}) {
    EXPECT_TRUE(is_protocol_error(bad)) << bad;
  }
  // An error is sticky until reset.
  RespParser p;
  p.feed("?\r\n+OK\r\n");
  EXPECT_FALSE(p.next());
  EXPECT_FALSE(p.next());
  p.reset();
  p.feed("+OK\r\n");
  EXPECT_TRUE(p.next());
}

TEST(RespParser, DepthAndSizeAreBounded) {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  EXPECT_TRUE(is_protocol_error(deep));
  // A huge announced aggregate does not allocate up front.
  RespParser p;
  p.feed("*50000000\r\n:1\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_TRUE(is_protocol_error("*999999999999\r\n"));
  // A header line that never ends is garbage once it is long.
  EXPECT_TRUE(is_protocol_error("+" + std::string(70000, 'a')));
}

TEST(RespParser, SurvivesRandomBytes) {
  // A cheap in-test fuzz: random and mutated streams must never crash or hang.
  std::mt19937 rng(12345);
  const std::string alphabet = "+-:$*%~>_,#(=!|\r\n0123456789-abcXYZ";
  const std::string seed = "*3\r\n:1\r\n$3\r\nfoo\r\n%1\r\n+a\r\n,2.5\r\n";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    if (iter % 2) {
      s = seed;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) s[rng() % s.size()] = alphabet[rng() % alphabet.size()];
    } else {
      std::size_t n = rng() % 48;
      for (std::size_t i = 0; i < n; ++i)
        s += (rng() % 4 == 0) ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    RespParser p;
    std::size_t pos = 0;
    while (pos < s.size()) {
      std::size_t n = 1 + rng() % 7;
      p.feed(std::string_view(s).substr(pos, n));
      pos += n;
      for (int guard = 0; guard < 1000; ++guard) {
        auto r = p.next();
        if (!r || !*r) break;
      }
    }
  }
  SUCCEED();
}

// Issue 15.5: the line limit is a property of the bytes, not of the reads.
TEST(RespParser, LineLimitDoesNotDependOnSegmentation) {
  const std::string long_line = "+" + std::string(70000, 'a') + "\r\n";
  EXPECT_EQ(outcome(long_line, {}), "error");                    // was accepted
  EXPECT_EQ(outcome(long_line, {65600}), "error");               // was an error
  for (std::size_t cut = 1; cut < long_line.size(); cut += 997)  // many cut points
    EXPECT_EQ(outcome(long_line, {cut}), "error") << cut;
  // A 1 MiB error line in one piece is a protocol error too.
  EXPECT_EQ(outcome("-" + std::string(1 << 20, 'E') + "\r\n", {}), "error");
  // The limit itself: 64 KiB of line are fine, one byte more is not, split
  // anywhere around the edge (and inside the CRLF).
  detail::ParserLimits limits;
  const std::string at_limit = "+" + std::string(limits.max_line, 'a') + "\r\n";
  const std::string over = "+" + std::string(limits.max_line + 1, 'a') + "\r\n";
  EXPECT_NE(outcome(at_limit, {}).find("more:0"), std::string::npos);
  EXPECT_EQ(outcome(over, {}), "error");
  for (std::size_t cut = at_limit.size() - 8; cut <= at_limit.size(); ++cut) {
    EXPECT_EQ(outcome(at_limit, {cut}), outcome(at_limit, {})) << cut;
    EXPECT_EQ(outcome(over, {cut}), "error") << cut;
  }
  // Same for a header line and with small limits, every split position.
  limits.max_line = 8;
  expect_segmentation_independent("+12345678\r\n+123456789\r\n", limits);
  expect_segmentation_independent(":1234567\r\n:12345678\r\n$1\r\nx\r\n", limits);
  expect_segmentation_independent("+1234567\r", limits);
  expect_segmentation_independent("+12345678\r", limits);
  expect_segmentation_independent("+123456789\r", limits);
}

// Issue 15.5: memory follows the bytes received, not announced lengths.
TEST(RespParser, AnnouncedLengthsReserveNothing) {
  auto needs_more = [](RespParser& p) {
    auto r = p.next();
    return r && !*r;
  };
  RespParser bulk;
  bulk.feed("$536870912\r\n");  // 12 bytes announcing 512 MiB (the largest allowed)
  ASSERT_TRUE(needs_more(bulk));
  EXPECT_LT(bulk.allocated(), 64u * 1024u);  // was 512 MiB
  // The payload, as it arrives, grows the buffer with it (geometrically).
  const std::string mib(1 << 20, 'x');
  for (int i = 0; i < 4; ++i) bulk.feed(mib);
  ASSERT_TRUE(needs_more(bulk));
  EXPECT_LT(bulk.allocated(), 16u << 20);

  // Counts above the limit (64 Mi elements) are protocol errors; below it
  // they reserve nothing either.
  EXPECT_TRUE(is_protocol_error("*100000000\r\n"));
  for (std::string_view h :
       {"*60000000\r\n", "%30000000\r\n", "~60000000\r\n", ">60000000\r\n", "|30000000\r\n"}) {
    RespParser p;
    p.feed(h);
    ASSERT_TRUE(needs_more(p)) << h;
    EXPECT_LT(p.allocated(), 64u * 1024u) << h;
  }
  // Nested huge counts neither (63 levels in 693 bytes; each level used to
  // reserve 1024 elements).
  RespParser nested;
  std::string headers;
  for (int i = 0; i < 63; ++i) headers += "*10000000\r\n";
  nested.feed(headers);
  ASSERT_TRUE(needs_more(nested));
  EXPECT_LT(nested.allocated(), 64u * 1024u);
  // A complete aggregate still parses (and its elements are all there).
  std::string big = "*5000\r\n";
  for (int i = 0; i < 5000; ++i) big += ":" + std::to_string(i) + "\r\n";
  auto whole = parse_one(big);
  ASSERT_EQ(whole.elements.size(), 5000u);
  EXPECT_EQ(whole.elements[4999].integer, 4999);
}

TEST(RespParser, EveryInputSplitAnywhereEqualsOneShot) {
  const std::vector<std::string> inputs = {
      "+OK\r\n:12\r\n$3\r\nabc\r\n*2\r\n$1\r\nx\r\n%1\r\n+k\r\n,1.5\r\n_\r\n#t\r\n",
      "=7\r\ntxt:abc\r\n(12345\r\n>1\r\n+p\r\n~1\r\n:3\r\n!3\r\nERR\r\n",
      "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:1\r\n:2\r\n",
      "*2\r\n|1\r\n+a\r\n+b\r\n:7\r\n:8\r\n",
      "$-1\r\n*-1\r\n*0\r\n%0\r\n|0\r\n+after\r\n",
      ",nan\r\n,-inf\r\n,inf\r\n,1e308\r\n",
      "$5\r\nhel\r\n\r\n+x\r\n",  // CRLF inside a bulk payload
      "$3\r\nabcXY",              // bad bulk terminator
      "=2\r\nab\r\n",             // verbatim without format
      "?\r\n",
      ":12a\r\n",
      "*1\r\n*1\r\n*1\r\n:1\r\n",
      "+OK\r\n+partial",
      "$10\r\nshort",
      "*3\r\n:1\r\n",
      "\r\n",
      "+\r\r\n",
      "+a\rb\r\n",
  };
  for (const auto& in : inputs) {
    SCOPED_TRACE(in);
    expect_segmentation_independent(in);
  }
  // With small limits the limits are crossed at every position too.
  detail::ParserLimits tiny;
  tiny.max_line = 6;
  tiny.max_depth = 2;
  tiny.max_bulk = 4;
  tiny.max_elements = 3;
  for (const auto& in : inputs) {
    SCOPED_TRACE("tiny " + in);
    expect_segmentation_independent(in, tiny);
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  expect_segmentation_independent(deep);
  expect_segmentation_independent("$99999999999999\r\n");
}
