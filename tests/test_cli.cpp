// tests/test_cli.cpp: the real build/bin/distill on temp directories: exit codes, messages, --config,
// --json, and that bad input leaves files untouched.
#include <signal.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "common/errors.h"
#include "common/sha256.h"
#include "tests/helpers.h"
#include "test_paths.h"

using namespace distill;
using test::run_distill;
using test::TempDir;

namespace {
nlohmann::json stats_json(const std::string& db) {
  auto r = run_distill({"data", "stats", "--db", db, "--json"});
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}
}  // namespace

TEST_CASE("cli: a demo stopped by SIGINT continues with --resume and ends as an uninterrupted demo does") {
  TempDir d;
  auto demo = [&](const std::string& dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"demo", "--workdir", dir, "--train-n", "300", "--eval-n", "40", "--gen-limit", "80",
                                  "--max-tokens", "48", "--steps", "80", "--eval-samples", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto resume_refused = run_distill(demo(d / "none", {"--resume"}));
  CHECK(resume_refused.code == 2);
  CHECK_THAT(resume_refused.err, Catch::Contains("holds no demo to continue"));
  CHECK_FALSE(std::filesystem::exists(d / "none"));

  // Stopped in the student's training, once its first 50 steps are in the store.
  const int pid = test::spawn_distill(demo(d / "cut"), d / "cut.err");
  const std::string rows = "SELECT count(*) FROM train_steps s JOIN runs r ON r.id = s.run_id WHERE r.config_toml LIKE '%/student\"%'";
  // (a generous wait: on a loaded machine the steps before training take long, and an early signal stops another step)
  const int code = test::signal_when(pid, [&] { return test::query_scalar(d / "cut/store.db", rows).value_or(0) >= 50; }, SIGINT, 200);
  const auto err = test::read_text(d / "cut.err");
  INFO(err);
  CHECK(code == 130);
  CHECK_THAT(err, Catch::Contains("demo: stopped during step 10 of 17 (`train`)") && Catch::Contains("--resume"));
  CHECK_FALSE(std::filesystem::exists(d / "cut/student/model.safetensors"));

  auto other = run_distill(demo(d / "cut", {"--resume", "--seed", "2"}));  // other options: refused, nothing touched
  CHECK(other.code == 2);
  CHECK_THAT(other.err, Catch::Contains("was started with other options: its step 1 was"));
  auto resumed = run_distill(demo(d / "cut" + "/./", {"--resume"}));  // the same folder, spelled otherwise
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK_THAT(resumed.out, Catch::Contains("demo: resuming") && Catch::Contains("after 9 of 17 steps") &&
                              Catch::Contains("--out " + (d / "cut/student") + " --steps 80") && Catch::Contains("--resume"));
  auto full = run_distill(demo(d / "full"));
  REQUIRE(full.code == 0);
  auto summary = [](const std::string& out) { return out.substr(out.find("demo summary"), out.find("demo: done") - out.find("demo summary")); };
  CHECK(summary(resumed.out) == summary(full.out));
  CHECK(sha256_file_hex(d / "cut/student/model.safetensors") == sha256_file_hex(d / "full/student/model.safetensors"));
  CHECK(nlohmann::json::parse(test::read_text(d / "cut/demo-state.json"))["done"] == 17);
  // It ends with the student exported for transformers (sampling as evaluated) and for llama.cpp.
  CHECK(std::filesystem::exists(d / "full/student-hf/tokenizer.json"));
  CHECK(std::filesystem::exists(d / "full/student.gguf"));
  CHECK_THAT(test::read_text(d / "full/student-hf/generation_config.json"), Catch::Contains("\"temperature\": 0.6"));
}

TEST_CASE("cli: --version names distill, LibTorch, CUDA and threads") {
  auto r = run_distill({"--version"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("distill 0.") && Catch::Contains("libtorch 2.11") &&
                        Catch::Contains("cuda: ") && Catch::Contains("threads: "));
}

TEST_CASE("cli: usage errors exit 2, help exits 0 and lists only real subcommands") {
  CHECK(run_distill({}).code == 2);
  CHECK(run_distill({"frobnicate"}).code == 2);
  CHECK(run_distill({"data", "synth", "--no-such-flag"}).code == 2);
  auto h = run_distill({"--help"});
  CHECK(h.code == 0);
  CHECK_THAT(h.out, Catch::Contains("data") && Catch::Contains("tokenizer") && Catch::Contains("demo"));
  auto missing = run_distill({"data", "synth"});
  CHECK(missing.code == 2);
  CHECK_THAT(missing.err, Catch::Contains("--db"));
}

TEST_CASE("cli: the store's commands and --help never load LibTorch, which runs in distill-torch") {
  test::TempDir d;
  REQUIRE(run_distill({"data", "synth", "--db", d / "s.db", "--n", "4"}).code == 0);
  // The dynamic loader names every library it maps (LD_DEBUG=files), dlopen()ed ones included.
  using Args = std::vector<std::string>;
  for (const Args& args : {Args{"data", "stats", "--db", d / "s.db"}, Args{"--help"}, Args{"data", "list", "--db", d / "s.db"},
                           Args{"compare", "--help"}, Args{"data", "review", "--help"}, Args{"runs", "list", "--db", d / "s.db"},
                           Args{"studio", "--help"}}) {
    auto r = run_distill(args, {"LD_DEBUG=files"});
    INFO(args[0] << " " << args.back());
    CHECK(r.code == 0);
    CHECK_THAT(r.err, Catch::Contains("libsqlite3"));
    CHECK(r.err.find("libtorch") == std::string::npos);
    CHECK(r.err.find("libc10") == std::string::npos);
  }
  // A LibTorch command runs in distill-torch, with the same arguments; --help lists it either way.
  auto g = run_distill({"generate", "--help"}, {"LD_DEBUG=files"});
  CHECK(g.code == 0);
  CHECK_THAT(g.out, Catch::Contains("--teacher"));
  CHECK_THAT(g.err, Catch::Contains("libtorch"));
  CHECK(run_distill({"train", "--no-such-flag"}).code == 2);
  // Without distill-torch beside it, such a command says what is missing, and the store's commands still work.
  std::filesystem::copy_file(DISTILL_BIN, d / "distill");
  auto lone = test::run_binary(d / "distill", {"eval", "--help"});
  CHECK(lone.code == 1);
  CHECK_THAT(lone.err, Catch::Contains("distill-torch"));
  CHECK(test::run_binary(d / "distill", {"data", "stats", "--db", d / "s.db"}).code == 0);
}

TEST_CASE("cli: a README as --db exits 2 saying it is not a distill store, and is left untouched") {
  TempDir d;
  const std::string readme = test::read_text(std::string(DISTILL_SOURCE_DIR) + "/README.md");
  REQUIRE_FALSE(readme.empty());
  test::write_text(d / "README.md", readme);
  for (auto args : std::vector<std::vector<std::string>>{{"data", "stats", "--db", d / "README.md"},
                                                         {"data", "synth", "--db", d / "README.md", "--n", "3"}}) {
    auto r = run_distill(args);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("not a distill store") && Catch::Contains("README.md"));
  }
  CHECK(test::read_text(d / "README.md") == readme);
  CHECK_FALSE(std::filesystem::exists(d / "README.md-wal"));
}

TEST_CASE("cli: a store from a newer schema exits 2 and is left byte-identical") {
  TempDir d;
  REQUIRE(run_distill({"data", "synth", "--db", d / "s.db", "--n", "5"}).code == 0);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((d / "s.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA user_version=99;", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  const auto before = sha256_file_hex(d / "s.db");
  auto r = run_distill({"data", "synth", "--db", d / "s.db", "--n", "5", "--seed", "9"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("schema version 99") && Catch::Contains("newer"));
  CHECK(run_distill({"data", "stats", "--db", d / "s.db"}).code == 2);
  CHECK(sha256_file_hex(d / "s.db") == before);
}

TEST_CASE("cli: a malformed JSONL line exits 2 naming file:line and imports nothing") {
  TempDir d;
  REQUIRE(run_distill({"data", "synth", "--db", d / "s.db", "--n", "4"}).code == 0);
  test::write_text(d / "gsm.jsonl",
                   "{\"question\": \"q1\", \"answer\": \"a\\n#### 1\"}\n"
                   "{\"question\": \"q2\", \"answer\": \"a\\n#### 2\"}\n"
                   "{\"question\": \"q3\", \"answer\": \"a\\n#### 3\"\n");
  auto r = run_distill({"data", "import", "--db", d / "s.db", "--format", "gsm8k", d / "gsm.jsonl"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("gsm.jsonl:3:"));
  auto j = stats_json(d / "s.db");
  CHECK(j["problems"] == 4);
  CHECK(j["runs"] == 1);
  // bad UTF-8, into a store that does not exist yet: nothing is created
  test::write_text(d / "bad.jsonl", "{\"prompt\": \"ok\", \"answer\": \"1\"}\n{\"prompt\": \"\xC3\x28\", \"answer\": \"1\"}\n");
  auto u = run_distill({"data", "import", "--db", d / "new.db", "--format", "jsonl", d / "bad.jsonl"});
  CHECK(u.code == 2);
  CHECK_THAT(u.err, Catch::Contains("bad.jsonl:2: invalid UTF-8"));
  CHECK_FALSE(std::filesystem::exists(d / "new.db"));
  // and a good file imports
  test::write_text(d / "gsm.jsonl", "{\"question\": \"q1\", \"answer\": \"a\\n#### 1\"}\n");
  auto ok = run_distill({"data", "import", "--db", d / "s.db", "--format", "gsm8k", d / "gsm.jsonl", "--split", "gsm8k-test"});
  CHECK(ok.code == 0);
  CHECK(stats_json(d / "s.db")["problems_by_split"]["gsm8k-test"] == 1);
}

TEST_CASE("cli: --config supplies options, flags override it, unknown keys exit 2 naming the key") {
  TempDir d;
  test::write_text(d / "synth.toml", "db = \"" + (d / "s.db") + "\"\ntask = \"word\"\nn = 7\nsplit = \"train\"\nseed = 3\n");
  auto r = run_distill({"data", "synth", "--config", d / "synth.toml", "--n", "3"});
  REQUIRE(r.code == 0);
  auto j = stats_json(d / "s.db");
  CHECK(j["problems"] == 3);  // the flag won
  CHECK(j["problems_by_source"]["synth:word"] == 3);  // the file's task was used
  // the resolved config is stored with the run
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((d / "s.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT config_toml FROM runs", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const std::string cfg = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  CHECK_THAT(cfg, Catch::Contains("task = \"word\"") && Catch::Contains("n = 3") && Catch::Contains("seed = 3"));

  test::write_text(d / "bad.toml", "db = \"x.db\"\nnum_problems = 5\n");
  auto bad = run_distill({"data", "synth", "--config", d / "bad.toml"});
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("unknown key 'num_problems'") && Catch::Contains("bad.toml"));
  CHECK_FALSE(std::filesystem::exists(d / "x.db"));

  test::write_text(d / "syntax.toml", "db = \"x.db\"\nn = = 5\n");
  auto syn = run_distill({"data", "synth", "--config", d / "syntax.toml"});
  CHECK(syn.code == 2);
  CHECK_THAT(syn.err, Catch::Contains("syntax.toml:2:"));

  test::write_text(d / "type.toml", "db = \"x.db\"\nn = \"many\"\n");
  auto typ = run_distill({"data", "synth", "--config", d / "type.toml"});
  CHECK(typ.code == 2);
  CHECK_THAT(typ.err, Catch::Contains("'n'"));

  test::write_text(d / "flag.toml", "db = \"" + (d / "s.db") + "\"\njson = true\n");
  auto fl = run_distill({"data", "stats", "--config", d / "flag.toml"});
  CHECK(fl.code == 0);
  CHECK(nlohmann::json::parse(fl.out)["problems"] == 3);
}

TEST_CASE("cli: synth reruns add nothing, stats --json counts by split and difficulty") {
  TempDir d;
  const std::vector<std::string> args = {"data", "synth", "--db", d / "s.db", "--task", "all", "--n", "300",
                                         "--difficulty", "2-3", "--seed", "4"};
  REQUIRE(run_distill(args).code == 0);
  const auto n1 = stats_json(d / "s.db")["problems"].get<int>();
  auto again = run_distill(args);
  REQUIRE(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains(" 0 new"));
  auto j = stats_json(d / "s.db");
  CHECK(j["problems"] == n1);
  CHECK(n1 > 250);
  CHECK(j["problems_by_split_difficulty"]["train"]["2"].get<int>() + j["problems_by_split_difficulty"]["train"]["3"].get<int>() == n1);
  CHECK(j["runs_by_kind"]["data synth"] == 2);
  CHECK(run_distill({"data", "synth", "--db", d / "s.db", "--difficulty", "0-9"}).code == 2);
  CHECK(run_distill({"data", "synth", "--db", d / "s.db", "--task", "nope"}).code == 2);
}

TEST_CASE("cli: tokenizer train and encode --json, a runtime failure exits 1") {
  TempDir d;
  REQUIRE(run_distill({"data", "synth", "--db", d / "s.db", "--task", "all", "--n", "400", "--difficulty", "1-5"}).code == 0);
  auto t = run_distill({"tokenizer", "train", "--db", d / "s.db", "--out", d / "tok", "--vocab-size", "400"});
  REQUIRE(t.code == 0);
  CHECK(std::filesystem::exists(d / "tok/tokenizer.model"));
  auto e = run_distill({"tokenizer", "encode", "--dir", d / "tok", "--json", "<think>\n12+3=15"});
  REQUIRE(e.code == 0);
  auto j = nlohmann::json::parse(e.out);
  CHECK(j["pieces"][0] == "<think>");
  CHECK(j["pieces"][1] == "\n");
  CHECK(j["pieces"][2] == "1");
  CHECK(j["pieces"][3] == "2");
  CHECK(run_distill({"tokenizer", "encode", "--dir", d / "missing", "x"}).code == 2);
  auto fail = run_distill({"tokenizer", "train", "--db", d / "s.db", "--out", "/proc/distill-cannot-write-here"});
  CHECK(fail.code == 1);
  auto runs = stats_json(d / "s.db")["runs_by_kind"];
  CHECK(runs["tokenizer train"] == 2);  // the failed run is recorded too (as failed)
}

TEST_CASE("cli: demo runs the embedded pipeline end to end in a work directory") {
  // A small instance of the real thing: every stage runs, as the commands a user would type.
  TempDir d;
  const std::vector<std::string> small = {"demo", "--workdir", d / "demo", "--train-n", "300", "--eval-n", "40",
                                          "--gen-limit", "40", "--samples", "2", "--max-tokens", "48", "--steps", "4",
                                          "--eval-samples", "1"};
  auto r = run_distill(small);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  for (const char* step : {"$ distill data synth", "$ distill generate", "$ distill data filter", "$ distill data dedup",
                           "$ distill data decontaminate", "$ distill data review", "$ distill data export",
                           "$ distill train", "--target answer", "$ distill eval", "--role baseline", "$ distill compare"})
    CHECK_THAT(r.out, Catch::Contains(step));
  CHECK_THAT(r.out, Catch::Contains("curation funnel: generated 80 -> correct ") && Catch::Contains("demo summary") &&
                        Catch::Contains("one step beyond training") && Catch::Contains("demo: done"));
  auto j = stats_json(d / "demo/store.db");
  CHECK(j["problems_by_split"]["eval"] > 30);
  CHECK(j["samples"] == 80);
  const auto kept = j["samples_by_status"]["kept"].get<std::int64_t>();
  CHECK(kept > 0);
  const auto curated = test::read_text(d / "demo/curated.jsonl");
  CHECK(std::int64_t(std::count(curated.begin(), curated.end(), '\n')) == kept);
  for (const char* f : {"student/model.safetensors", "baseline/model.safetensors", "student/tokenizer.model", "lengths.svg"})
    CHECK(std::filesystem::exists(d / (std::string("demo/") + f)));
  CHECK_THAT(test::read_text(d / "demo/report.html"), Catch::Contains("<svg"));
  CHECK(test::query_scalar(d / "demo/store.db", "SELECT count(DISTINCT m.role) FROM eval_results e JOIN models m ON m.id = e.model_id") == 3);
  // Again in the same directory: it starts afresh. A directory the demo did not make is refused.
  auto again = run_distill(small);
  CHECK(again.code == 0);
  CHECK(stats_json(d / "demo/store.db")["samples"] == 80);
  std::filesystem::create_directories(d / "mine");
  test::write_text(d / "mine/notes.txt", "keep me");
  auto refused = run_distill({"demo", "--workdir", d / "mine"});
  CHECK(refused.code == 2);
  CHECK_THAT(refused.err, Catch::Contains("was not made by `distill demo`"));
  CHECK(test::read_text(d / "mine/notes.txt") == "keep me");
}

TEST_CASE("cli: every shipped config in configs/ is accepted by the command its first line names") {
  TempDir d;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(DISTILL_SOURCE_DIR) + "/configs"))
    if (e.path().extension() == ".toml") files.push_back(e.path());
  // synth configs fill the store, tokenizer configs read it, pretrain configs need both
  auto rank = [](const std::filesystem::path& p) {
    const auto t = test::read_text(p.string());
    return t.rfind("# distill data synth", 0) == 0 ? 0 : t.rfind("# distill tokenizer", 0) == 0 ? 1 : 2;
  };
  std::sort(files.begin(), files.end(), [&](const auto& a, const auto& b) {
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
  REQUIRE(files.size() >= 4);
  for (const auto& f : files) {
    const std::string text = test::read_text(f.string());
    INFO(f);
    REQUIRE(text.rfind("# distill ", 0) == 0);
    std::vector<std::string> args;
    std::string line = text.substr(10, text.find('\n') - 10), word;
    for (std::istringstream is(line); is >> word;) {
      if (word == "--config") break;
      args.push_back(word);
    }
    args.insert(args.end(), {"--config", f.string(), "--db", d / "s.db"});
    if (text.find("\nout = ") != std::string::npos) args.insert(args.end(), {"--out", d / ("out-" + f.stem().string())});
    if (args[0] == "pretrain")  // the real config trains for minutes; two steps prove it is accepted
      args.insert(args.end(), {"--tokenizer", d / "out-tokenizer-demo", "--steps", "2", "--eval-n", "4"});
    auto r = run_distill(args);
    INFO(r.err);
    CHECK(r.code == 0);
  }
}

namespace {
// Runs distill as an unprivileged user when the tests run as root (root writes any file, whatever its mode).
test::CliResult run_unprivileged(const std::vector<std::string>& args) {
  if (::geteuid() != 0) return run_distill(args);
  std::vector<std::string> a = {"--reuid=65534", "--regid=65534", "--clear-groups", "--", DISTILL_BIN};
  a.insert(a.end(), args.begin(), args.end());
  return test::run_binary("/usr/bin/setpriv", a);
}
}  // namespace

TEST_CASE("cli: a store whose file or folder is not writable opens read-only: reads work, writes exit 2 saying so") {
  test::TempDir d;
  namespace fs = std::filesystem;
  fs::permissions(d.path, fs::perms::all);  // the unprivileged user reaches it
  const std::string dir = d / "ro", db = dir + "/s.db";
  fs::create_directory(dir);
  REQUIRE(run_distill({"data", "synth", "--db", db, "--n", "6"}).code == 0);
  REQUIRE(run_distill({"data", "stats", "--db", db}).code == 0);  // closed cleanly: no -wal left
  auto before = test::read_text(db);
  for (const char* which : {"folder", "file"}) {  // folder first: no -shm from an earlier reader helps it
    INFO(which);
    // "file": the store is 0444 in a folder others may write; "folder": the folder is 0555.
    fs::permissions(dir, std::string(which) == "file" ? fs::perms::all : fs::perms::owner_read | fs::perms::owner_exec |
                                                                            fs::perms::group_read | fs::perms::group_exec |
                                                                            fs::perms::others_read | fs::perms::others_exec);
    fs::permissions(db, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    auto st = run_unprivileged({"data", "stats", "--db", db, "--json"});
    CHECK(st.code == 0);
    CHECK_THAT(st.out, Catch::Contains("\"problems\""));
    CHECK(run_unprivileged({"data", "list", "--db", db}).code == 0);
    auto w = run_unprivileged({"data", "synth", "--db", db, "--n", "3", "--seed", "9"});
    CHECK(w.code == 2);
    CHECK_THAT(w.err, Catch::Contains("s.db: the store is read-only here"));
    CHECK(test::read_text(db) == before);
  }
  fs::permissions(dir, fs::perms::all);
  fs::permissions(db, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  // A read-only folder holding a -wal with commits whose -shm index could not be written: refused, never read stale.
  const std::string frozen = d / "frozen";
  fs::create_directory(frozen);
  {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "PRAGMA wal_autocheckpoint = 0; UPDATE problems SET answer = 'changed' WHERE id = 1;", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
    fs::copy_file(db, frozen + "/s.db");
    fs::copy_file(db + "-wal", frozen + "/s.db-wal");  // the commit lives only here until a checkpoint
    sqlite3_close(h);
  }
  fs::permissions(frozen, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  auto stale = run_unprivileged({"data", "stats", "--db", frozen + "/s.db"});
  CHECK(stale.code == 2);
  CHECK_THAT(stale.err, Catch::Contains("s.db-wal holds commits"));
  fs::permissions(frozen, fs::perms::all);
}

TEST_CASE("cli: --config files in the forms editors write are read, and shapes toml++ mishandles are refused") {
  std::string db, name;
  int seed = 0;
  auto apply = [&](std::string_view text) {  // a fresh command each time: a value set once counts as given
    CLI::App app("t");
    app.add_option("--db", db);
    app.add_option("--name", name);
    app.add_option("--seed", seed);
    distill::cli::apply_config_text(app, text, "c.toml");
  };
  // a byte-order mark, CRLF, comments with accents, a quoted key, a last line of spaces with no newline
  apply("\xEF\xBB\xBF# réglages\r\ndb = \"/tmp/é.db\"  # là\r\n\"seed\" = 7\r\n   ");
  CHECK(db == "/tmp/é.db");
  CHECK(seed == 7);
  // multi-line strings: a line-ending backslash, and a string ending in one of its own quotes
  apply("name = \"\"\"a \\\n   b \"c\"\"\"\"\n");
  CHECK(name == "a b \"c\"");
  apply("name = '''x''''\n");
  CHECK(name == "x'");
  // refused with line and column before toml++ reads them (its 3.3.0 reaches undefined behaviour on some)
  const std::pair<const char*, const char*> bad[] = {
      {"seed = 1\xc3\xa9\n", "c.toml:1:9: invalid config: unexpected text after the value"},
      {"seed = 1\nname = \"a\\\xc3\xa9\"\n", "c.toml:2:10: invalid config: a non-ASCII character after a backslash"},
      {"[table]\n", "c.toml:1:1: invalid config: a table"},
      {"seed = [1, 2]\n", "c.toml:1:8: invalid config: an array or inline table"},
      {"name = \"open\n", "c.toml:1:13: invalid config: a string that does not end"},
      {"name = \"\\", "c.toml:1:10: invalid config: a string that does not end"},
      {"seed 5\n", "c.toml:1:6: invalid config: expected '=' after the key"},
  };
  for (const auto& [text, message] : bad) {
    INFO(text);
    CHECK_THROWS_WITH(apply(text), Catch::StartsWith(message));
  }
}
