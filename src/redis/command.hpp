// Commands are encoded to RESP once, when built; the connection only copies
// bytes. A Pipeline is several commands written together whose replies come
// back as one vector, in order.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace jeweler::redis {

class Script;

class Command {
 public:
  Command() = default;
  Command(std::initializer_list<std::string_view> args) {
    for (auto a : args) arg(a);
  }
  /// Command(name, args...) with string-like or integral arguments.
  template <class... A>
  static Command make(std::string_view name, const A&... args) {
    Command c;
    c.arg(name);
    (c.add(args), ...);
    return c;
  }

  Command& arg(std::string_view a);
  Command& arg(std::int64_t v);
  Command& arg(double v);  // encoded with 17 significant digits
  template <class Range>
  Command& args(const Range& r) {
    for (const auto& a : r) add(a);
    return *this;
  }

  std::size_t size() const noexcept { return argc_; }
  bool empty() const noexcept { return argc_ == 0; }
  /// RESP bytes of the arguments, without the leading "*N\r\n".
  const std::string& body() const noexcept { return body_; }
  /// The first argument (command name), for logs and metrics.
  std::string_view name() const noexcept;
  /// Argument i (0 = the name); empty past the end.
  std::string_view at(std::size_t i) const noexcept;
  /// Complete RESP encoding ("*N\r\n" + body).
  std::string wire() const;
  /// For an EVALSHA of `s` (as built by Pipeline::add_eval / Client::eval):
  /// the same call as EVAL with the script's source (NOSCRIPT fallback).
  Command as_eval(const Script& s) const;

 private:
  template <class T>
  void add(const T& v) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>)
      arg(static_cast<std::int64_t>(v));
    else if constexpr (std::is_floating_point_v<T>)
      arg(static_cast<double>(v));
    else
      arg(std::string_view(v));
  }

  std::string body_;
  std::size_t argc_ = 0;
  std::size_t name_len_ = 0;
};

/// Several commands sent in one write; the replies come back in order.
class Pipeline {
 public:
  Pipeline& add(Command c) {
    commands_.push_back(std::move(c));
    scripts_.push_back(nullptr);
    return *this;
  }
  /// A command taken from another pipeline with its script (script_at).
  Pipeline& add(Command c, const Script* s) {
    commands_.push_back(std::move(c));
    scripts_.push_back(s);
    return *this;
  }
  /// EVALSHA of a registered script; Client::exec reruns it with EVAL when the
  /// server answers NOSCRIPT (scripts flushed, failover, restart).
  Pipeline& add_eval(const Script& s, std::initializer_list<std::string_view> keys,
                     std::initializer_list<std::string_view> args);
  Pipeline& add_eval(const Script& s, const std::vector<std::string>& keys,
                     const std::vector<std::string>& args);

  std::size_t size() const noexcept { return commands_.size(); }
  bool empty() const noexcept { return commands_.empty(); }
  const std::vector<Command>& commands() const noexcept { return commands_; }
  /// The script of command i when it was added with add_eval, else null.
  const Script* script_at(std::size_t i) const noexcept { return scripts_[i]; }

 private:
  std::vector<Command> commands_;
  std::vector<const Script*> scripts_;  // per command: the script of an EVALSHA, else null
};

/// The Redis Cluster hash slot (0..16383) of a key: CRC16 (XMODEM) of the key,
/// or of its hash tag (the text between the first '{' and the next '}', when
/// not empty), modulo 16384.
std::uint16_t key_slot(std::string_view key) noexcept;

}  // namespace jeweler::redis
