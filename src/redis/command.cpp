#include <jeweler/redis/command.hpp>
#include <jeweler/redis/script.hpp>

#include <charconv>
#include <cstdio>

namespace jeweler::redis {

Command& Command::arg(std::string_view a) {
  char len[24];
  auto [p, ec] = std::to_chars(len, len + sizeof len, a.size());
  (void)ec;
  // One allocation for most commands: room for a few more arguments up
  // front, then the string's own geometric growth.
  if (argc_ == 0) body_.reserve(a.size() + 240);
  body_.reserve(body_.size() + a.size() + 16);
  body_ += '$';
  body_.append(len, p);
  body_ += "\r\n";
  body_.append(a);
  body_ += "\r\n";
  if (argc_ == 0) name_len_ = a.size();
  ++argc_;
  return *this;
}

Command& Command::arg(std::int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  return arg(std::string_view(buf, static_cast<std::size_t>(p - buf)));
}

Command& Command::arg(double v) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.17g", v);
  return arg(std::string_view(buf, static_cast<std::size_t>(n)));
}

std::string_view Command::name() const noexcept {
  if (argc_ == 0) return {};
  // body_ starts with "$<len>\r\n<name>\r\n"
  auto pos = body_.find("\r\n");
  return std::string_view(body_).substr(pos + 2, name_len_);
}

std::string_view Command::at(std::size_t i) const noexcept {
  std::string_view b(body_);
  std::size_t pos = 0;
  for (std::size_t k = 0; k < argc_ && pos < b.size(); ++k) {
    // "$<len>\r\n<bytes>\r\n"
    const auto eol = b.find("\r\n", pos);
    if (eol == std::string_view::npos || b[pos] != '$') return {};
    std::size_t len = 0;
    std::from_chars(b.data() + pos + 1, b.data() + eol, len);
    if (k == i) return b.substr(eol + 2, len);
    pos = eol + 2 + len + 2;
  }
  return {};
}

std::uint16_t key_slot(std::string_view key) noexcept {
  if (auto open = key.find('{'); open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  std::uint16_t crc = 0;  // CRC16/XMODEM: polynomial 0x1021, initial value 0
  for (unsigned char ch : key) {
    crc = static_cast<std::uint16_t>(crc ^ (ch << 8));
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc & 16383;
}

std::string Command::wire() const {
  std::string out;
  out.reserve(body_.size() + 16);
  out.push_back('*');
  out.append(std::to_string(argc_));
  out.append("\r\n", 2);
  out.append(body_);
  return out;
}

namespace {
template <class Keys, class Args>
Command make_evalsha(const Script& s, const Keys& keys, const Args& args) {
  Command c;
  c.arg("EVALSHA").arg(s.sha1()).arg(static_cast<std::int64_t>(keys.size()));
  for (const auto& k : keys) c.arg(std::string_view(k));
  for (const auto& a : args) c.arg(std::string_view(a));
  return c;
}
}  // namespace

Pipeline& Pipeline::add_eval(const Script& s, std::initializer_list<std::string_view> keys,
                             std::initializer_list<std::string_view> args) {
  commands_.push_back(make_evalsha(s, keys, args));
  scripts_.push_back(&s);
  return *this;
}

Pipeline& Pipeline::add_eval(const Script& s, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  commands_.push_back(make_evalsha(s, keys, args));
  scripts_.push_back(&s);
  return *this;
}

}  // namespace jeweler::redis

namespace jeweler::redis {

Command Command::as_eval(const Script& s) const {
  // body_ = "$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n" + rest
  constexpr std::size_t prefix = 13 + 5 + 40 + 2;
  Command c;
  c.arg("EVAL").arg(s.source());
  if (body_.size() >= prefix) c.body_.append(body_, prefix, std::string::npos);
  c.argc_ = argc_;
  return c;
}

}  // namespace jeweler::redis
