// Plain HTTP request/response types (no Beast here): what handlers and
// middleware see. The server (server.cpp) converts to and from Beast.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include <any>
#include <chrono>
#include <cstdint>
#include <forward_list>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace jeweler::http {

namespace asio = boost::asio;

/// Case-insensitive header multimap (insertion order kept, as on the wire).
class Headers {
 public:
  /// First value of `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  /// Replaces every value of `name`.
  void set(std::string_view name, std::string value);
  /// Adds one more value (e.g. several Set-Cookie).
  void add(std::string_view name, std::string value);
  void erase(std::string_view name);
  const std::vector<std::pair<std::string, std::string>>& all() const noexcept { return items_; }
  bool empty() const noexcept { return items_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

bool iequals(std::string_view a, std::string_view b) noexcept;

/// `v` as JSON text, numbers in plain decimal notation ("65.4", not
/// Boost.JSON's "6.54E1"): what Response::json sends.
std::string to_json_text(const boost::json::value& v);
namespace detail {
/// Appends `s` as a JSON string literal (quotes and escapes).
void append_json_string(std::string& out, std::string_view s);
}  // namespace detail

/// Per-request typed storage for middleware results (the authenticated
/// session, rate-limit decision, ...): `ctx.set(Session{...})`,
/// `if (auto* s = ctx.get<Session>()) ...`. One value per type.
class RequestContext {
 public:
  template <class T>
  void set(T value) {
    if (auto* v = find(std::type_index(typeid(T))))
      *v = std::move(value);
    else
      values_.emplace_front(std::type_index(typeid(T)), std::move(value));
  }
  template <class T>
  T* get() {
    auto* v = find(std::type_index(typeid(T)));
    return v ? std::any_cast<T>(v) : nullptr;
  }
  template <class T>
  const T* get() const {
    auto* v = const_cast<RequestContext*>(this)->find(std::type_index(typeid(T)));
    return v ? std::any_cast<const T>(v) : nullptr;
  }

  // Who the request acts for, once authentication ran: used by the access
  // log and rate-limit keys. Never a token.
  std::string user_id;
  std::string tenant_id;
  std::string role;

 private:
  // A handful of values per request: a linear search beats hashing. A list
  // (no allocation while empty): a pointer from get() stays valid when a
  // value of another type is set.
  std::any* find(std::type_index t) {
    for (auto& [k, v] : values_)
      if (k == t) return &v;
    return nullptr;
  }
  std::forward_list<std::pair<std::type_index, std::any>> values_;
};

/// Per-route options, set at registration (Router::add).
struct RouteOptions {
  std::string name;                       // label for metrics/logs; default: the path template
  std::optional<std::size_t> body_limit;  // bytes; default: the server's BODY_LIMIT_BYTES
  bool rate_limited = false;              // the rate-limit slot acts on it
  bool auth_required = false;             // the authentication slot acts on it
  bool allow_unverified_2fa = false;      // reachable before 2FA verification
  std::string rate_limit_policy;          // extra limiter for this route ("invoice", "upload", ...)
  bool quiet_log = false;                 // access-logged at debug level (health probes, scrapes)
};

struct Route;  // router.hpp
struct Request;

/// A request body still on the wire (API.md section 1: a body is read only
/// once the request may have it). The server hands one to the Request when
/// the head announces a body; the pipeline reads it right before the route's
/// handler runs, after authentication and rate limiting (pipeline.cpp), so a
/// refused request never has its body read. Memory grows with the bytes
/// received, never with a declared length.
class BodyReader {
 public:
  /// Reads the whole body into req.body. 0 when done; otherwise the status
  /// the request must be answered with: 400 (malformed or incomplete), 408
  /// (not received in time), 413 (over the route's limit), 503 (the
  /// process-wide HTTP_BODY_MEMORY_BYTES budget is spent). The connection
  /// closes after such an answer.
  virtual asio::awaitable<unsigned> read(Request& req) = 0;

 protected:
  ~BodyReader() = default;
};

struct Request {
  std::string method;  // "GET", ... as sent (upper case for known methods)
  std::string target;  // raw request target: "/api/x%20y?a=1"
  std::string path;    // decoded path: "/api/x y"
  std::map<std::string, std::string, std::less<>> query;   // decoded; first value wins
  std::map<std::string, std::string, std::less<>> params;  // path parameters of the route
  Headers headers;
  /// The body, once read: empty while body_pending() (see read_body()).
  std::string body;
  /// Set by the server while the announced body is still on the wire.
  BodyReader* body_reader = nullptr;
  /// Body bytes received (for the access log; a handler may move `body` out).
  std::size_t bytes_in = 0;
  std::string peer_address;  // socket peer (IP), never X-Forwarded-For
  std::uint16_t peer_port = 0;
  std::string request_id;  // set by the request-id middleware
  unsigned version = 11;   // 10 or 11
  bool keep_alive = true;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  const Route* route = nullptr;  // matched route (null: 404/405)
  /// Set by the server/router when the request is refused before dispatch
  /// (404, 405, 413): the dispatcher answers it through the full chain.
  std::optional<unsigned> rejection;
  std::string allow;  // Allow header value for a 405
  RequestContext context;

  std::optional<std::string_view> header(std::string_view name) const { return headers.get(name); }
  /// A body was announced and has not been read yet.
  bool body_pending() const noexcept { return body_reader != nullptr; }
  /// Reads the pending body (no-op when there is none; at most once): 0 or
  /// the refusal status of BodyReader::read. The pipeline calls it before
  /// the route's handler; handlers find the body in `body`.
  asio::awaitable<unsigned> read_body();
  /// Route name for metrics/logs ("unmatched" when no route).
  std::string_view route_name() const noexcept;
};

/// An error to be rendered in API.md's shape by the error middleware, which
/// adds "requestId": {"error": code, "message": message, ...extra}.
struct ErrorBody {
  std::string code;
  std::string message;
  boost::json::object extra;
};

struct Response {
  unsigned status = 200;
  Headers headers;
  std::string body;
  std::optional<ErrorBody> error;  // rendered into body by the error middleware
  bool close = false;              // close the connection after this response

  /// 200 with a JSON body (`application/json; charset=utf-8`).
  static Response json(const boost::json::value& v, unsigned status = 200);
  static Response json_text(std::string body, unsigned status = 200);
  static Response text(std::string body, std::string content_type = "text/plain; charset=utf-8",
                       unsigned status = 200);
  static Response no_content() {
    Response r;
    r.status = 204;
    return r;
  }
  /// An API error: status + code (API.md section 1) + message.
  static Response make_error(unsigned status, std::string code, std::string message,
                             boost::json::object extra = {});
  /// Maps a service error code (jeweler::errc / redis errc) to an API error:
  /// unavailable -> 503 service_unavailable with Retry-After, not_found ->
  /// 404, ... anything unknown -> 500 internal (no detail leaked).
  static Response from_error(const boost::system::error_code& ec);
};

/// The default error code for a status (413 -> payload_too_large, ...).
std::string_view default_error_code(unsigned status) noexcept;
std::string_view reason_phrase(unsigned status) noexcept;

using Handler = std::function<asio::awaitable<Response>(Request&)>;

/// The rest of the chain, as given to a middleware. Cheap to copy (it refers
/// to a handler owned by the long-lived chain); call it at most once.
class Next {
 public:
  explicit Next(const Handler& h) noexcept : h_(&h) {}
  asio::awaitable<Response> operator()(Request& req) const { return (*h_)(req); }

 private:
  const Handler* h_;
};

using Middleware = std::function<asio::awaitable<Response>(Request&, Next)>;

/// `application/json`, parameters (`; charset=utf-8`) allowed, any case.
bool is_json_media_type(std::string_view content_type) noexcept;

/// Percent-decodes `s` ('+' as space when `plus_is_space`). nullopt for a
/// malformed escape or an encoded NUL.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

/// A fresh random request id (32 hex characters).
std::string generate_request_id();

/// Composes middleware around a handler: the first element runs first.
Handler chain(std::vector<Middleware> middleware, Handler last);

}  // namespace jeweler::http
