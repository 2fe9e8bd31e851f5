// Error codes of the Redis layer. Services map them to what the caller should
// do next: `unavailable`/`timeout` are retryable, the rest are not.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace jeweler::redis {

enum class errc {
  unavailable = 1,   // no connection to Redis (down, reconnecting) within the deadline
  timeout,           // the command was sent but no reply came within its timeout
  connection_lost,   // the connection dropped after the command was written
  protocol_error,    // the server sent bytes that are not RESP
  auth_failed,       // AUTH/HELLO rejected (wrong password / ACL user)
  shutting_down,     // the client is closing and takes no new commands
  queue_full,        // too many commands waiting (bounded queue)
  server_error,      // Redis answered with an error reply (see Reply::error_code)
  unexpected_reply,  // the reply has a type the caller cannot use
  invalid_argument,  // the caller passed something Redis cannot take
  not_connected,     // circuit open: the last connection attempt failed, so the
                     // command fails at once instead of waiting for its deadline
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// True for errors that mean "Redis could not be reached": the server maps
/// them to 503 and services must never read them as "not found".
bool is_unavailable(const boost::system::error_code& ec) noexcept;

template <class T>
using Result = boost::system::result<T>;

/// A configuration value that cannot be used. what() names the variable.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace jeweler::redis

namespace boost::system {
template <>
struct is_error_code_enum<jeweler::redis::errc> : std::true_type {};
}  // namespace boost::system
