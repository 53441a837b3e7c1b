// Inside the state store: the SQLite statement and transaction helpers every table file
// uses, and the schema history. Included only by guard/state/*.cc (the SQLite adapter).
#pragma once

#include <fmt/format.h>
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "guard/state/store.h"

namespace guard::state {

// One step of the schema history (schema.cc). Append only: a released migration is never
// edited, because databases in the field already carry it.
struct Migration {
  int version;
  const char* sql;
};
[[nodiscard]] std::span<const Migration> migrations();

// ---- Statement: one prepared statement, bound left to right -------------------------------

class StateStore::Statement {
 public:
  Statement(const StateStore& store, std::unique_ptr<sqlite3_stmt, FinalizeStatement> stmt, std::string context)
      : store_(&store), stmt_(std::move(stmt)), context_(std::move(context)) {}

  Statement& bind(std::int64_t v) { return check_bind(sqlite3_bind_int64(stmt_.get(), ++index_, v)); }
  Statement& bind(std::string_view v) {
    return check_bind(sqlite3_bind_text64(stmt_.get(), ++index_, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& bind(const std::string& v) { return bind(std::string_view(v)); }
  Statement& bind(const char* v) { return bind(std::string_view(v)); }
  Statement& bind(const std::optional<std::int64_t>& v) {
    return v ? bind(*v) : check_bind(sqlite3_bind_null(stmt_.get(), ++index_));
  }
  Statement& bind(const std::optional<std::string>& v) {
    return v ? bind(std::string_view(*v)) : check_bind(sqlite3_bind_null(stmt_.get(), ++index_));
  }

  // True when a row is available, false when done.
  base::Result<bool> step() {
    if (bind_failed_) return base::fail(store_->error("sqlite3_bind", context_));
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return base::fail(store_->error("sqlite3_step", context_));
  }
  // Steps to the end, for statements that return no rows.
  base::Result<void> run() {
    for (;;) {
      auto row = step();
      if (!row) return base::fail(row.error());
      if (!*row) return {};
    }
  }

  // Ready to bind and run again, e.g. one INSERT per finding.
  void reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
    index_ = 0;
    bind_failed_ = false;
  }
  // Finalizes now, e.g. before a COMMIT while a row was left unread.
  void close() { stmt_.reset(); }

  // SQLITE_INTEGER, SQLITE_TEXT, SQLITE_NULL...: a column's stored type.
  [[nodiscard]] int type(int col) const { return sqlite3_column_type(stmt_.get(), col); }
  [[nodiscard]] bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  [[nodiscard]] std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    int n = sqlite3_column_bytes(stmt_.get(), col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
  }
  [[nodiscard]] std::optional<std::int64_t> opt_integer(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::int64_t>(integer(col));
  }
  [[nodiscard]] std::optional<std::string> opt_text(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::string>(text(col));
  }

 private:
  Statement& check_bind(int rc) {
    if (rc != SQLITE_OK) bind_failed_ = true;
    return *this;
  }

  const StateStore* store_;
  std::unique_ptr<sqlite3_stmt, FinalizeStatement> stmt_;
  std::string context_;
  int index_ = 0;
  bool bind_failed_ = false;
};

// ---- TransactionGuard: BEGIN IMMEDIATE at the outside, savepoints inside ------------------

class StateStore::TransactionGuard {
 public:
  static base::Result<TransactionGuard> begin(StateStore& store, std::string_view context) {
    int level = store.transaction_depth_;
    // IMMEDIATE takes the write lock now, so a busy database waits in the busy handler here
    // instead of failing later when a read would have to become a write.
    std::string sql = level == 0 ? std::string("BEGIN IMMEDIATE") : fmt::format("SAVEPOINT ug_{}", level);
    if (auto r = store.exec(sql.c_str(), context); !r) return base::fail(r.error());
    ++store.transaction_depth_;
    return TransactionGuard(store, level, std::string(context));
  }

  TransactionGuard(TransactionGuard&& other) noexcept
      : store_(std::exchange(other.store_, nullptr)), level_(other.level_), context_(std::move(other.context_)) {}
  TransactionGuard& operator=(TransactionGuard&&) = delete;
  ~TransactionGuard() { rollback(); }

  base::Result<void> commit() {
    std::string sql = level_ == 0 ? std::string("COMMIT") : fmt::format("RELEASE ug_{}", level_);
    if (auto r = store_->exec(sql.c_str(), context_); !r) return r;  // the destructor rolls back
    --store_->transaction_depth_;
    store_ = nullptr;
    return {};
  }

 private:
  TransactionGuard(StateStore& store, int level, std::string context)
      : store_(&store), level_(level), context_(std::move(context)) {}

  void rollback() {
    if (!store_) return;
    sqlite3* db = store_->db_.get();
    if (level_ == 0) {
      if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    } else {
      std::string sql = fmt::format("ROLLBACK TO ug_{0}; RELEASE ug_{0}", level_);
      sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    }
    --store_->transaction_depth_;
    store_ = nullptr;
  }

  StateStore* store_;
  int level_;
  std::string context_;
};

}  // namespace guard::state
