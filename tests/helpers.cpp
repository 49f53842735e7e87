// tests/helpers.cpp: see helpers.h.
#include "tests/helpers.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "test_paths.h"

namespace distill::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "distill-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::optional<double> query_scalar(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  std::optional<double> v;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return v;
}

std::vector<std::string> query_rows(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  std::vector<std::string> out;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) {
        std::string row;
        for (int i = 0; i < sqlite3_column_count(st); ++i) {
          const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
          row += std::string(t ? t : "NULL") + "|";
        }
        out.push_back(std::move(row));
      }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
// In the child: redirect stdio, set the environment, exec build/bin/distill with `args`. Never returns.
[[noreturn]] void exec_distill(const std::vector<std::string>& args, int in, int out, int err,
                               const std::vector<std::string>& env) {
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  ::setenv("DISTILL_QUIET", "1", 1);
  for (const auto& kv : env) {
    auto eq = kv.find('=');
    ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
  }
  std::vector<char*> argv;
  std::string bin = DISTILL_BIN;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(bin.c_str(), argv.data());
  _exit(127);
}
}  // namespace

CliResult run_distill(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  TempDir io;
  const std::string out_path = io / "out", err_path = io / "err";
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0)
    exec_distill(args, ::open("/dev/null", O_RDONLY), ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
                 ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), env);
  int status = 0;
  waitpid(pid, &status, 0);
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

int spawn_distill(const std::vector<std::string>& args, const std::string& stderr_path,
                  const std::vector<std::string>& env) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    int err = stderr_path.empty() ? null : ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    exec_distill(args, null, null, err, env);
  }
  return pid;
}

}  // namespace distill::test
