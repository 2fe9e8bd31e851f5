// Service-level error codes, chosen by what the caller should do next
// (Abseil status style). The HTTP error middleware maps them to statuses;
// redis::errc values that mean "Redis unreachable" map like `unavailable`.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace jeweler {

enum class errc {
  unavailable = 1,    // dependency (Redis) unreachable: retry later -> 503
  deadline_exceeded,  // took too long -> 503/504
  not_found,          // -> 404
  invalid_argument,   // bad input -> 400/422
  conflict,           // state forbids the change -> 409
  rate_limited,       // -> 429
  corrupt_data,       // stored data unreadable: logged, treated as absent by callers
  internal,           // bug or unexpected reply -> 500 (never leaked)
};

const boost::system::error_category& jeweler_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), jeweler_category()};
}

/// True for jeweler::errc::unavailable/deadline_exceeded and for every
/// redis error that means Redis could not be reached or did not answer.
bool is_unavailable(const boost::system::error_code& ec) noexcept;

template <class T>
using Result = boost::system::result<T>;

}  // namespace jeweler

namespace boost::system {
template <>
struct is_error_code_enum<jeweler::errc> : std::true_type {};
}  // namespace boost::system
