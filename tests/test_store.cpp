// tests/test_store.cpp: opening, identifying and refusing stores; atomic problem inserts; run records.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <catch2/catch.hpp>

#include "common/errors.h"
#include "common/sha256.h"
#include "dataset/store.h"
#include "tests/helpers.h"

using namespace distill;
using namespace distill::dataset;
using distill::test::TempDir;

namespace {
std::int64_t raw_int(const std::string& path, const char* sql) {
  auto v = test::query_scalar(path, sql);
  REQUIRE(v.has_value());
  return std::int64_t(*v);
}
void raw_exec(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}
ProblemRow row(const std::string& prompt, const std::string& answer = "1") {
  ProblemRow r;
  r.source = "test";
  r.split = "train";
  r.prompt = prompt;
  r.answer = answer;
  return r;
}
}  // namespace

TEST_CASE("store: a new store carries the distill id, schema version, WAL and foreign keys") {
  TempDir d;
  auto s = Store::open(d / "s.db", OpenMode::create);
  CHECK(s->db().pragma_int("application_id") == kApplicationId);
  CHECK(s->db().pragma_int("user_version") == kSchemaVersion);
  CHECK(s->db().pragma_int("foreign_keys") == 1);
  auto jm = s->db().prepare("PRAGMA journal_mode");
  REQUIRE(jm.step());
  CHECK(jm.col_text(0) == "wal");
  s.reset();
  CHECK(raw_int(d / "s.db", "PRAGMA application_id") == kApplicationId);
}

TEST_CASE("store: reopening an existing store keeps its data") {
  TempDir d;
  Store::open(d / "s.db", OpenMode::create)->insert_problems({row("p1")}, "test", "");
  auto s = Store::open(d / "s.db", OpenMode::read);
  CHECK(s->stats().problems == 1);
}

TEST_CASE("store: a text file is refused untouched, with a message that says so") {
  TempDir d;
  const std::string readme = "# distill\nThis is a README, not a database.\n";
  test::write_text(d / "README.md", readme);
  for (auto mode : {OpenMode::read, OpenMode::create}) {
    try {
      Store::open(d / "README.md", mode);
      FAIL("expected InputError");
    } catch (const InputError& e) {
      CHECK_THAT(e.what(), Catch::Contains("not a distill store") && Catch::Contains("README.md"));
    }
  }
  CHECK(test::read_text(d / "README.md") == readme);
}

TEST_CASE("store: an SQLite database of another application is refused untouched") {
  TempDir d;
  raw_exec(d / "other.db", "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  const auto before = sha256_file_hex(d / "other.db");
  CHECK_THROWS_WITH(Store::open(d / "other.db", OpenMode::create), Catch::Contains("another application"));
  CHECK(sha256_file_hex(d / "other.db") == before);
}

TEST_CASE("store: a store from a newer schema is refused and left byte-identical") {
  TempDir d;
  Store::open(d / "s.db", OpenMode::create)->insert_problems({row("p")}, "test", "");
  raw_exec(d / "s.db", "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;");
  const auto before = sha256_file_hex(d / "s.db");
  try {
    Store::open(d / "s.db", OpenMode::create);
    FAIL("expected InputError");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("schema version 99") && Catch::Contains("newer"));
  }
  CHECK(sha256_file_hex(d / "s.db") == before);
  CHECK(raw_int(d / "s.db", "PRAGMA user_version") == 99);
}

TEST_CASE("store: read mode needs an existing store and creates nothing") {
  TempDir d;
  CHECK_THROWS_WITH(Store::open(d / "missing.db", OpenMode::read), Catch::Contains("no such store"));
  CHECK_FALSE(std::filesystem::exists(d / "missing.db"));
}

TEST_CASE("store: an empty file becomes a new store in create mode") {
  TempDir d;
  test::write_text(d / "empty.db", "");
  CHECK_THROWS_AS(Store::open(d / "empty.db", OpenMode::read), InputError);
  auto s = Store::open(d / "empty.db", OpenMode::create);
  CHECK(s->db().pragma_int("user_version") == kSchemaVersion);
}

TEST_CASE("store: inserts dedupe by whitespace-normalised content and record the run") {
  TempDir d;
  auto s = Store::open(d / "s.db", OpenMode::create);
  auto r1 = s->insert_problems({row("What is  2+2?"), row("What is 2+2? "), row("other")}, "test", "a = 1\n");
  CHECK(r1.inserted == 2);
  CHECK(r1.duplicates == 1);
  auto r2 = s->insert_problems({row("\nWhat is 2+2?")}, "test", "a = 2\n");
  CHECK(r2.inserted == 0);
  CHECK(content_hash("a  b\n") == content_hash("a b"));
  CHECK(content_hash("a b") != content_hash("ab"));
  auto st = s->stats();
  CHECK(st.problems == 2);
  CHECK(st.runs == 2);
  auto q = s->db().prepare("SELECT config_toml, status FROM runs ORDER BY id");
  REQUIRE(q.step());
  CHECK(q.col_text(0) == "a = 1\n");
  CHECK(q.col_text(1) == "ok");
}

