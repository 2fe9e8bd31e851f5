#include <jeweler/core/errc.hpp>
#include <jeweler/http/router.hpp>
#include <jeweler/http/types.hpp>
#include <jeweler/redis/error.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <random>

namespace jeweler::http {

namespace {
char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

void Headers::set(std::string_view name, std::string value) {
  erase(name);
  items_.emplace_back(std::string(name), std::move(value));
}

void Headers::add(std::string_view name, std::string value) {
  items_.emplace_back(std::string(name), std::move(value));
}

void Headers::erase(std::string_view name) {
  std::erase_if(items_, [&](const auto& kv) { return iequals(kv.first, name); });
}

bool is_json_media_type(std::string_view ct) noexcept {
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t')) ct.remove_prefix(1);
  while (!ct.empty() && (ct.back() == ' ' || ct.back() == '\t')) ct.remove_suffix(1);
  return iequals(ct, "application/json");
}

asio::awaitable<unsigned> Request::read_body() {
  if (!body_reader) co_return 0u;
  BodyReader* r = body_reader;
  body_reader = nullptr;
  co_return co_await r->read(*this);
}

std::string_view Request::route_name() const noexcept {
  if (route) return route->options.name;
  return "unmatched";
}

Response Response::json_text(std::string body, unsigned status) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/json; charset=utf-8");
  r.body = std::move(body);
  return r;
}

Response Response::json(const boost::json::value& v, unsigned status) {
  return json_text(to_json_text(v), status);
}

Response Response::text(std::string body, std::string content_type, unsigned status) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

Response Response::make_error(unsigned status, std::string code, std::string message,
                              boost::json::object extra) {
  Response r;
  r.status = status;
  r.error = ErrorBody{std::move(code), std::move(message), std::move(extra)};
  return r;
}

Response Response::from_error(const boost::system::error_code& ec) {
  if (jeweler::is_unavailable(ec)) {
    auto r = make_error(503, "service_unavailable",
                        "A backing service is temporarily unavailable, retry shortly");
    r.headers.set("Retry-After", "1");
    return r;
  }
  if (ec == make_error_code(jeweler::errc::not_found))
    return make_error(404, "not_found", "Not found");
  if (ec == make_error_code(jeweler::errc::invalid_argument))
    return make_error(400, "bad_request", "Invalid request");
  if (ec == make_error_code(jeweler::errc::conflict))
    return make_error(409, "conflict", "The current state forbids this change");
  if (ec == make_error_code(jeweler::errc::rate_limited))
    return make_error(429, "rate_limited", "Too many requests");
  return make_error(500, "internal", "Internal server error");
}

std::string_view default_error_code(unsigned status) noexcept {
  switch (status) {
    case 400:
    case 408:
    case 431:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    case 422:
      return "validation_failed";
    case 429:
      return "rate_limited";
    case 503:
      return "service_unavailable";
    case 501:  // a transfer coding the server does not implement: the request's fault
      return "bad_request";
    default:
      return status >= 500 ? "internal" : "bad_request";
  }
}

std::string_view reason_phrase(unsigned status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return std::nullopt;
      out += d;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string generate_request_id() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  static constexpr char digits[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = rng();
    for (int i = 0; i < 16; ++i) {
      id[half * 16 + i] = digits[v & 15];
      v >>= 4;
    }
  }
  return id;
}

Handler chain(std::vector<Middleware> middleware, Handler last) {
  Handler next = std::move(last);
  for (auto it = middleware.rbegin(); it != middleware.rend(); ++it) {
    next = [mw = std::move(*it), inner = std::move(next)](
               Request& req) -> asio::awaitable<Response> { return mw(req, Next(inner)); };
  }
  return next;
}

}  // namespace jeweler::http
