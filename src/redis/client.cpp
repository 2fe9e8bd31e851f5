#include <jeweler/redis/client.hpp>
#include <jeweler/redis/detail/cluster_client.hpp>
#include <jeweler/redis/detail/standalone_client.hpp>

namespace jeweler::redis {

std::string_view to_string(State s) noexcept {
  switch (s) {
    case State::connecting:
      return "connecting";
    case State::ready:
      return "ready";
    case State::reconnecting:
      return "reconnecting";
    case State::closed:
      return "closed";
  }
  return "unknown";
}

namespace {

bool is_noscript(const Reply& r) {
  return r.is_error() && r.error_code() == "NOSCRIPT";
}

class StandaloneHandle final : public Client {
 public:
  StandaloneHandle(asio::any_io_executor ex, Config cfg)
      : impl_(std::make_shared<detail::StandaloneClient>(ex, std::move(cfg))) {
    impl_->start();
  }
  ~StandaloneHandle() override { impl_->stop(); }

  asio::awaitable<Result<Reply>> exec(Command cmd, ExecOptions opts) override {
    if (cmd.empty()) co_return make_error_code(errc::invalid_argument);
    std::string wire;
    wire.reserve(cmd.body().size() + 16);
    wire += '*';
    wire += std::to_string(cmd.size());
    wire += "\r\n";
    wire += cmd.body();
    auto r = co_await impl_->run_request(std::move(wire), 1, cmd.name(), opts);
    if (!r) co_return r.error();
    co_return std::move(r->front());
  }

  asio::awaitable<Result<std::vector<Reply>>> exec(Pipeline p, ExecOptions opts) override {
    if (p.empty()) co_return std::vector<Reply>{};
    std::string wire;
    for (const auto& c : p.commands()) {
      if (c.empty()) co_return make_error_code(errc::invalid_argument);
      wire += '*';
      wire += std::to_string(c.size());
      wire += "\r\n";
      wire += c.body();
    }
    auto r =
        co_await impl_->run_request(std::move(wire), p.size(), p.commands().front().name(), opts);
    if (!r) co_return r.error();
    // Scripts unknown to the server (flushed, failover, restart): run them
    // again with EVAL, which also caches them for the next EVALSHA.
    Pipeline retry;
    std::vector<std::size_t> where;
    for (std::size_t i = 0; i < r->size(); ++i) {
      const Script* s = p.script_at(i);
      if (s && is_noscript((*r)[i])) {
        retry.add(p.commands()[i].as_eval(*s));
        where.push_back(i);
      }
    }
    if (!where.empty()) {
      auto again = co_await exec(std::move(retry), opts);
      if (!again) co_return again.error();
      for (std::size_t k = 0; k < where.size(); ++k) (*r)[where[k]] = std::move((*again)[k]);
    }
    co_return std::move(*r);
  }

  Health health() const override { return impl_->health(); }
  const Config& config() const noexcept override { return impl_->config(); }
  asio::awaitable<void> shutdown(std::chrono::milliseconds deadline) override {
    return impl_->shutdown(deadline);
  }
  asio::awaitable<bool> wait_ready(std::chrono::milliseconds timeout) override {
    return impl_->wait_ready(timeout);
  }
  void set_observer(std::shared_ptr<CommandObserver> o) override {
    impl_->set_observer(std::move(o));
  }
  std::shared_ptr<const StatusSource> status_source() const override {
    return impl_->status_source();
  }

 private:
  std::shared_ptr<detail::StandaloneClient> impl_;
};

}  // namespace

asio::awaitable<Result<Reply>> Client::eval(const Script& script, std::vector<std::string> keys,
                                            std::vector<std::string> args, ExecOptions opts) {
  auto call = [&](std::string_view verb, std::string_view body) {
    Command cmd;
    cmd.arg(verb).arg(body).arg(static_cast<std::int64_t>(keys.size()));
    for (const auto& k : keys) cmd.arg(k);
    for (const auto& a : args) cmd.arg(a);
    return cmd;
  };
  // Named locals, not temporaries, inside co_await (g++ 12).
  Command evalsha = call("EVALSHA", script.sha1());
  auto r = co_await exec(std::move(evalsha), opts);
  if (r && is_noscript(*r)) {
    Command eval = call("EVAL", script.source());  // the script cache was flushed
    r = co_await exec(std::move(eval), opts);
  }
  co_return r;
}

std::unique_ptr<Client> make_client(asio::any_io_executor ex, Config cfg) {
  if (cfg.mode == Mode::cluster) return detail::make_cluster_client(ex, std::move(cfg));
  return std::make_unique<StandaloneHandle>(ex, std::move(cfg));
}

}  // namespace jeweler::redis