TEST_CASE("store: a failing insert leaves no problems and no run row (one transaction)") {
  TempDir d;
  auto s = Store::open(d / "s.db", OpenMode::create);
  s->insert_problems({row("kept")}, "test", "");
  s->db().exec(
      "CREATE TRIGGER boom BEFORE INSERT ON problems WHEN NEW.prompt = 'boom' "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  CHECK_THROWS_WITH(s->insert_problems({row("a"), row("b"), row("boom"), row("c")}, "test", ""),
                    Catch::Contains("injected failure"));
  auto st = s->stats();
  CHECK(st.problems == 1);
  CHECK(st.runs == 1);
}

TEST_CASE("store: begin_run / finish_run record status and times") {
  TempDir d;
  auto s = Store::open(d / "s.db", OpenMode::create);
  auto id = s->begin_run("tokenizer train", "x = 1\n");
  auto q1 = s->db().prepare("SELECT status, finished_at IS NULL, host <> '', version FROM runs WHERE id = ?");
  q1.bind(1, id);
  REQUIRE(q1.step());
  CHECK(q1.col_text(0) == "running");
  CHECK(q1.col_int(1) == 1);
  CHECK(q1.col_int(2) == 1);
  s->finish_run(id, false);
  auto q2 = s->db().prepare("SELECT status, finished_at IS NOT NULL FROM runs WHERE id = ?");
  q2.bind(1, id);
  REQUIRE(q2.step());
  CHECK(q2.col_text(0) == "failed");
  CHECK(q2.col_int(1) == 1);
}

TEST_CASE("store: foreign keys are enforced") {
  TempDir d;
  auto s = Store::open(d / "s.db", OpenMode::create);
  CHECK_THROWS(s->db().exec("INSERT INTO curation(sample_id, action, actor, at) VALUES (12345, 'accept', 't', 'now')"));
}

TEST_CASE("store: for_each_text skips excluded splits") {
  TempDir d;
  auto s = Store::open(d / "s.db", OpenMode::create);
  auto a = row("train prompt", "1");
  a.solution = "step\n\\boxed{1}";
  auto b = row("eval prompt", "2");
  b.split = "eval";
  s->insert_problems({a, b}, "test", "");
  std::vector<std::string> got;
  s->for_each_text({"eval"}, [&](const std::string& t) { got.push_back(t); });
  CHECK(got == std::vector<std::string>{"train prompt", "step\n\\boxed{1}", "1"});
  got.clear();
  s->for_each_text({}, [&](const std::string& t) { got.push_back(t); });
  CHECK(got.size() == 5);
}

TEST_CASE("store: a 'running' run whose process is gone is marked failed by the next run, a live one is not") {
  TempDir d;
  auto s = Store::open(d / "s.db", OpenMode::create);
  const auto live = s->begin_run("eval", "");
  CHECK(s->run_is_live(live));       // this process
  CHECK_FALSE(s->claim_run(live));   // nobody takes over a live run
  const auto dead = s->begin_run("generate", "");
  const pid_t child = fork();        // a process that is gone by the time it is asked about
  if (child == 0) _exit(0);
  REQUIRE(child > 0);
  waitpid(child, nullptr, 0);
  s->db().exec(("UPDATE runs SET pid = " + std::to_string(child) + " WHERE id = " + std::to_string(dead)).c_str());
  CHECK_FALSE(s->run_is_live(dead));
  s->begin_run("data synth", "");
  CHECK(test::query_scalar(d / "s.db", "SELECT status = 'failed' FROM runs WHERE id = " + std::to_string(dead)) == 1);
  CHECK(test::query_scalar(d / "s.db", "SELECT status = 'running' FROM runs WHERE id = " + std::to_string(live)) == 1);
  CHECK(s->claim_run(dead));  // a failed run can be taken over, and is then this process's
  CHECK(test::query_scalar(d / "s.db", "SELECT status = 'running' AND pid = " + std::to_string(getpid()) +
                                          " FROM runs WHERE id = " + std::to_string(dead)) == 1);
  s->finish_run(dead, true);
  CHECK_FALSE(s->claim_run(dead));  // finished
}
