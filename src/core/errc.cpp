#include <jeweler/core/errc.hpp>
#include <jeweler/redis/error.hpp>

namespace jeweler {

namespace {
class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "jeweler"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unavailable:
        return "service unavailable";
      case errc::deadline_exceeded:
        return "deadline exceeded";
      case errc::not_found:
        return "not found";
      case errc::invalid_argument:
        return "invalid argument";
      case errc::conflict:
        return "conflict";
      case errc::rate_limited:
        return "rate limited";
      case errc::corrupt_data:
        return "corrupt data";
      case errc::internal:
        return "internal error";
    }
    return "unknown error";
  }
};
}  // namespace

const boost::system::error_category& jeweler_category() noexcept {
  static const Category c;
  return c;
}

bool is_unavailable(const boost::system::error_code& ec) noexcept {
  if (ec.category() == jeweler_category())
    return ec.value() == static_cast<int>(errc::unavailable) ||
           ec.value() == static_cast<int>(errc::deadline_exceeded);
  return redis::is_unavailable(ec);
}

}  // namespace jeweler
