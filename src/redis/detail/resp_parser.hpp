// Incremental RESP2/RESP3 parser. Takes bytes, never touches a socket, and
// survives any byte sequence: malformed input is a protocol error, never a
// crash, an unbounded allocation or unbounded recursion.
//
// Two promises the fuzzers check (fuzz/resp_parser_fuzz.cpp):
// - The result does not depend on how the bytes arrive: the same stream fed
//   in one piece or split anywhere yields the same replies and the same
//   protocol error. Every limit is therefore a property of the bytes (a line
//   is too long whether or not its CRLF has arrived yet).
// - Memory grows with the bytes received, never with a length or count a
//   header announces: "$536870912\r\n" or "*100000000\r\n" reserve nothing.
//
//   parser.feed(bytes);             // or prepare(n) / commit(n) to read in place
//   while (auto r = parser.next()) {  // Result<std::optional<Reply>>
//     if (!*r) break;                // needs more bytes
//     use(**r);
//   }
#pragma once

#include <jeweler/redis/error.hpp>
#include <jeweler/redis/reply.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::redis::detail {

struct ParserLimits {
  std::size_t max_line = 64u * 1024u;              // bytes of a header/simple line, without CRLF
  std::size_t max_depth = 64;                      // nesting of aggregates
  std::size_t max_bulk = 512u * 1024u * 1024u;     // bytes of one bulk string
  std::size_t max_elements = 64u * 1024u * 1024u;  // elements of one aggregate
};

class RespParser {
 public:
  explicit RespParser(ParserLimits limits = {}) : limits_(limits) {}

  void feed(std::string_view bytes);
  /// Writable area of at least `n` bytes at the end of the buffer.
  char* prepare(std::size_t n);
  /// Marks `n` bytes written into the area returned by prepare().
  void commit(std::size_t n);

  /// The next complete top-level reply, std::nullopt when more bytes are
  /// needed, or errc::protocol_error. After an error the parser is unusable
  /// until reset() (the connection must be dropped).
  Result<std::optional<Reply>> next();

  void reset();
  /// Bytes received but not yet consumed.
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }
  /// Bytes the parser holds allocated (buffer + partial aggregates), for
  /// tests of the "memory follows bytes received" promise.
  std::size_t allocated() const noexcept;

 private:
  struct Frame {
    Reply value;
    std::size_t remaining;  // elements still expected
    bool attribute;         // RESP3 attribute: parsed then dropped
  };
  // Parses one header (and bulk payload) at pos_. Returns false when more
  // bytes are needed.
  Result<bool> step(std::optional<Reply>& completed);
  Result<bool> attach(Reply&& r, std::optional<Reply>& completed);

  ParserLimits limits_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::size_t write_end_ = 0;  // valid during prepare/commit
  std::vector<Frame> stack_;
  bool failed_ = false;
};

}  // namespace jeweler::redis::detail
