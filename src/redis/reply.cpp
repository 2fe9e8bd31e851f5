#include <jeweler/redis/reply.hpp>

#include <charconv>

namespace jeweler::redis {

std::string_view Reply::error_code() const noexcept {
  if (type != ReplyType::error) return {};
  std::string_view s = str;
  auto sp = s.find(' ');
  return sp == std::string_view::npos ? s : s.substr(0, sp);
}

std::optional<std::int64_t> Reply::to_integer() const noexcept {
  if (type == ReplyType::integer || type == ReplyType::boolean) return integer;
  if (!is_string() && type != ReplyType::big_number) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(str.data(), str.data() + str.size(), v);
  if (ec != std::errc() || p != str.data() + str.size() || str.empty()) return std::nullopt;
  return v;
}

std::vector<std::pair<std::string_view, const Reply*>> Reply::pairs() const {
  std::vector<std::pair<std::string_view, const Reply*>> out;
  if (type != ReplyType::map && type != ReplyType::array) return out;
  if (elements.size() % 2 != 0) return out;
  out.reserve(elements.size() / 2);
  for (std::size_t i = 0; i + 1 < elements.size(); i += 2)
    out.emplace_back(std::string_view(elements[i].str), &elements[i + 1]);
  return out;
}

namespace {
void render(const Reply& r, std::string& out, int depth) {
  auto quoted = [&](std::string_view s) {
    out += '"';
    out.append(s.substr(0, 200));
    if (s.size() > 200) out += "...";
    out += '"';
  };
  switch (r.type) {
    case ReplyType::nil:
      out += "(nil)";
      break;
    case ReplyType::simple_string:
      out += r.str;
      break;
    case ReplyType::error:
      out += "(error) ";
      out += r.str;
      break;
    case ReplyType::integer:
      out += "(integer) " + std::to_string(r.integer);
      break;
    case ReplyType::double_number:
      out += "(double) " + std::to_string(r.number);
      break;
    case ReplyType::boolean:
      out += r.integer ? "(true)" : "(false)";
      break;
    case ReplyType::bulk_string:
    case ReplyType::verbatim_string:
      quoted(r.str);
      break;
    case ReplyType::big_number:
      out += "(bignum) " + r.str;
      break;
    case ReplyType::array:
    case ReplyType::map:
    case ReplyType::set:
    case ReplyType::push: {
      const char* open = r.type == ReplyType::map    ? "{"
                         : r.type == ReplyType::set  ? "~["
                         : r.type == ReplyType::push ? ">["
                                                     : "[";
      out += open;
      if (depth > 8) {
        out += "...";
      } else {
        for (std::size_t i = 0; i < r.elements.size(); ++i) {
          if (i) out += r.type == ReplyType::map && i % 2 == 1 ? ": " : ", ";
          render(r.elements[i], out, depth + 1);
        }
      }
      out += r.type == ReplyType::map ? "}" : "]";
      break;
    }
  }
}
}  // namespace

std::string to_debug_string(const Reply& r) {
  std::string out;
  render(r, out, 0);
  return out;
}

}  // namespace jeweler::redis
