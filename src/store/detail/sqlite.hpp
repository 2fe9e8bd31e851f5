// Thin RAII layer over the SQLite3 C API: a connection with a cache of
// prepared statements, a borrowed statement that resets itself, a transaction
// guard and a fixed pool of connections. Internal to jeweler::store.
#pragma once

#include <jeweler/core/errc.hpp>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace jeweler::store::detail {

/// Maps an SQLite result code to a jeweler::errc (logging the details, which
/// never reach a client): BUSY/LOCKED → unavailable, CONSTRAINT → conflict,
/// anything else → internal.
boost::system::error_code sqlite_error(int rc, sqlite3* db, std::string_view what);

/// A prepared statement borrowed from a Connection's cache. Bindings are
/// 1-based, columns 0-based. The destructor resets it for the next user.
class Stmt {
 public:
  Stmt(sqlite3_stmt* s, sqlite3* db) : s_(s), db_(db) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_), db_(o.db_), rc_(o.rc_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::optional<std::string>& v) {
    return v ? bind(i, std::string_view(*v)) : bind_null(i);
  }
  Stmt& bind(int i, const std::optional<std::int64_t>& v) { return v ? bind(i, *v) : bind_null(i); }

  /// Next row: true with a row, false when done; an error otherwise.
  Result<bool> step();
  /// Runs a statement that returns no rows.
  Result<void> run();

  std::string text(int col) const;
  std::int64_t i64(int col) const;
  double f64(int col) const;
  bool is_null(int col) const;
  std::optional<std::string> opt_text(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::string>(text(col));
  }

 private:
  sqlite3_stmt* s_;
  sqlite3* db_;
  int rc_ = 0;  // first binding error
};

class Connection {
 public:
  /// Opens (creating) the database file, sets WAL, foreign keys, busy timeout.
  static Result<std::unique_ptr<Connection>> open(const std::string& path, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// A cached prepared statement for `sql` (a string literal: the cache keys
  /// on its address and text).
  Result<Stmt> prepare(const char* sql);
  /// Runs one or more statements without results (DDL, BEGIN, COMMIT).
  Result<void> exec(const char* sql);
  int changes() const;
  sqlite3* handle() const noexcept { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

/// BEGIN IMMEDIATE (writers) or BEGIN (readers: one consistent snapshot) ...
/// COMMIT; rolls back in the destructor unless committed.
class Transaction {
 public:
  enum class Kind { read, write };
  explicit Transaction(Connection& c) : c_(c) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Result<void> begin(Kind k);
  Result<void> commit();

 private:
  Connection& c_;
  bool open_ = false;
};

/// A fixed set of connections handed out one caller at a time.
class Pool {
 public:
  Pool() = default;
  void add(std::unique_ptr<Connection> c);

  class Lease {
   public:
    Lease(Pool& p, Connection* c) : pool_(&p), c_(c) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), c_(o.c_) { o.c_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (c_) pool_->release(c_);
    }
    Connection& operator*() const noexcept { return *c_; }
    Connection* operator->() const noexcept { return c_; }

   private:
    Pool* pool_;
    Connection* c_;
  };

  /// Waits until a connection is free.
  Lease acquire();

 private:
  void release(Connection* c);
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> all_;
  std::vector<Connection*> free_;
};

}  // namespace jeweler::store::detail
