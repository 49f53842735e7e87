// tests/helpers.cpp: see helpers.h.
#include "tests/helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

#include "common/errors.h"
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
                               const std::vector<std::string>& env, std::string bin = DISTILL_BIN) {
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  ::setenv("DISTILL_QUIET", "1", 1);
  for (const auto& kv : env) {
    auto eq = kv.find('=');
    ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
  }
  std::vector<char*> argv;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(bin.c_str(), argv.data());
  _exit(127);
}
}  // namespace

CliResult run_distill(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  return run_binary(DISTILL_BIN, args, env);
}

CliResult run_binary(const std::string& bin, const std::vector<std::string>& args, const std::vector<std::string>& env) {
  TempDir io;
  const std::string out_path = io / "out", err_path = io / "err";
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0)
    exec_distill(args, ::open("/dev/null", O_RDONLY), ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
                 ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), env, bin);
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

int signal_when(int pid, const std::function<bool()>& ready, int sig, double timeout_s) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!ready() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string mutate_bytes(std::string s, Rng& r) {
  static const std::string specials = std::string("\0\xff\"{}[],:-09eE.\\\n ", 19) + "\xc3\xa9";
  const int n = int(r.uniform(1, 4));
  for (int k = 0; k < n; ++k) {
    const auto size = std::int64_t(s.size());
    const auto at = size ? r.uniform(0, size - 1) : 0;
    switch (r.uniform(0, 5)) {
      case 0:
        if (size) s[std::size_t(at)] = char(s[std::size_t(at)] ^ (1 << r.uniform(0, 7)));
        break;
      case 1:
        if (size) s[std::size_t(at)] = specials[std::size_t(r.uniform(0, std::int64_t(specials.size()) - 1))];
        break;
      case 2:
        if (size) s.erase(std::size_t(at), std::size_t(r.uniform(1, std::min<std::int64_t>(16, size - at))));
        break;
      case 3:
        if (size) s.insert(std::size_t(at), s.substr(std::size_t(at), std::size_t(r.uniform(1, 16))));
        break;
      case 4:
        s.resize(std::size_t(size ? r.uniform(0, size - 1) : 0));
        break;
      default:
        s.insert(std::size_t(at), std::string(std::size_t(r.uniform(1, 20)), char('0' + r.uniform(0, 9))));
    }
  }
  return s;
}

void survive_mutations(const std::vector<std::string>& seeds, int iterations, std::uint64_t seed,
                       const std::function<void(const std::string&)>& parse) {
  for (const auto& s : seeds) REQUIRE_NOTHROW(parse(s));  // the unmutated inputs are valid
  Rng r(seed);
  int errors = 0, parsed = 0;
  for (int i = 0; i < iterations; ++i) {
    const auto input = mutate_bytes(seeds[std::size_t(i) % seeds.size()], r);
    try {
      parse(input);
      ++parsed;
    } catch (const InputError&) {
      ++errors;
    } catch (const std::exception& e) {
      std::string hex;
      for (unsigned char c : input.substr(0, 200)) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
      FAIL("mutation " << i << " threw " << e.what() << " (not an InputError); input starts " << hex);
    }
  }
  INFO(parsed << " parsed, " << errors << " refused");
  CHECK(errors > 0);  // the mutations do reach the checks
}

}  // namespace distill::test
