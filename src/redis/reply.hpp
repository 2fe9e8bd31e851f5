// A parsed RESP2/RESP3 reply. One flat struct rather than a variant: cheap to
// move, easy to inspect in tests. Maps keep their pairs in `elements` as
// k0, v0, k1, v1, ... in the order the server sent them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jeweler::redis {

enum class ReplyType : std::uint8_t {
  nil,              // RESP2 $-1 / *-1, RESP3 _
  simple_string,    // +OK
  error,            // -ERR ..., RESP3 blob error !
  integer,          // :
  double_number,    // , (RESP3)
  boolean,          // # (RESP3)
  bulk_string,      // $
  verbatim_string,  // = (RESP3); str holds the text without the "txt:" prefix
  big_number,       // ( (RESP3); str holds the digits
  array,            // *
  map,              // % (RESP3)
  set,              // ~ (RESP3)
  push,             // > (RESP3 out-of-band)
};

struct Reply {
  ReplyType type = ReplyType::nil;
  std::string str;              // strings, errors, big numbers
  std::int64_t integer = 0;     // integer; boolean as 0/1
  double number = 0;            // double
  std::vector<Reply> elements;  // array, set, push; map as k,v,k,v...

  bool is_nil() const noexcept { return type == ReplyType::nil; }
  bool is_error() const noexcept { return type == ReplyType::error; }
  bool is_string() const noexcept {
    return type == ReplyType::simple_string || type == ReplyType::bulk_string ||
           type == ReplyType::verbatim_string;
  }
  bool is_integer() const noexcept { return type == ReplyType::integer; }
  /// array, set or push: anything with a list of elements (maps excluded).
  bool is_array() const noexcept {
    return type == ReplyType::array || type == ReplyType::set || type == ReplyType::push;
  }
  bool is_map() const noexcept { return type == ReplyType::map; }
  /// For errors, the first word: "ERR", "NOSCRIPT", "WRONGTYPE", "MOVED", ...
  std::string_view error_code() const noexcept;
  /// Integer value of an integer reply, or of a string holding a decimal integer.
  std::optional<std::int64_t> to_integer() const noexcept;
  /// Field/value pairs of a map reply or of a flat RESP2 array (HGETALL);
  /// empty when the reply is neither.
  std::vector<std::pair<std::string_view, const Reply*>> pairs() const;

  static Reply make_nil() { return {}; }
  static Reply make_string(std::string s, ReplyType t = ReplyType::bulk_string) {
    Reply r;
    r.type = t;
    r.str = std::move(s);
    return r;
  }
  static Reply make_error(std::string s) { return make_string(std::move(s), ReplyType::error); }
  static Reply make_integer(std::int64_t v) {
    Reply r;
    r.type = ReplyType::integer;
    r.integer = v;
    return r;
  }

  friend bool operator==(const Reply&, const Reply&) = default;
};

/// Human-readable rendering for logs and test failures (truncated strings).
std::string to_debug_string(const Reply& r);

}  // namespace jeweler::redis
