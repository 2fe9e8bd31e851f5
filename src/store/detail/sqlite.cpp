#include <jeweler/redis/log.hpp>
#include <jeweler/store/detail/sqlite.hpp>

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <cstring>

namespace jeweler::store::detail {

boost::system::error_code sqlite_error(int rc, sqlite3* db, std::string_view what) {
  const int primary = rc & 0xFF;
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    jeweler::logger().warn("store: database busy during {} ({})", what, msg);
    return jeweler::errc::unavailable;
  }
  if (primary == SQLITE_CONSTRAINT) {
    jeweler::logger().debug("store: constraint during {}: {}", what, msg);
    return jeweler::errc::conflict;
  }
  if (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR || primary == SQLITE_FULL) {
    jeweler::logger().error("store: storage failure during {}: {} (code {})", what, msg, rc);
    return jeweler::errc::unavailable;
  }
  jeweler::logger().error("store: sqlite error during {}: {} (code {})", what, msg, rc);
  return jeweler::errc::internal;
}

// ---------------------------------------------------------------------------

Stmt::~Stmt() {
  if (s_) {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
}

Stmt& Stmt::bind(int i, std::string_view v) {
  int rc = sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && rc_ == 0) rc_ = rc;
  return *this;
}

Stmt& Stmt::bind(int i, std::int64_t v) {
  int rc = sqlite3_bind_int64(s_, i, v);
  if (rc != SQLITE_OK && rc_ == 0) rc_ = rc;
  return *this;
}

Stmt& Stmt::bind(int i, double v) {
  int rc = sqlite3_bind_double(s_, i, v);
  if (rc != SQLITE_OK && rc_ == 0) rc_ = rc;
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  int rc = sqlite3_bind_null(s_, i);
  if (rc != SQLITE_OK && rc_ == 0) rc_ = rc;
  return *this;
}

Result<bool> Stmt::step() {
  if (rc_ != 0) return {boost::system::in_place_error, sqlite_error(rc_, db_, "bind")};
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return {boost::system::in_place_error, sqlite_error(rc, db_, "step")};
}

Result<void> Stmt::run() {
  auto r = step();
  if (!r) return r.error();
  return {};
}

std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

std::int64_t Stmt::i64(int col) const {
  return sqlite3_column_int64(s_, col);
}
double Stmt::f64(int col) const {
  return sqlite3_column_double(s_, col);
}
bool Stmt::is_null(int col) const {
  return sqlite3_column_type(s_, col) == SQLITE_NULL;
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    auto ec = sqlite_error(rc, db, "open");
    sqlite3_close_v2(db);
    return ec;
  }
  std::unique_ptr<Connection> c(new Connection(db));
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  // WAL: readers never block the writer nor the other way round; NORMAL
  // synchronous is durable across process crashes (the WAL is synced at
  // checkpoints), which is the usual trade-off with WAL.
  if (auto r = c->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                       "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;");
      !r)
    return r.error();
  return c;
}

Connection::~Connection() {
  for (auto& [k, s] : cache_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Result<Stmt> Connection::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Stmt(it->second, db_);
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, static_cast<int>(std::strlen(sql)),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(rc, db_, "prepare");
  cache_.emplace(sql, s);
  return Stmt(s, db_);
}

Result<void> Connection::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return sqlite_error(rc, db_, "exec");
  return {};
}

int Connection::changes() const {
  return sqlite3_changes(db_);
}

// ---------------------------------------------------------------------------

Transaction::~Transaction() {
  if (open_) (void)c_.exec("ROLLBACK");
}

Result<void> Transaction::begin(Kind k) {
  auto r = c_.exec(k == Kind::write ? "BEGIN IMMEDIATE" : "BEGIN");
  if (r) open_ = true;
  return r;
}

Result<void> Transaction::commit() {
  auto r = c_.exec("COMMIT");
  if (r) open_ = false;
  return r;
}

// ---------------------------------------------------------------------------

void Pool::add(std::unique_ptr<Connection> c) {
  std::lock_guard lk(mu_);
  free_.push_back(c.get());
  all_.push_back(std::move(c));
  cv_.notify_one();
}

Pool::Lease Pool::acquire() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !free_.empty(); });
  Connection* c = free_.back();
  free_.pop_back();
  return Lease(*this, c);
}

void Pool::release(Connection* c) {
  {
    std::lock_guard lk(mu_);
    free_.push_back(c);
  }
  cv_.notify_one();
}

}  // namespace jeweler::store::detail
