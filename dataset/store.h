// dataset/store.h: the distill store, one SQLite file with the schema of dataset/schema.sql.
// Opening checks that the file is ours (SQLite magic, application_id) and not from a newer distill before
// anything is written; new stores are created, older ones migrated. WAL mode and foreign keys are on.
// Every write happens inside a transaction. Curation, samples and training tables get their APIs in later files.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataset/sqlite.h"

namespace distill::dataset {

inline constexpr int kSchemaVersion = 8;
inline constexpr std::int64_t kApplicationId = 0x4453544C;  // "DSTL" in the SQLite header, offset 68

enum class OpenMode {
  read,    // the store must exist; nothing is created (older stores are still migrated in place)
  create,  // create a new store if the path does not exist or is an empty file
};

struct ProblemRow {
  std::string source;      // 'synth:chain', 'gsm8k', 'math', 'jsonl'
  std::string split;       // 'train', 'eval', ...
  std::string prompt;
  std::string answer;
  std::optional<std::string> solution;  // gold steps, last line `\boxed{answer}`
  std::optional<int> difficulty;
  std::string meta_json = "{}";
};

struct InsertResult {
  std::int64_t inserted = 0;
  std::int64_t duplicates = 0;  // same content hash already in the store (or earlier in this batch)
  std::int64_t golds_added = 0;  // duplicates stored without a gold answer that took this one
};

struct StoreStats {
  std::int64_t schema_version = 0;
  std::int64_t file_bytes = 0;
  std::int64_t problems = 0, samples = 0, runs = 0, models = 0;
  std::map<std::string, std::int64_t> problems_by_split;
  std::map<std::string, std::int64_t> problems_by_source;
  std::map<std::string, std::map<std::string, std::int64_t>> problems_by_split_difficulty;  // split -> "3" -> n
  std::map<std::string, std::int64_t> samples_by_verdict;
  std::map<std::string, std::int64_t> runs_by_kind;
};

// The content hash of a prompt: sha256 of the prompt with runs of whitespace collapsed and ends trimmed.
std::string content_hash(std::string_view prompt);

// Checks, without opening it through SQLite, that `path` is absent, empty, or begins with the SQLite magic.
// Throws InputError otherwise ("PATH: not a distill store: ..."). Pure check; never writes.
void check_store_header(const std::string& path, OpenMode mode);

class Store {
 public:
  static std::unique_ptr<Store> open(const std::string& path, OpenMode mode);

  Db& db() { return *db_; }
  const std::string& path() const { return path_; }
  // Opened read-only: the file or its folder is not writable here. Reads work; a write is an InputError.
  bool read_only() const { return read_only_; }
  // Read as it stood when opened (a read-only folder with no -wal: no locks, no later commits seen).
  bool snapshot() const { return snapshot_; }

  // Runs: begin_run inserts status 'running'; finish_run sets 'ok' or 'failed' and the time.
  // begin_run first marks 'failed' the 'running' rows of this host whose process is gone (killed runs).
  std::int64_t begin_run(const std::string& kind, const std::string& config_toml);
  void finish_run(std::int64_t run_id, bool ok);
  // finish_run(run_id, false) for a catch block: a failure of the store itself is swallowed, so the error being
  // handled is the one reported.
  void fail_run(std::int64_t run_id) noexcept;
  // Whether a 'running' row's process may still be at work: on this host, its pid is alive; on another host,
  // always (it cannot be told from here).
  bool run_is_live(std::int64_t run_id);
  // Takes over an unfinished run for this process (status 'running', this host and pid), atomically; false
  // when it is finished or still live.
  bool claim_run(std::int64_t run_id);
  // A run that is over as it is written (status 'ok'), inside the caller's transaction: a failure after it
  // rolls the run row back together with the work.
  std::int64_t insert_finished_run(const std::string& kind, const std::string& config_toml);

  // Inserts problems in one transaction (a repeated content hash is skipped; any other constraint fails). A run
  // row of the given kind is written in the same transaction, so a failure leaves no trace at all.
  // `progress`, when set, is called with the number of rows done so far (for a progress bar).
  InsertResult insert_problems(const std::vector<ProblemRow>& rows, const std::string& run_kind,
                               const std::string& config_toml,
                               const std::function<void(std::size_t)>& progress = {});

  StoreStats stats();

  // Calls fn(text) for every prompt, solution and completion in the store, for tokenizer training.
  // Problems of the splits in `exclude_splits` (and their samples) are skipped.
  void for_each_text(const std::vector<std::string>& exclude_splits,
                     const std::function<void(const std::string&)>& fn);

 private:
  Store(std::string path, std::unique_ptr<Db> db) : path_(std::move(path)), db_(std::move(db)) {}
  void mark_dead_runs();  // inside the caller's transaction
  static void check_tables(Db& db, const std::string& path);  // InputError naming a table schema.sql has and db lacks
  std::string path_;
  std::unique_ptr<Db> db_;
  bool read_only_ = false, snapshot_ = false;
};

std::string now_iso8601();

}  // namespace distill::dataset
