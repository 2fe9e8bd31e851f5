#include <jeweler/redis/detail/cluster_client.hpp>
#include <jeweler/redis/log.hpp>

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace jeweler::redis::detail {

namespace {

constexpr std::size_t kSlots = 16384;
constexpr int kMaxRedirects = 5;
constexpr std::chrono::milliseconds kMinRefreshGap{100};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

bool keyless(std::string_view name) {
  static constexpr std::array<std::string_view, 26> names = {
      "PING",   "INFO",   "TIME",     "SCRIPT",  "CLUSTER", "HELLO",    "AUTH",
      "CLIENT", "DBSIZE", "FLUSHALL", "FLUSHDB", "CONFIG",  "COMMAND",  "ECHO",
      "SELECT", "MULTI",  "EXEC",     "DISCARD", "ROLE",    "LASTSAVE", "SAVE",
      "BGSAVE", "WAIT",   "READONLY", "ASKING",  "FUNCTION"};
  return std::any_of(names.begin(), names.end(), [&](auto n) { return iequals(n, name); });
}

/// The hash tag of a SCAN MATCH pattern when it is literal (no glob
/// character inside the braces), with escapes removed.
std::optional<std::string> literal_tag(std::string_view pattern) {
  auto open = pattern.find('{');
  if (open == std::string_view::npos) return std::nullopt;
  std::string tag;
  for (std::size_t i = open + 1; i < pattern.size(); ++i) {
    char ch = pattern[i];
    if (ch == '\\' && i + 1 < pattern.size()) {
      tag += pattern[++i];
    } else if (ch == '}') {
      if (tag.empty()) return std::nullopt;
      return tag;
    } else if (ch == '*' || ch == '?' || ch == '[') {
      return std::nullopt;
    } else {
      tag += ch;
    }
  }
  return std::nullopt;
}

/// The slot a command must run on; nullopt when any master will do.
std::optional<std::uint16_t> command_slot(const Command& c) {
  const auto name = c.name();
  if (c.size() < 2 || keyless(name)) return std::nullopt;
  if (iequals(name, "EVAL") || iequals(name, "EVALSHA") || iequals(name, "EVAL_RO") ||
      iequals(name, "EVALSHA_RO") || iequals(name, "FCALL") || iequals(name, "FCALL_RO")) {
    if (c.size() < 4 || c.at(2) == "0") return std::nullopt;
    return key_slot(c.at(3));
  }
  if (iequals(name, "SCAN")) {
    for (std::size_t i = 2; i + 1 < c.size(); ++i)
      if (iequals(c.at(i), "MATCH"))
        if (auto tag = literal_tag(c.at(i + 1))) return key_slot("{" + *tag + "}");
    return std::nullopt;
  }
  return key_slot(c.at(1));
}

struct Redirect {
  bool ask = false;
  std::uint16_t slot = 0;
  std::string host;
  std::uint16_t port = 0;
};

/// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"
std::optional<Redirect> parse_redirect(const Reply& r) {
  if (!r.is_error()) return std::nullopt;
  const auto code = r.error_code();
  if (code != "MOVED" && code != "ASK") return std::nullopt;
  std::string_view s(r.str);
  auto sp1 = s.find(' ');
  auto sp2 = s.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return std::nullopt;
  auto slot = std::string_view(s).substr(sp1 + 1, sp2 - sp1 - 1);
  auto endpoint = s.substr(sp2 + 1);
  auto colon = endpoint.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  Redirect d;
  d.ask = code == "ASK";
  try {
    auto v = std::stoul(std::string(slot));
    auto p = std::stoul(std::string(endpoint.substr(colon + 1)));
    if (v >= kSlots || p == 0 || p > 65535) return std::nullopt;
    d.slot = static_cast<std::uint16_t>(v);
    d.port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return std::nullopt;
  }
  d.host = std::string(endpoint.substr(0, colon));
  if (d.host.size() > 2 && d.host.front() == '[') d.host = d.host.substr(1, d.host.size() - 2);
  return d;
}

/// Thread-safe state of the cluster client (Client::status_source): the
/// status of every master's connection, read at read time, plus the table.
class ClusterStatus final : public StatusSource {
 public:
  Status read() const noexcept override {
    Status s;
    std::lock_guard lock(mu_);
    if (stopping) {
      s.state = State::closed;
      return s;
    }
    // Ready when every slot has a master and every master is connected;
    // stalled when one of them is frozen.
    bool ready = table_ok && !masters.empty();
    for (const auto& m : masters) {
      auto ms = m->read();
      if (ms.state != State::ready) ready = false;
      if (ms.stalled) s.stalled = true;
      s.last_ping_ms = std::max(s.last_ping_ms, ms.last_ping_ms);
    }
    for (const auto& n : nodes) s.reconnects += n->read().reconnects;
    s.state = ready ? State::ready : ever_ready ? State::reconnecting : State::connecting;
    s.stalled = ready && s.stalled;
    return s;
  }
  void publish(std::vector<std::shared_ptr<const StatusSource>> m,
               std::vector<std::shared_ptr<const StatusSource>> n, bool ok, bool ready) {
    std::lock_guard lock(mu_);
    masters = std::move(m);
    nodes = std::move(n);
    table_ok = ok;
    ever_ready = ready;
  }
  void stop() {
    std::lock_guard lock(mu_);
    stopping = true;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const StatusSource>> masters, nodes;
  bool table_ok = false, ever_ready = false, stopping = false;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::any_io_executor ex, Config cfg)
      : ex_(ex), cfg_(std::move(cfg)), timer_(ex), slots_(kSlots, nullptr) {}

  void start() {
    asio::co_spawn(
        ex_, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->run(); },
        asio::detached);
  }
  void stop() noexcept {
    stopping_ = true;
    status_->stop();
    timer_.cancel();
  }

  std::shared_ptr<const StatusSource> status_source() const { return status_; }

  asio::awaitable<Result<std::vector<Reply>>> exec(Pipeline p, ExecOptions opts) {
    auto self = shared_from_this();  // the handle may go while this waits
    if (p.empty()) co_return std::vector<Reply>{};
    if (stopping_) co_return make_error_code(errc::shutting_down);
    const auto timeout = opts.timeout.count() > 0 ? opts.timeout : cfg_.command_timeout;
    // Before the first table (start-up) commands wait for it; later a slot
    // without a master fails at once (below) and the rest keeps working.
    // No table yet and the last attempt to read one failed (every node
    // refused): the circuit is open, fail at once until the next attempt.
    if (!table_loaded_ && table_failed_) co_return make_error_code(errc::not_connected);
    if (!table_loaded_ &&
        !co_await wait_until([this] { return table_loaded_ || table_failed_ || stopping_; },
                             timeout))
      co_return make_error_code(stopping_ ? errc::shutting_down : errc::unavailable);
    if (!table_loaded_)
      co_return make_error_code(stopping_ ? errc::shutting_down : errc::not_connected);
    const std::size_t n = p.size();
    std::vector<Client*> target(n, nullptr);
    for (std::size_t i = 0; i < n; ++i) {
      auto slot = command_slot(p.commands()[i]);
      target[i] = slot ? slots_[*slot] : any_master();
      if (!target[i]) {
        request_refresh();
        co_return make_error_code(errc::unavailable);
      }
    }
    // One pipeline per master, in order of first appearance.
    std::vector<Reply> out(n);
    std::vector<bool> sent(n, false);
    for (std::size_t i = 0; i < n; ++i) {
      if (sent[i]) continue;
      Client* node = target[i];
      Pipeline part;
      std::vector<std::size_t> where;
      for (std::size_t j = i; j < n; ++j) {
        if (sent[j] || target[j] != node) continue;
        part.add(p.commands()[j], p.script_at(j));
        where.push_back(j);
        sent[j] = true;
      }
      auto r = co_await node->exec(std::move(part), opts);
      if (!r) {
        if (r.error() != make_error_code(errc::shutting_down)) request_refresh();  // failover?
        co_return r.error();
      }
      for (std::size_t k = 0; k < where.size() && k < r->size(); ++k)
        out[where[k]] = std::move((*r)[k]);
    }
    std::vector<Client*> answered = std::move(target);  // who gave out[i]
    // Redirections: the command did not run where it was sent.
    for (std::size_t i = 0; i < n; ++i) {
      for (int hop = 0; hop < kMaxRedirects; ++hop) {
        auto d = parse_redirect(out[i]);
        if (!d) break;
        // "MOVED 3999 :6381": the host of the node that answered.
        if (d->host.empty()) d->host = answered[i]->config().endpoint.host;
        Client* node = node_at(d->host, d->port);
        Pipeline again;
        if (d->ask) {
          // ASKING holds for the next command only: a script goes as EVAL,
          // so that a node without it cached cannot answer NOSCRIPT.
          again.add(Command::make("ASKING"));
          const Script* script = p.script_at(i);
          again.add(script ? p.commands()[i].as_eval(*script) : p.commands()[i]);
        } else {
          slots_[d->slot] = node;
          publish();
          request_refresh();
          again.add(p.commands()[i], p.script_at(i));
        }
        auto r = co_await node->exec(std::move(again), opts);
        if (!r) co_return r.error();
        out[i] = std::move(r->back());
        answered[i] = node;
      }
    }
    co_return out;
  }

  Health health() const {
    Health h;
    h.mode = Mode::cluster;
    h.address = cfg_.describe();
    const auto st = status_->read();  // the same state other threads read
    h.state = st.state;
    h.stalled = st.stalled;
    for (const auto& [addr, node] : nodes_) {
      auto n = node->health();
      h.reconnects += n.reconnects;
      h.errors += n.errors;
      h.commands += n.commands;
      if (!n.last_error.empty()) h.last_error = addr + ": " + n.last_error;
      h.last_ping_ms = std::max(h.last_ping_ms, n.last_ping_ms);
      if (n.protocol) h.protocol = n.protocol;
    }
    if (!last_error_.empty()) h.last_error = last_error_;
    return h;
  }

  const Config& config() const noexcept { return cfg_; }

  asio::awaitable<void> shutdown(std::chrono::milliseconds deadline) {
    auto self = shared_from_this();
    stop();
    for (auto& [addr, node] : nodes_) co_await node->shutdown(deadline);
  }

  asio::awaitable<bool> wait_ready(std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    co_return co_await wait_until([this] { return health().up(); }, timeout);
  }

  void set_observer(std::shared_ptr<CommandObserver> o) {
    observer_ = std::move(o);
    for (auto& [addr, node] : nodes_) node->set_observer(observer_);
  }

 private:
  template <class Pred>
  asio::awaitable<bool> wait_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::steady_timer t(ex_);
    while (!pred()) {
      if (stopping_ || std::chrono::steady_clock::now() >= deadline) co_return pred();
      t.expires_after(std::chrono::milliseconds(10));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return true;
  }

  Client* node_at(const std::string& host, std::uint16_t port) {
    std::string addr = host + ":" + std::to_string(port);
    auto it = nodes_.find(addr);
    if (it != nodes_.end()) return it->second.get();
    Config c = cfg_;
    c.mode = Mode::standalone;
    c.endpoint = Endpoint{host, port};
    c.cluster_nodes.clear();
    c.unix_path.clear();
    c.db = 0;  // a cluster has database 0 only
    auto client = make_client(ex_, std::move(c));
    if (observer_) client->set_observer(observer_);
    return nodes_.emplace(std::move(addr), std::move(client)).first->second.get();
  }

  /// Tells readers on other threads which connections are the masters.
  void publish() {
    std::vector<std::shared_ptr<const StatusSource>> masters, nodes;
    Client* last = nullptr;
    std::set<Client*> seen;
    for (auto* s : slots_) {
      if (!s || s == last) continue;
      last = s;
      if (seen.insert(s).second) masters.push_back(s->status_source());
    }
    for (const auto& [addr, node] : nodes_) nodes.push_back(node->status_source());
    status_->publish(std::move(masters), std::move(nodes), table_ok_, ever_ready_);
  }

  Client* any_master() const {
    for (auto* s : slots_)
      if (s && s->health().up()) return s;
    for (auto* s : slots_)
      if (s) return s;
    return nullptr;
  }

  bool masters_up() const {
    Client* last = nullptr;
    for (auto* s : slots_) {
      if (s == last) continue;
      if (!s || !s->health().up()) return false;
      last = s;
    }
    return true;
  }

  void request_refresh() {
    refresh_now_ = true;
    timer_.cancel();
  }

  /// Reads CLUSTER SLOTS from the first node that answers (known masters
  /// first, then the seeds). True when every slot has a master.
  asio::awaitable<bool> refresh() {
    std::vector<Client*> order;
    std::set<Client*> seen;
    for (auto* s : slots_)
      if (s && s->health().up() && seen.insert(s).second) order.push_back(s);
    for (const auto& e : cfg_.cluster_nodes) {
      Client* c = node_at(e.host, e.port);
      if (seen.insert(c).second) order.push_back(c);
    }
    for (const auto& [addr, node] : nodes_)
      if (seen.insert(node.get()).second) order.push_back(node.get());
    ExecOptions opts;
    opts.timeout = cfg_.command_timeout;
    opts.idempotent = true;
    std::string why = "no cluster node answered CLUSTER SLOTS";
    for (Client* c : order) {
      if (stopping_) co_return false;
      Command cmd = Command::make("CLUSTER", "SLOTS");
      auto r = co_await c->exec(std::move(cmd), opts);
      if (stopping_) co_return false;
      if (!r) continue;
      if (!r->is_array()) {
        why = "CLUSTER SLOTS: " + to_debug_string(*r);  // e.g. cluster support disabled
        continue;
      }
      std::vector<Client*> table(kSlots, nullptr);
      std::size_t covered = 0;
      for (const auto& range : r->elements) {
        if (!range.is_array() || range.elements.size() < 3 || !range.elements[2].is_array() ||
            range.elements[2].elements.size() < 2)
          continue;
        auto lo = range.elements[0].to_integer(), hi = range.elements[1].to_integer();
        const auto& master = range.elements[2].elements;
        auto port = master[1].to_integer();
        if (!lo || !hi || !port || *lo < 0 || *hi >= static_cast<std::int64_t>(kSlots) ||
            *lo > *hi || *port <= 0 || *port > 65535)
          continue;
        std::string host = master[0].str;
        if (host.empty() || host == "?") host = c->config().endpoint.host;
        Client* node = node_at(host, static_cast<std::uint16_t>(*port));
        for (auto s = *lo; s <= *hi; ++s) {
          if (!table[s]) ++covered;
          table[s] = node;
        }
      }
      if (covered == 0) {
        why = "CLUSTER SLOTS: no slot is served";
        continue;
      }
      slots_ = std::move(table);
      table_loaded_ = true;
      table_ok_ = covered == kSlots;
      last_error_ = table_ok_ ? "" : std::to_string(kSlots - covered) + " slots have no master";
      co_return table_ok_;
    }
    last_error_ = why;
    co_return false;
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    unsigned attempt = 0;
    boost::system::error_code ec;
    std::chrono::steady_clock::time_point last{};
    while (!stopping_) {
      // At most one CLUSTER SLOTS per 100 ms, however many requests ask.
      while (!stopping_ && std::chrono::steady_clock::now() - last < kMinRefreshGap) {
        timer_.expires_at(last + kMinRefreshGap);
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (stopping_) break;
      last = std::chrono::steady_clock::now();
      refresh_now_ = false;
      table_failed_ = false;  // half-open: commands wait for this attempt
      const bool complete = co_await refresh();
      if (stopping_) break;
      table_failed_ = !table_loaded_;
      const bool healthy = complete && masters_up();
      if (healthy && !ever_ready_) {
        ever_ready_ = true;
        jeweler::logger().info("redis cluster: {} masters serve all {} slots ({})", master_count(),
                               kSlots, cfg_.describe());
      }
      publish();
      if (!healthy && attempt == 3)
        jeweler::logger().warn("redis cluster: not ready: {}",
                               last_error_.empty() ? "a master is unreachable" : last_error_);
      attempt = healthy ? 0 : attempt + 1;
      // A refresh asked for meanwhile (MOVED, a failed master) waits 100 ms
      // at least: failing requests must not turn into a CLUSTER SLOTS storm.
      auto wait = refresh_now_ ? kMinRefreshGap
                  : healthy    ? std::chrono::milliseconds(30'000)
                               : std::chrono::milliseconds(
                                     std::min<std::int64_t>(2000, 100LL << std::min(attempt, 5u)));
      timer_.expires_after(wait);
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  std::size_t master_count() const {
    std::set<Client*> m(slots_.begin(), slots_.end());
    m.erase(nullptr);
    return m.size();
  }

  asio::any_io_executor ex_;
  Config cfg_;
  asio::steady_timer timer_;
  std::map<std::string, std::unique_ptr<Client>> nodes_;  // "host:port"; never erased
  std::vector<Client*> slots_;                            // slot -> its master's client
  bool table_loaded_ = false;                             // a table was read once
  bool table_failed_ = false;  // no table yet, and the last attempt to read one failed
  bool table_ok_ = false;      // ... and every slot has a master
  bool ever_ready_ = false;
  bool stopping_ = false;
  bool refresh_now_ = false;
  std::string last_error_;
  std::shared_ptr<CommandObserver> observer_;
  std::shared_ptr<ClusterStatus> status_ = std::make_shared<ClusterStatus>();
};

class ClusterHandle final : public Client {
 public:
  ClusterHandle(asio::any_io_executor ex, Config cfg)
      : core_(std::make_shared<Core>(ex, std::move(cfg))) {
    core_->start();
  }
  ~ClusterHandle() override { core_->stop(); }

  asio::awaitable<Result<Reply>> exec(Command cmd, ExecOptions opts) override {
    if (cmd.empty()) co_return make_error_code(errc::invalid_argument);
    Pipeline p;
    p.add(std::move(cmd));
    auto r = co_await core_->exec(std::move(p), opts);
    if (!r) co_return r.error();
    co_return std::move(r->front());
  }
  asio::awaitable<Result<std::vector<Reply>>> exec(Pipeline p, ExecOptions opts) override {
    for (const auto& c : p.commands())
      if (c.empty()) co_return make_error_code(errc::invalid_argument);
    co_return co_await core_->exec(std::move(p), opts);
  }
  Health health() const override { return core_->health(); }
  const Config& config() const noexcept override { return core_->config(); }
  asio::awaitable<void> shutdown(std::chrono::milliseconds deadline) override {
    return core_->shutdown(deadline);
  }
  asio::awaitable<bool> wait_ready(std::chrono::milliseconds timeout) override {
    return core_->wait_ready(timeout);
  }
  void set_observer(std::shared_ptr<CommandObserver> o) override {
    core_->set_observer(std::move(o));
  }
  std::shared_ptr<const StatusSource> status_source() const override {
    return core_->status_source();
  }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

std::unique_ptr<Client> make_cluster_client(asio::any_io_executor ex, Config cfg) {
  if (cfg.cluster_nodes.empty())
    throw ConfigError("REDIS_CLUSTER_NODES: at least one host:port is needed");
  if (cfg.db != 0) throw ConfigError("REDIS_DB: a Redis Cluster has database 0 only");
  return std::make_unique<ClusterHandle>(ex, std::move(cfg));
}

}  // namespace jeweler::redis::detail
