// dataset/store.cpp: opening, creating and migrating the store; runs, problems and stats.
#include "dataset/store.h"

#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <string_view>

#include "common/errors.h"
#include "common/sha256.h"
#include "dataset/migrations.h"
#include "dataset/schema_sql.h"
#include "distill_version.h"

namespace distill::dataset {

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string content_hash(std::string_view prompt) {
  std::string norm;
  norm.reserve(prompt.size());
  bool pending_space = false;
  for (char c : prompt) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = !norm.empty();
      continue;
    }
    if (pending_space) norm += ' ';
    pending_space = false;
    norm += c;
  }
  return sha256_hex(norm);
}

void check_store_header(const std::string& path, OpenMode mode) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT && mode == OpenMode::create) return;
    if (errno == ENOENT)
      throw InputError(path + ": no such store. HINT: create one with `distill data synth --db " + path +
                       " ...` or `distill data import`");
    throw InputError(path + ": cannot stat: " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, expected a distill store (.db file)");
  if (st.st_size == 0) {
    if (mode == OpenMode::create) return;
    throw InputError(path + ": empty file, not a distill store");
  }
  char head[16] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open for reading");
  in.read(head, sizeof head);
  if (in.gcount() < 16 || std::memcmp(head, "SQLite format 3\0", 16) != 0)
    throw InputError(path +
                     ": not a distill store (the file is not an SQLite database). HINT: --db takes the .db "
                     "file written by `distill data synth` or `distill data import`, or a new path");
}

// A read-only folder holding a -wal file SQLite could only read consistently by writing its -shm index beside
// it: refused rather than read stale (SQLite's own answer is a bare "unable to open").
[[noreturn]] static void refuse_unreadable_wal(const std::string& path) {
  if (::access((path + "-wal").c_str(), F_OK) == 0)
    throw InputError(path + ": the store is read-only here and " + path + "-wal holds commits that cannot be read "
                            "without writing beside it; refused rather than read stale. HINT: open it once where "
                            "its folder is writable (that folds the -wal in), or copy the folder somewhere writable");
  throw InputError(path + ": the store is read-only here and SQLite cannot read it");
}

std::unique_ptr<Store> Store::open(const std::string& path, OpenMode mode) {
  check_store_header(path, mode);
  // A store whose file or folder this process cannot write (a shared read-only dataset, a mounted snapshot) opens
  // read-only: reading commands work, a write says so (exit 2). A WAL store needs its folder for -wal and -shm.
  const bool exists = ::access(path.c_str(), F_OK) == 0;
  const auto dir = std::filesystem::path(path).parent_path();
  const bool dir_writable = ::access(dir.empty() ? "." : dir.c_str(), W_OK) == 0;
  const bool read_only = exists ? ::access(path.c_str(), W_OK) != 0 || !dir_writable : false;
  if (!exists && !dir_writable) throw InputError(path + ": cannot create the store: its folder is not writable");
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | (mode == OpenMode::create ? SQLITE_OPEN_CREATE : 0);
  // In a folder we cannot write, SQLite can read a WAL store only through its -shm index. With no -wal file every
  // commit is in the main file and no writer is at work (it would have made a -wal), so the file is read as it
  // stands (immutable); with a -wal, SQLite reads it through the -shm if one is there, else it is refused below.
  std::string target = path;
  if (read_only && !dir_writable && ::access((path + "-wal").c_str(), F_OK) != 0) {
    target = "file:";
    for (unsigned char c : path) {
      static const char* hex = "0123456789ABCDEF";
      if (std::isalnum(c) || c == '/' || c == '.' || c == '-' || c == '_') target += char(c);
      else target += '%', target += hex[c >> 4], target += hex[c & 15];
    }
    target += "?immutable=1";
    flags |= SQLITE_OPEN_URI;
  }
  std::unique_ptr<Db> db;
  try {
    db = std::make_unique<Db>(target, flags, path);
  } catch (const InputError&) {
    if (read_only) refuse_unreadable_wal(path);
    throw;
  }

  // Identify before writing anything. These reads change nothing in the file.
  std::int64_t app_id = 0, version = 0, n_objects = 0;
  try {
    app_id = db->pragma_int("application_id");
    version = db->pragma_int("user_version");
    auto s = db->prepare("SELECT count(*) FROM sqlite_master");
    s.step();
    n_objects = s.col_int(0);
  } catch (const RuntimeFailure& e) {
    if (read_only) refuse_unreadable_wal(path);
    const std::string what = e.what();
    if (what.find("readonly") != std::string::npos || what.find("read-only") != std::string::npos)
      throw InputError(path + ": cannot open the store for writing (the file or its folder is read-only; a WAL "
                              "store needs to write its -wal and -shm files beside it)");
    throw InputError(path + ": not a distill store (SQLite cannot read it: " + what + ")");
  }
  const bool blank = app_id == 0 && version == 0 && n_objects == 0;
  if (!blank && app_id != kApplicationId)
    throw InputError(path + ": not a distill store (an SQLite database of another application: application_id " +
                     std::to_string(app_id) + ", " + std::to_string(n_objects) + " schema objects)");
  if (version > kSchemaVersion)
    throw InputError(path + ": store schema version " + std::to_string(version) +
                     " is newer than this distill supports (" + std::to_string(kSchemaVersion) +
                     "). HINT: upgrade distill; the store was left untouched");

  if (read_only && (blank || version < kSchemaVersion))
    throw InputError(path + ": the store is read-only here and " +
                     (blank ? std::string("empty") : "at schema version " + std::to_string(version) + ", which needs migrating to " +
                                                         std::to_string(kSchemaVersion)) +
                     "; open it once where it is writable");
  if (blank) {
    if (mode != OpenMode::create) throw InputError(path + ": empty SQLite database, not a distill store");
    // Created in rollback-journal mode so the header on disk carries the id and version at once.
    Transaction tx(*db);
    db->exec(kSchemaSql);
    db->exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
    db->exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    tx.commit();
  } else if (version < kSchemaVersion) {
    migrate(*db, int(version), kSchemaVersion);
  }
  check_tables(*db, path);
  if (!read_only) {
    db->exec("PRAGMA journal_mode = WAL");
    db->exec("PRAGMA synchronous = NORMAL");  // WAL + NORMAL: durable against process kill
  }
  db->exec("PRAGMA foreign_keys = ON");
  auto store = std::unique_ptr<Store>(new Store(path, std::move(db)));
  store->read_only_ = read_only;
  store->snapshot_ = target != path;
  return store;
}

