#include <jeweler/redis/detail/resp_parser.hpp>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace jeweler::redis::detail {

namespace {

constexpr std::size_t npos = std::string::npos;

bool parse_int64(std::string_view s, std::int64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  if (s == "inf" || s == "+inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "-inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "nan" || s == "-nan") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (s.empty() || s.size() > 400) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool is_big_number(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

void RespParser::feed(std::string_view bytes) {
  std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
  commit(bytes.size());
}

char* RespParser::prepare(std::size_t n) {
  // Compact consumed bytes when they dominate the buffer.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 64 * 1024)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  write_end_ = buf_.size();
  buf_.resize(write_end_ + n);
  return buf_.data() + write_end_;
}

void RespParser::commit(std::size_t n) {
  buf_.resize(write_end_ + n);
}

std::size_t RespParser::allocated() const noexcept {
  std::size_t n = buf_.capacity() + stack_.capacity() * sizeof(Frame);
  for (const Frame& f : stack_) n += f.value.elements.capacity() * sizeof(Reply);
  return n;
}

void RespParser::reset() {
  buf_.clear();
  pos_ = 0;
  stack_.clear();
  failed_ = false;
}

Result<std::optional<Reply>> RespParser::next() {
  if (failed_)
    return Result<std::optional<Reply>>(boost::system::in_place_error,
                                        make_error_code(errc::protocol_error));
  std::optional<Reply> completed;
  for (;;) {
    auto r = step(completed);
    if (!r) {
      failed_ = true;
      return Result<std::optional<Reply>>(boost::system::in_place_error, r.error());
    }
    if (completed) return completed;
    if (!*r) return std::optional<Reply>{};
  }
}

Result<bool> RespParser::attach(Reply&& r, std::optional<Reply>& completed) {
  for (;;) {
    if (stack_.empty()) {
      completed = std::move(r);
      return true;
    }
    Frame& top = stack_.back();
    top.value.elements.push_back(std::move(r));
    if (--top.remaining > 0) return true;
    Frame done = std::move(top);
    stack_.pop_back();
    if (done.attribute) return true;  // attributes annotate the next value; dropped
    r = std::move(done.value);
  }
}

Result<bool> RespParser::step(std::optional<Reply>& completed) {
  const Result<bool> proto(boost::system::in_place_error, make_error_code(errc::protocol_error));
  std::string_view data(buf_.data() + pos_, buf_.size() - pos_);
  if (data.empty()) return false;
  auto eol = data.find("\r\n");
  if (eol == npos) {
    // The line is at least this long once its CRLF arrives (a trailing '\r'
    // may be the CRLF's first half): judged now, the same verdict as later.
    std::size_t at_least = data.size() - (data.back() == '\r' ? 1 : 0);
    if (at_least > limits_.max_line + 1) return proto;
    return false;
  }
  // The limit holds for the line however it arrived (type byte excluded).
  if (eol > limits_.max_line + 1) return proto;
  char type = data[0];
  std::string_view line = data.substr(1, eol - 1);
  std::size_t header_len = eol + 2;

  auto consume = [&](std::size_t n) { pos_ += n; };

  switch (type) {
    case '+':
    case '-': {
      Reply r = Reply::make_string(std::string(line),
                                   type == '+' ? ReplyType::simple_string : ReplyType::error);
      consume(header_len);
      return attach(std::move(r), completed);
    }
    case ':': {
      std::int64_t v;
      if (!parse_int64(line, v)) return proto;
      consume(header_len);
      return attach(Reply::make_integer(v), completed);
    }
    case ',': {
      Reply r;
      r.type = ReplyType::double_number;
      if (!parse_double(line, r.number)) return proto;
      consume(header_len);
      return attach(std::move(r), completed);
    }
    case '#': {
      if (line != "t" && line != "f") return proto;
      Reply r;
      r.type = ReplyType::boolean;
      r.integer = line == "t" ? 1 : 0;
      consume(header_len);
      return attach(std::move(r), completed);
    }
    case '_': {
      if (!line.empty()) return proto;
      consume(header_len);
      return attach(Reply::make_nil(), completed);
    }
    case '(': {
      if (!is_big_number(line)) return proto;
      Reply r = Reply::make_string(std::string(line), ReplyType::big_number);
      consume(header_len);
      return attach(std::move(r), completed);
    }
    case '$':
    case '!':
    case '=': {
      std::int64_t len;
      if (!parse_int64(line, len)) return proto;
      if (len == -1 && type == '$') {  // RESP2 null bulk
        consume(header_len);
        return attach(Reply::make_nil(), completed);
      }
      if (len < 0 || static_cast<std::uint64_t>(len) > limits_.max_bulk) return proto;
      std::size_t n = static_cast<std::size_t>(len);
      // No reserve() for the announced length: the buffer grows with the
      // bytes that actually arrive (geometrically, in prepare/commit).
      if (data.size() < header_len + n + 2) return false;
      if (data[header_len + n] != '\r' || data[header_len + n + 1] != '\n') return proto;
      std::string_view payload = data.substr(header_len, n);
      ReplyType t = type == '$'   ? ReplyType::bulk_string
                    : type == '!' ? ReplyType::error
                                  : ReplyType::verbatim_string;
      if (t == ReplyType::verbatim_string) {
        // "txt:" / "mkd:" format prefix
        if (n < 4 || payload[3] != ':') return proto;
        payload.remove_prefix(4);
      }
      Reply r = Reply::make_string(std::string(payload), t);
      consume(header_len + n + 2);
      return attach(std::move(r), completed);
    }
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
      std::int64_t count;
      if (!parse_int64(line, count)) return proto;
      if (count == -1 && type == '*') {  // RESP2 null array
        consume(header_len);
        return attach(Reply::make_nil(), completed);
      }
      if (count < 0) return proto;
      std::uint64_t elements = static_cast<std::uint64_t>(count);
      if (type == '%' || type == '|') elements *= 2;
      if (elements > limits_.max_elements) return proto;
      if (stack_.size() >= limits_.max_depth) return proto;
      Reply r;
      r.type = type == '*'   ? ReplyType::array
               : type == '%' ? ReplyType::map
               : type == '~' ? ReplyType::set
               : type == '>' ? ReplyType::push
                             : ReplyType::map;
      consume(header_len);
      if (elements == 0) {
        if (type == '|') return true;  // empty attribute: nothing to attach
        return attach(std::move(r), completed);
      }
      // The count is untrusted: an outermost aggregate reserves only what the
      // bytes already buffered can hold (an element takes at least 3 bytes,
      // "_\r\n"), so memory follows the bytes received and a complete reply
      // still gets one allocation. Nested ones grow as elements arrive (they
      // would all count the same buffered bytes again).
      if (stack_.empty()) {
        std::uint64_t room = (data.size() - header_len) / 3;
        r.elements.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(elements, room)));
      }
      stack_.push_back(Frame{std::move(r), static_cast<std::size_t>(elements), type == '|'});
      return true;
    }
    default:
      return proto;
  }
}

}  // namespace jeweler::redis::detail
