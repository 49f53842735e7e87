// tests/helpers.h: test utilities: a self-deleting temp directory, running the real distill binary, and the
// byte mutator of the parser tests.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/rng.h"

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
// The same with another binary (a copy of distill elsewhere).
CliResult run_binary(const std::string& bin, const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// Starts build/bin/distill in the background (stdout to /dev/null, stderr to `stderr_path` or /dev/null) and
// returns its pid. `env` entries are KEY=VALUE.
int spawn_distill(const std::vector<std::string>& args, const std::string& stderr_path = "",
                  const std::vector<std::string>& env = {});

// Waits until `ready()` holds (polled every 25 ms, at most `timeout_s`), sends signal `sig` to the process `pid`
// (from spawn_distill) and reaps it. Returns its exit code when it exited, or -N when signal N ended it, so a
// graceful 130 is told apart from a death by SIGINT.
int signal_when(int pid, const std::function<bool()>& ready, int sig, double timeout_s = 60);

// The first column of the first row of `sql` on SQLite file `db`, opened read-only (safe while a writer
// runs: WAL); nullopt if the query fails or returns no row.
std::optional<double> query_scalar(const std::string& db, const std::string& sql);

// Every row of `sql` on `db` (read-only), its columns as text joined by '|' (NULL as "NULL").
std::vector<std::string> query_rows(const std::string& db, const std::string& sql);

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// 1-4 random edits of `s` from `rng`: a bit flipped, a byte set to JSON punctuation, a digit or a UTF-8 lead
// byte, a range cut or repeated, a truncation, a run of digits inserted.
std::string mutate_bytes(std::string s, Rng& rng);

// Runs `parse` on each seed (which must parse) and then on `iterations` mutations of them: each must parse or
// throw InputError; any other exception fails the test, naming the mutation and the input's first bytes.
void survive_mutations(const std::vector<std::string>& seeds, int iterations, std::uint64_t seed,
                       const std::function<void(const std::string&)>& parse);

}  // namespace distill::test