// Every table of the current schema (schema.sql) is there: a store whose schema was damaged or edited by another
// program (a table renamed) would otherwise fail at the first query that needs it, in SQLite's words, exit 1.
void Store::check_tables(Db& db, const std::string& path) {
  std::set<std::string> have;
  for (auto q = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'"); q.step();) have.insert(q.col_text(0));
  const std::string_view schema = kSchemaSql;
  for (std::string_view kw : {"CREATE TABLE ", "CREATE VIRTUAL TABLE "})
    for (auto at = schema.find(kw); at != std::string_view::npos; at = schema.find(kw, at + 1)) {
      const auto from = at + kw.size(), to = schema.find_first_of(" (\n", from);
      const std::string name(schema.substr(from, to - from));
      if (!have.count(name))
        throw InputError(path + ": the store has no table " + name + " (its schema is damaged, or was changed by "
                         "another program); restore it from a copy");
    }
}

static std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::int64_t Store::begin_run(const std::string& kind, const std::string& config_toml) {
  Transaction tx(*db_);
  mark_dead_runs();
  auto s = db_->prepare(
      "INSERT INTO runs(kind, config_toml, started_at, status, host, version, pid) VALUES (?, ?, ?, 'running', ?, ?, ?)");
  s.bind(1, kind).bind(2, config_toml).bind(3, now_iso8601()).bind(4, hostname()).bind(5, DISTILL_VERSION);
  s.bind(6, std::int64_t(::getpid()));
  s.run();
  auto id = db_->last_insert_rowid();
  tx.commit();
  return id;
}

void Store::fail_run(std::int64_t run_id) noexcept {
  try {
    finish_run(run_id, false);
  } catch (...) {
  }
}

bool Store::run_is_live(std::int64_t run_id) {
  auto q = db_->prepare("SELECT status, host, pid FROM runs WHERE id = ?");
  q.bind(1, run_id);
  if (!q.step() || q.col_text(0) != "running") return false;
  if (q.col_text(1) != hostname()) return true;  // another machine's: cannot tell, so assume it is
  if (q.col_null(2)) return false;                 // from before schema v5: no process recorded
  const auto pid = pid_t(q.col_int(2));
  return pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM;
}

bool Store::claim_run(std::int64_t run_id) {
  Transaction tx(*db_);  // BEGIN IMMEDIATE: no other process decides between the check and the update
  {
    auto q = db_->prepare("SELECT status FROM runs WHERE id = ?");
    q.bind(1, run_id);
    if (!q.step() || q.col_text(0) == "ok" || run_is_live(run_id)) return false;
  }
  auto u = db_->prepare("UPDATE runs SET status = 'running', host = ?, pid = ?, finished_at = NULL WHERE id = ?");
  u.bind(1, hostname()).bind(2, std::int64_t(::getpid())).bind(3, run_id);
  u.run();
  tx.commit();
  return true;
}

void Store::mark_dead_runs() {
  std::vector<std::int64_t> dead;
  {
    auto q = db_->prepare("SELECT id FROM runs WHERE status = 'running' AND host = ?");
    q.bind(1, hostname());
    while (q.step()) dead.push_back(q.col_int(0));
  }
  auto u = db_->prepare("UPDATE runs SET status = 'failed' WHERE id = ?");
  for (auto id : dead)
    if (!run_is_live(id)) {
      u.bind(1, id);
      u.run();
      u.reset();
    }
}

std::int64_t Store::insert_finished_run(const std::string& kind, const std::string& config_toml) {
  mark_dead_runs();
  auto run = db_->prepare(
      "INSERT INTO runs(kind, config_toml, started_at, finished_at, status, host, version) "
      "VALUES (?, ?, ?, ?, 'ok', ?, ?)");
  const auto now = now_iso8601();
  run.bind(1, kind).bind(2, config_toml).bind(3, now).bind(4, now).bind(5, hostname()).bind(6, DISTILL_VERSION);
  run.run();
  return db_->last_insert_rowid();
}

void Store::finish_run(std::int64_t run_id, bool ok) {
  Transaction tx(*db_);
  auto s = db_->prepare("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?");
  s.bind(1, ok ? "ok" : "failed").bind(2, now_iso8601()).bind(3, run_id);
  s.run();
  tx.commit();
}

InsertResult Store::insert_problems(const std::vector<ProblemRow>& rows, const std::string& run_kind,
                                    const std::string& config_toml,
                                    const std::function<void(std::size_t)>& progress) {
  InsertResult r;
  Transaction tx(*db_);
  const auto run_id = insert_finished_run(run_kind, config_toml);
  auto s = db_->prepare(
      "INSERT INTO problems(source, split, prompt, answer, solution, difficulty, meta_json, "
      "content_hash, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(content_hash) DO NOTHING");
  // A problem stored without a gold answer (from a chat-format import) takes this one.
  auto gold = db_->prepare("UPDATE problems SET answer = ?2 WHERE content_hash = ?1 AND answer = '' AND ?2 <> ''");
  for (const auto& p : rows) {
    s.bind(1, p.source).bind(2, p.split).bind(3, p.prompt).bind(4, p.answer).bind(5, p.solution);
    s.bind(6, p.difficulty).bind(7, p.meta_json).bind(8, content_hash(p.prompt)).bind(9, run_id);
    s.run();
    if (db_->changes() > 0) {
      ++r.inserted;
    } else {
      ++r.duplicates;
      gold.bind(1, content_hash(p.prompt)).bind(2, p.answer);
      gold.run();
      r.golds_added += db_->changes();
      gold.reset();
    }
    s.reset();
    if (progress && (r.inserted + r.duplicates) % 4096 == 0) progress(std::size_t(r.inserted + r.duplicates));
  }
  if (progress) progress(rows.size());
  tx.commit();
  return r;
}

StoreStats Store::stats() {
  StoreStats st;
  st.schema_version = db_->pragma_int("user_version");
  st.file_bytes = db_->pragma_int("page_count") * db_->pragma_int("page_size");
  auto count = [&](const char* sql) {
    auto s = db_->prepare(sql);
    s.step();
    return s.col_int(0);
  };
  st.problems = count("SELECT count(*) FROM problems");
  st.samples = count("SELECT count(*) FROM samples");
  st.runs = count("SELECT count(*) FROM runs");
  st.models = count("SELECT count(*) FROM models");
  auto group = [&](const char* sql, std::map<std::string, std::int64_t>& out) {
    auto s = db_->prepare(sql);
    while (s.step()) out[s.col_text(0)] = s.col_int(1);
  };
  group("SELECT split, count(*) FROM problems GROUP BY split", st.problems_by_split);
  group("SELECT source, count(*) FROM problems GROUP BY source", st.problems_by_source);
  group("SELECT verdict, count(*) FROM samples GROUP BY verdict", st.samples_by_verdict);
  group("SELECT kind, count(*) FROM runs GROUP BY kind", st.runs_by_kind);
  auto s = db_->prepare(
      "SELECT split, coalesce(CAST(difficulty AS TEXT), 'none'), count(*) FROM problems GROUP BY split, difficulty");
  while (s.step()) st.problems_by_split_difficulty[s.col_text(0)][s.col_text(1)] = s.col_int(2);
  return st;
}

void Store::for_each_text(const std::vector<std::string>& exclude_splits,
                          const std::function<void(const std::string&)>& fn) {
  // Exclusion through a temp table keeps the SQL parameterised whatever the number of splits.
  db_->exec("CREATE TEMP TABLE IF NOT EXISTS excluded_splits(split TEXT PRIMARY KEY)");
  db_->exec("DELETE FROM temp.excluded_splits");
  auto ins = db_->prepare("INSERT OR IGNORE INTO temp.excluded_splits(split) VALUES (?)");
  for (const auto& sp : exclude_splits) { ins.bind(1, sp); ins.run(); ins.reset(); }
  auto p = db_->prepare(
      "SELECT prompt, solution, answer FROM problems "
      "WHERE split NOT IN (SELECT split FROM temp.excluded_splits) ORDER BY id");
  while (p.step()) {
    fn(p.col_text(0));
    if (!p.col_null(1)) fn(p.col_text(1));
    fn(p.col_text(2));
  }
  auto c = db_->prepare(
      "SELECT s.completion FROM samples s JOIN problems p ON p.id = s.problem_id "
      "WHERE p.split NOT IN (SELECT split FROM temp.excluded_splits) ORDER BY s.id");
  while (c.step()) fn(c.col_text(0));
}

}  // namespace distill::dataset
