// dataset/sqlite.cpp: see sqlite.h.
#include "dataset/sqlite.h"

#include "common/errors.h"

namespace distill::dataset {

static std::string err(sqlite3* db, const std::string& what) {
  return what + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
}

// The file `db` has open, for messages about the file itself.
static std::string file_of(sqlite3* db) {
  const char* file = sqlite3_db_filename(db, "main");
  return file && *file ? file : "the store";
}

// A damaged file is bad input, not a failure of ours: InputError naming the file and what can be done, instead of
// the query that happened to reach the broken page.
static void refuse_if_damaged(sqlite3* db, int rc) {
  if (!db || ((rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)) return;
  // A store read as it stood (read-only folder: no locks) looks damaged when its owner writes to it meanwhile.
  if (sqlite3_uri_boolean(sqlite3_db_filename(db, "main"), "immutable", 0))
    throw InputError(file_of(db) + ": the store changed while it was read as it stood (its folder is not writable "
                                   "here, so it is read without locks); run the command again");
  throw InputError(file_of(db) + ": the SQLite file is damaged (" +
                   sqlite3_errmsg(db) + "); restore it from a copy (`sqlite3 FILE .recover` may salvage its rows)");
}

// A full disk is not bad input (exit 1), but it is the user's to fix: say so, and that committed work is kept.
static void fail_if_full(sqlite3* db, int rc) {
  if (!db || (rc & 0xff) != SQLITE_FULL) return;
  throw RuntimeFailure(file_of(db) + ": the disk is full (SQLite: " + sqlite3_errmsg(db) + "); what was committed "
                                     "before is kept: free space and run the same command again");
}

// A write on a store opened read-only (its file or folder is not writable) is the user's situation to fix, not a
// failure of ours: InputError naming the file, exit 2.
static void refuse_if_readonly(sqlite3* db, int rc) {
  if (!db || rc != SQLITE_READONLY) return;  // the extended READONLY_* codes are about -shm/-wal, not a write
  throw InputError(file_of(db) + ": the store is read-only here (the file or its folder is not writable) and this "
                                 "command writes to it; reading commands (list, show, stats, log, studio) work");
}

Db::Db(const std::string& path, int flags, const std::string& shown) : path_(shown.empty() ? path : shown) {
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = err(db_, path_ + ": cannot open SQLite database");
    sqlite3_close(db_);
    db_ = nullptr;
    throw InputError(msg);
  }
  sqlite3_busy_timeout(db_, 10000);  // a concurrent writer holds the lock for one batch at most
  sqlite3_extended_result_codes(db_, 1);
}

Db::~Db() { sqlite3_close_v2(db_); }

void Db::exec(const char* sql) {
  char* msg = nullptr;
  if (int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg); rc != SQLITE_OK) {
    std::string m = path_ + ": SQL failed: " + (msg ? msg : "?");
    sqlite3_free(msg);
    refuse_if_damaged(db_, sqlite3_extended_errcode(db_));
    refuse_if_readonly(db_, sqlite3_extended_errcode(db_));
    fail_if_full(db_, sqlite3_extended_errcode(db_));
    throw RuntimeFailure(m);
  }
}

Stmt Db::prepare(std::string_view sql) { return Stmt(db_, sql); }

std::int64_t Db::pragma_int(const char* name) {
  // PRAGMA names cannot be bound as parameters; only fixed names from this codebase reach here.
  Stmt s(db_, std::string("PRAGMA ") + name);
  if (!s.step()) throw RuntimeFailure(path_ + ": PRAGMA " + name + " returned nothing");
  return s.col_int(0);
}

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  if (int rc = sqlite3_prepare_v2(db, sql.data(), int(sql.size()), &st_, nullptr); rc != SQLITE_OK) {
    refuse_if_damaged(db, rc);
    refuse_if_readonly(db, rc);
    // Every statement here is fixed and tested against schema.sql: a missing table or column means the file's
    // schema was damaged or changed by another program.
    if (const std::string msg = sqlite3_errmsg(db); msg.rfind("no such table", 0) == 0 || msg.rfind("no such column", 0) == 0 ||
                                                    msg.find(" has no column named ") != std::string::npos) {
      throw InputError(file_of(db) + ": its schema does not match this distill (" +
                       msg + "); it is damaged or was changed by another program: restore it from a copy");
    }
    throw RuntimeFailure(err(db, "cannot prepare `" + std::string(sql.substr(0, 80)) + "`"));
  }
}

Stmt::~Stmt() { sqlite3_finalize(st_); }

#define DISTILL_BIND(call)                                                   \
  if ((call) != SQLITE_OK) throw RuntimeFailure(err(db_, "bind failed")); \
  return *this

Stmt& Stmt::bind(int i, std::int64_t v) { DISTILL_BIND(sqlite3_bind_int64(st_, i, v)); }
Stmt& Stmt::bind(int i, double v) { DISTILL_BIND(sqlite3_bind_double(st_, i, v)); }
Stmt& Stmt::bind(int i, std::string_view v) {
  DISTILL_BIND(sqlite3_bind_text64(st_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}
Stmt& Stmt::bind_blob(int i, const void* p, std::size_t n) {
  DISTILL_BIND(sqlite3_bind_blob64(st_, i, p, n, SQLITE_TRANSIENT));
}
Stmt& Stmt::bind_null(int i) { DISTILL_BIND(sqlite3_bind_null(st_, i)); }
#undef DISTILL_BIND

bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  refuse_if_damaged(db_, rc);
  refuse_if_readonly(db_, rc);
  fail_if_full(db_, rc);
  throw RuntimeFailure(err(db_, std::string("SQL step failed in `") + sqlite3_sql(st_) + "`"));
}

void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

std::string Stmt::col_text(int i) const {
  const auto* p = sqlite3_column_text(st_, i);
  return p ? std::string(reinterpret_cast<const char*>(p), std::size_t(sqlite3_column_bytes(st_, i))) : "";
}

Transaction::Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_) {
    try { db_.exec("ROLLBACK"); } catch (...) {}
  }
}

ReadTransaction::ReadTransaction(Db& db) : db_(db) { db_.exec("BEGIN"); }

ReadTransaction::~ReadTransaction() {
  try { db_.exec("ROLLBACK"); } catch (...) {}
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace distill::dataset
