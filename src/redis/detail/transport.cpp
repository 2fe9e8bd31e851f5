#include <jeweler/redis/detail/transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace jeweler::redis::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

template <class Stream>
class StreamTransport final : public Transport {
 public:
  template <class... A>
  explicit StreamTransport(A&&... a) : stream_(std::forward<A>(a)...) {}

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, error_code& ec) override {
    auto [e, n] = co_await stream_.async_read_some(buf, use_tuple);
    ec = e;
    co_return n;
  }
  asio::awaitable<void> write_all(asio::const_buffer buf, error_code& ec) override {
    auto [e, n] = co_await asio::async_write(stream_, buf, use_tuple);
    (void)n;
    ec = e;
  }
  void close() noexcept override {
    error_code ignored;
    lowest().close(ignored);
  }
  Stream& stream() { return stream_; }

 private:
  auto& lowest() {
    if constexpr (requires { stream_.lowest_layer(); })
      return stream_.lowest_layer();
    else
      return stream_;
  }
  Stream stream_;
};

using TcpTransport = StreamTransport<tcp::socket>;
using UnixTransport = StreamTransport<asio::local::stream_protocol::socket>;
using TlsTransport = StreamTransport<asio::ssl::stream<tcp::socket>>;

// Runs `op` with a deadline; returns timed_out when the timer wins.
template <class Op>
asio::awaitable<error_code> with_deadline(asio::any_io_executor ex, std::chrono::milliseconds d,
                                          Op op) {
  asio::steady_timer timer(ex, d);
  auto result = co_await (op() || timer.async_wait(use_tuple));
  if (result.index() == 1) co_return asio::error::timed_out;
  co_return std::get<0>(std::get<0>(result));
}

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsConfig& tls, std::string& why) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  if (!tls.ca_file.empty()) {
    ctx->load_verify_file(tls.ca_file, ec);
    if (ec) {
      why = "cannot load REDIS_TLS_CA " + tls.ca_file + ": " + ec.message();
      return nullptr;
    }
  } else {
    ctx->set_default_verify_paths(ec);
  }
  if (!tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) {
      why = "cannot load REDIS_TLS_CERT " + tls.cert_file + ": " + ec.message();
      return nullptr;
    }
    ctx->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec) {
      why = "cannot load REDIS_TLS_KEY: " + ec.message();
      return nullptr;
    }
  }
  ctx->set_verify_mode(tls.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return ctx;
}

}  // namespace

asio::awaitable<Result<std::shared_ptr<Transport>>> connect_transport(asio::any_io_executor ex,
                                                                      const Config& cfg,
                                                                      const Endpoint& ep,
                                                                      std::string& why) {
  const auto unavailable = make_error_code(errc::unavailable);
  if (!cfg.unix_path.empty()) {
    auto t = std::make_shared<UnixTransport>(ex);
    auto ec = co_await with_deadline(ex, cfg.connect_timeout, [&]() {
      return t->stream().async_connect(asio::local::stream_protocol::endpoint(cfg.unix_path),
                                       use_tuple);
    });
    if (ec) {
      why = "connect unix:" + cfg.unix_path + ": " + ec.message();
      co_return unavailable;
    }
    co_return std::shared_ptr<Transport>(t);
  }

  tcp::resolver resolver(ex);
  tcp::resolver::results_type endpoints;
  {
    auto ec = co_await with_deadline(
        ex, cfg.connect_timeout, [&]() -> asio::awaitable<std::tuple<error_code>> {
          auto [e, r] =
              co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_tuple);
          endpoints = r;
          co_return std::tuple<error_code>(e);
        });
    if (ec) {
      why = "resolve " + ep.host + ": " + ec.message();
      co_return unavailable;
    }
  }

  std::shared_ptr<asio::ssl::context> ctx;
  if (cfg.tls.enabled) {
    ctx = make_tls_context(cfg.tls, why);
    if (!ctx) co_return make_error_code(errc::invalid_argument);
  }

  tcp::socket sock(ex);
  auto ec = co_await with_deadline(
      ex, cfg.connect_timeout, [&]() -> asio::awaitable<std::tuple<error_code>> {
        auto [e, endpoint] = co_await asio::async_connect(sock, endpoints, use_tuple);
        (void)endpoint;
        co_return std::tuple<error_code>(e);
      });
  if (ec) {
    why = "connect " + ep.host + ":" + std::to_string(ep.port) + ": " + ec.message();
    co_return unavailable;
  }
  sock.set_option(tcp::no_delay(true), ec);
  sock.set_option(asio::socket_base::keep_alive(true), ec);

  if (!ctx) co_return std::shared_ptr<Transport>(std::make_shared<TcpTransport>(std::move(sock)));

  // TLS: the stream keeps a reference to the context; keep the context alive
  // alongside the transport.
  struct Owned final : Transport {
    std::shared_ptr<asio::ssl::context> ctx;
    TlsTransport t;
    Owned(std::shared_ptr<asio::ssl::context> c, tcp::socket s)
        : ctx(std::move(c)), t(std::move(s), *ctx) {}
    asio::awaitable<std::size_t> read_some(asio::mutable_buffer b, error_code& e) override {
      return t.read_some(b, e);
    }
    asio::awaitable<void> write_all(asio::const_buffer b, error_code& e) override {
      return t.write_all(b, e);
    }
    void close() noexcept override { t.close(); }
  };
  auto owned = std::make_shared<Owned>(ctx, std::move(sock));
  auto& ssl = owned->t.stream();
  std::string name = cfg.tls.server_name.empty() ? ep.host : cfg.tls.server_name;
  ::SSL_set_tlsext_host_name(ssl.native_handle(), name.c_str());
  if (cfg.tls.verify_peer) ssl.set_verify_callback(asio::ssl::host_name_verification(name));
  ec = co_await with_deadline(ex, cfg.connect_timeout, [&]() {
    return ssl.async_handshake(asio::ssl::stream_base::client, use_tuple);
  });
  if (ec) {
    why = "TLS handshake with " + ep.host + ":" + std::to_string(ep.port) + ": " + ec.message();
    co_return unavailable;
  }
  co_return std::shared_ptr<Transport>(owned);
}

}  // namespace jeweler::redis::detail
