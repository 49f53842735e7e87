// dataset/sqlite.h: a thin RAII layer over the SQLite C API: connection, prepared statement, transaction.
// Only parameterised statements exist here (bind by index); nothing builds SQL from values.
// Lives in dataset/ because all store access goes through dataset/.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace distill::dataset {

class Stmt;

class Db {
 public:
  // flags: SQLITE_OPEN_*; throws InputError when it cannot open. shown: the name in messages (default: path).
  Db(const std::string& path, int flags, const std::string& shown = {});
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const char* sql);  // statements without parameters or results (DDL, PRAGMA, BEGIN)
  Stmt prepare(std::string_view sql);
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  int changes() const { return sqlite3_changes(db_); }
  std::int64_t pragma_int(const char* name);  // e.g. "user_version"
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(Stmt&& o) noexcept : st_(o.st_), db_(o.db_) { o.st_ = nullptr; }
  Stmt(const Stmt&) = delete;

  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, int v) { return bind(i, std::int64_t(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind_blob(int i, const void* p, std::size_t n);
  Stmt& bind_null(int i);
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) { return v ? bind(i, *v) : bind_null(i); }

  bool step();  // true while a row is available; false when done. Throws on error.
  void run() { while (step()) {} }
  void reset();  // reset and clear bindings, for reuse

  std::int64_t col_int(int i) const { return sqlite3_column_int64(st_, i); }
  double col_double(int i) const { return sqlite3_column_double(st_, i); }
  std::string col_text(int i) const;
  bool col_null(int i) const { return sqlite3_column_type(st_, i) == SQLITE_NULL; }
  std::optional<std::int64_t> col_opt_int(int i) const {
    return col_null(i) ? std::nullopt : std::optional<std::int64_t>(col_int(i));
  }
  std::optional<std::string> col_opt_text(int i) const {
    return col_null(i) ? std::nullopt : std::optional<std::string>(col_text(i));
  }
  sqlite3_stmt* raw() const { return st_; }

 private:
  sqlite3_stmt* st_ = nullptr;
  sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE on construction; ROLLBACK unless commit() was called. One per batch of writes.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

// BEGIN (deferred) on construction, ended on destruction: the reads in between see one state of the store, even
// while another process commits (WAL). Writes inside are not meant to be kept: use Transaction for those.
class ReadTransaction {
 public:
  explicit ReadTransaction(Db& db);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Db& db_;
};

}  // namespace distill::dataset
