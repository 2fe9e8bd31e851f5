#include <jeweler/redis/error.hpp>

namespace jeweler::redis {

namespace {
class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "redis"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unavailable:
        return "redis unavailable: no connection within the deadline";
      case errc::timeout:
        return "redis command timed out";
      case errc::connection_lost:
        return "redis connection lost before the reply";
      case errc::protocol_error:
        return "redis protocol error";
      case errc::auth_failed:
        return "redis authentication failed";
      case errc::shutting_down:
        return "redis client is shutting down";
      case errc::queue_full:
        return "redis client queue full";
      case errc::server_error:
        return "redis error reply";
      case errc::unexpected_reply:
        return "unexpected redis reply type";
      case errc::invalid_argument:
        return "invalid argument for redis";
      case errc::not_connected:
        return "redis not connected (circuit open: the last connection attempt failed)";
    }
    return "unknown redis error";
  }
};
}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const Category c;
  return c;
}

bool is_unavailable(const boost::system::error_code& ec) noexcept {
  if (ec.category() != error_category()) return false;
  switch (static_cast<errc>(ec.value())) {
    case errc::unavailable:
    case errc::timeout:
    case errc::connection_lost:
    case errc::protocol_error:
    case errc::auth_failed:
    case errc::shutting_down:
    case errc::queue_full:
    case errc::not_connected:
      return true;
    default:
      return false;
  }
}

}  // namespace jeweler::redis
