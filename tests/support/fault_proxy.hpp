// A fault-injecting TCP proxy for tests: it sits between a client and a real
// redis-server (or any TCP server), runs on its own thread inside the test
// process, and can be switched between faults at run time:
//
//   test::FaultProxy proxy(srv.port());      // listens on 127.0.0.1:proxy.port()
//   auto cfg = srv.config();
//   cfg.endpoint.port = proxy.port();        // the client talks to the proxy
//   proxy.set(test::Fault::blackhole);       // ... the server "freezes"
//   proxy.set(test::Fault::none);            // ... and comes back
//
// Faults (each applies to the connections already open and to new ones):
//   none       forward both ways
//   delay      every chunk, either way, is forwarded `delay` late (in order)
//   drop       connections are closed (FIN): open ones at once, new ones on accept
//   blackhole  connections are accepted, bytes are read and thrown away, nothing
//              is forwarded, nothing answered (a frozen server or a lost route)
//   cut        the next reply chunk of each connection is forwarded only in
//              part (a frame cut in the middle), then the connection is closed
//   reset      connections are reset (RST): open ones at once, new ones on accept
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

namespace jeweler::test {

enum class Fault { none, delay, drop, blackhole, cut, reset };
std::string_view to_string(Fault f) noexcept;

class FaultProxy {
 public:
  /// Proxies 127.0.0.1:port() to 127.0.0.1:upstream_port.
  explicit FaultProxy(std::uint16_t upstream_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::uint16_t port() const noexcept;
  /// Thread-safe; takes effect on open connections too.
  void set(Fault f, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  Fault fault() const noexcept;
  /// Connections accepted so far, and open now.
  std::uint64_t accepted() const noexcept;
  std::uint64_t open_connections() const noexcept;
  /// Bytes forwarded from the server to clients so far.
  std::uint64_t bytes_to_client() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace jeweler::test
