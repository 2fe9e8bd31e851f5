#include "fault_proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <list>
#include <thread>

namespace jeweler::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string_view to_string(Fault f) noexcept {
  switch (f) {
    case Fault::none:
      return "none";
    case Fault::delay:
      return "delay";
    case Fault::drop:
      return "drop";
    case Fault::blackhole:
      return "blackhole";
    case Fault::cut:
      return "cut";
    case Fault::reset:
      return "reset";
  }
  return "?";
}

namespace {

struct Session {
  explicit Session(asio::io_context& io) : client(io), upstream(io) {}
  tcp::socket client;
  tcp::socket upstream;
  bool open = true;
  bool swallowing = false;  // saw a blackhole: stays dead (as a lost route would)

  void close(bool rst) {
    if (!open) return;
    open = false;
    error_code ec;
    for (auto* s : {&client, &upstream}) {
      if (!s->is_open()) continue;
      if (rst)
        s->set_option(asio::socket_base::linger(true, 0), ec);
      else
        s->shutdown(tcp::socket::shutdown_both, ec);
      s->close(ec);
    }
  }
};

}  // namespace

struct FaultProxy::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::uint16_t upstream_port = 0;
  std::uint16_t port = 0;
  std::atomic<Fault> fault{Fault::none};
  std::atomic<std::int64_t> delay_ms{0};
  std::atomic<std::uint64_t> accepted{0}, open{0}, to_client{0};
  std::list<std::weak_ptr<Session>> sessions;  // io thread only
  std::thread thread;

  void apply_to_open(Fault f) {
    if (f != Fault::drop && f != Fault::reset) return;
    for (auto& w : sessions)
      if (auto s = w.lock()) s->close(f == Fault::reset);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      ++accepted;
      auto s = std::make_shared<Session>(io);
      s->client = std::move(sock);
      sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
      sessions.push_back(s);
      asio::co_spawn(io, serve(s), asio::detached);
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<Session> s) {
    ++open;
    const Fault f = fault.load();
    if (f == Fault::drop || f == Fault::reset) {
      s->close(f == Fault::reset);
      --open;
      co_return;
    }
    if (f == Fault::blackhole) s->swallowing = true;
    auto [ec] = co_await s->upstream.async_connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), upstream_port), use_tuple);
    if (ec) {
      s->close(true);  // the server is not there: the client sees a reset
      --open;
      co_return;
    }
    asio::co_spawn(io, pump(s, false), asio::detached);
    co_await pump(s, true);
    --open;
  }

  // One direction; `down` = server to client.
  asio::awaitable<void> pump(std::shared_ptr<Session> s, bool down) {
    tcp::socket& from = down ? s->upstream : s->client;
    tcp::socket& to = down ? s->client : s->upstream;
    std::array<char, 16 * 1024> buf;
    asio::steady_timer timer(io);
    while (s->open) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), use_tuple);
      if (ec || !s->open) break;
      const Fault f = fault.load();
      if (f == Fault::blackhole) s->swallowing = true;
      if (s->swallowing) continue;  // read and thrown away
      if (f == Fault::drop || f == Fault::reset) {
        s->close(f == Fault::reset);
        break;
      }
      std::size_t len = n;
      bool cut = false;
      if (f == Fault::cut && down) {
        len = n / 2;  // a reply frame cut in the middle
        cut = true;
      }
      if (f == Fault::delay) {
        timer.expires_after(std::chrono::milliseconds(delay_ms.load()));
        co_await timer.async_wait(use_tuple);
        if (!s->open) break;
      }
      if (len > 0) {
        auto [wec, w] = co_await asio::async_write(to, asio::buffer(buf.data(), len), use_tuple);
        if (down) to_client += w;
        if (wec) break;
      }
      if (cut) break;
    }
    s->close(false);
  }
};

FaultProxy::FaultProxy(std::uint16_t upstream_port) : impl_(std::make_shared<Impl>()) {
  auto& I = *impl_;
  I.upstream_port = upstream_port;
  tcp::endpoint ep(asio::ip::address_v4::loopback(), 0);
  I.acceptor.open(ep.protocol());
  I.acceptor.set_option(tcp::acceptor::reuse_address(true));
  I.acceptor.bind(ep);
  I.acceptor.listen();
  I.port = I.acceptor.local_endpoint().port();
  asio::co_spawn(I.io, I.accept_loop(), asio::detached);
  I.thread = std::thread([&I] { I.io.run(); });
}

FaultProxy::~FaultProxy() {
  auto& I = *impl_;
  asio::post(I.io, [&I] {
    error_code ec;
    I.acceptor.close(ec);
    I.apply_to_open(Fault::reset);
    I.io.stop();
  });
  I.thread.join();
}

std::uint16_t FaultProxy::port() const noexcept {
  return impl_->port;
}

void FaultProxy::set(Fault f, std::chrono::milliseconds delay) {
  auto* I = impl_.get();
  I->delay_ms.store(delay.count());
  I->fault.store(f);
  asio::post(I->io, [I, f] { I->apply_to_open(f); });
}

Fault FaultProxy::fault() const noexcept {
  return impl_->fault.load();
}
std::uint64_t FaultProxy::accepted() const noexcept {
  return impl_->accepted.load();
}
std::uint64_t FaultProxy::open_connections() const noexcept {
  return impl_->open.load();
}
std::uint64_t FaultProxy::bytes_to_client() const noexcept {
  return impl_->to_client.load();
}

}  // namespace jeweler::test
