// A byte stream to one Redis server: TCP, TLS over TCP, or a unix socket.
// The client does I/O only through this interface.
#pragma once

#include <jeweler/redis/config.hpp>
#include <jeweler/redis/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include <memory>
#include <string>

namespace jeweler::redis::detail {

class Transport {
 public:
  virtual ~Transport() = default;
  /// Reads some bytes; 0 with ec set on error or EOF.
  virtual boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer buf,
                                                        boost::system::error_code& ec) = 0;
  /// Writes all bytes.
  virtual boost::asio::awaitable<void> write_all(boost::asio::const_buffer buf,
                                                 boost::system::error_code& ec) = 0;
  /// Closes the socket; pending operations complete with an error.
  virtual void close() noexcept = 0;
};

/// Connects (resolve, TCP connect, TLS handshake) to `ep` or the unix socket
/// of `cfg`, within cfg.connect_timeout. Throws nothing: errors are returned
/// with a human-readable reason in `why` (never containing secrets).
boost::asio::awaitable<Result<std::shared_ptr<Transport>>> connect_transport(
    boost::asio::any_io_executor ex, const Config& cfg, const Endpoint& ep, std::string& why);

}  // namespace jeweler::redis::detail
