#include <jeweler/redis/detail/resp_parser.hpp>

#include <gtest/gtest.h>

#include <cmath>
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
