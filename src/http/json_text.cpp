// JSON text for responses: Boost.JSON's serializer writes every double in
// exponent form ("6.54E1", "5E-1", "0E0"); clients and API.md expect plain
// decimals ("65.4", "0.5", "0"). Same document otherwise.
#include <jeweler/http/types.hpp>

#include <fmt/format.h>
#include <boost/json/value.hpp>

#include <cmath>
#include <iterator>

namespace jeweler::http {

namespace detail {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xf];
          out += hex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace detail

namespace {

void append_value(std::string& out, const boost::json::value& v) {
  namespace json = boost::json;
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      break;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      fmt::format_to(std::back_inserter(out), "{}", v.get_int64());
      break;
    case json::kind::uint64:
      fmt::format_to(std::back_inserter(out), "{}", v.get_uint64());
      break;
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";  // JSON has no NaN or infinity
        break;
      }
      const std::size_t mark = out.size();
      fmt::format_to(std::back_inserter(out), "{}", d);  // shortest text that reads back as d
      // Still a double when read back: "0.0", not "0".
      if (out.find_first_of(".e", mark) == std::string::npos) out += ".0";
      break;
    }
    case json::kind::string:
      detail::append_json_string(out, v.get_string());
      break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        append_value(out, e);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        detail::append_json_string(out, kv.key());
        out += ':';
        append_value(out, kv.value());
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string to_json_text(const boost::json::value& v) {
  std::string out;
  out.reserve(256);
  append_value(out, v);
  return out;
}

}  // namespace jeweler::http
