// tests/helpers.h: test utilities: a self-deleting temp directory and running the real distill binary.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace distill::test {

struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

struct CliResult {
  int code = -1;
  std::string out, err;
};

// Runs build/bin/distill with `args` (no shell), capturing stdout and stderr. `env` entries are KEY=VALUE.
CliResult run_distill(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// Starts build/bin/distill in the background (stdout to /dev/null, stderr to `stderr_path` or /dev/null) and
// returns its pid. `env` entries are KEY=VALUE.
int spawn_distill(const std::vector<std::string>& args, const std::string& stderr_path = "",
                  const std::vector<std::string>& env = {});

// The first column of the first row of `sql` on SQLite file `db`, opened read-only (safe while a writer
// runs: WAL); nullopt if the query fails or returns no row.
std::optional<double> query_scalar(const std::string& db, const std::string& sql);

// Every row of `sql` on `db` (read-only), its columns as text joined by '|' (NULL as "NULL").
std::vector<std::string> query_rows(const std::string& db, const std::string& sql);

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

}  // namespace distill::test
