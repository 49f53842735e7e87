// tests/test_bad_input.cpp: bad input to train, eval, generate, compare and demo, run through the real binary on a
// real store: exit code 2, a message that names the flag, file or key, and nothing left behind (no run row, no
// model row, no output directory). Also the store itself: a sample row that breaks a constraint fails loudly
// instead of vanishing in an INSERT OR IGNORE.
#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/utf8.h"
#include "dataset/samples.h"
#include "dataset/store.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {

const std::string kTeacher = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";

double count(const std::string& db, const std::string& table) {
  return test::query_scalar(db, "SELECT count(*) FROM " + table).value_or(-1);
}

// Runs distill, expects exit 2 with `needle` in its error message.
void refused(const std::vector<std::string>& args, const std::string& needle) {
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  INFO("distill " << cmd);
  const auto r = test::run_distill(args);
  INFO("stderr: " << r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find(needle) != std::string::npos);
}

// A store with eval problems, and train problems with a few of the teacher's completions kept.
std::string store_with_kept_samples(const test::TempDir& d) {
  const auto db = d / "s.db";
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--split", "train", "--difficulty", "1-2",
                             "--n", "12", "--seed", "1"}).code == 0);
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--split", "eval", "--difficulty", "1-2",
                             "--n", "6", "--seed", "2"}).code == 0);
  REQUIRE(test::run_distill({"generate", "--db", db, "--teacher", kTeacher, "--samples", "1", "--max-tokens", "48",
                             "--batch", "12"}).code == 0);
  REQUIRE(test::run_distill({"data", "review", "--db", db, "--all-pending", "--accept", "--reason", "test"}).code == 0);
  return db;
}

}  // namespace

TEST_CASE("bad input: train names the flag out of range, a bad --out or a broken checkpoint, and leaves no run behind") {
  test::TempDir d;
  const auto db = store_with_kept_samples(d);
  const double runs = count(db, "runs");
  const auto out = d / "st";
  // train with small defaults, each overridable: {"--steps", "4"} replaces --steps 2
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"train", "--db", db, "--out", out};
    for (const auto& [flag, value] : {std::pair{"--steps", "2"}, {"--max-seq-len", "128"}, {"--batch-tokens", "256"}})
      if (std::find(extra.begin(), extra.end(), flag) == extra.end()) a.insert(a.end(), {flag, value});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  refused(with({"--lr", "nan"}), "--lr nan");
  refused(with({"--lr", "-1"}), "--lr -1");
  refused(with({"--vocab-chunk", "-4"}), "--vocab-chunk -4");
  refused(with({"--min-lr-ratio", "2"}), "--min-lr-ratio 2");
  refused(with({"--val-fraction", "-0.1"}), "--val-fraction");
  refused(with({"--position-stretch", "-0.1"}), "--position-stretch -0.1");
  refused(with({"--average-last", "-1"}), "--average-last -1");
  refused(with({"--average-last", "3"}), "--average-last 3: expected <= --steps (2)");
  refused(with({"--grad-accum", "0"}), "--grad-accum 0");
  refused(with({"--batch-tokens", "64"}), "--batch-tokens 64");
  refused(with({"--seed", "-1"}), "--seed");
  refused(with({"--device", "tpu"}), "--device 'tpu'");
  refused(with({"--split", "nosuch"}), "split 'nosuch'");
  refused({"train", "--db", db, "--out", out, "--max-seq-len", "4096", "--batch-tokens", "4096"},
          "max_position_embeddings");
  test::write_text(d / "afile", "x");
  refused({"train", "--db", db, "--out", d / "afile"}, "not a directory");
  refused(with({"--resume"}), "does not exist: no run to continue there");
  CHECK(count(db, "runs") == runs);
  CHECK_FALSE(fs::exists(out));

  // A real checkpoint, then broken copies of it: each refused before a run row is written.
  REQUIRE(test::run_distill(with({"--steps", "4", "--stop-after", "2"})).code == 0);
  const auto ck = out + "/checkpoint-2";
  REQUIRE(fs::exists(ck + "/optimizer.safetensors"));
  const double after = count(db, "runs");
  const auto good_state = test::read_text(ck + "/trainer_state.json");
  const auto resume = with({"--steps", "4", "--stop-after", "2", "--resume"});
  test::write_text(ck + "/trainer_state.json", "{\"step\": 2");
  refused(resume, "trainer_state.json: not valid JSON");
  test::write_text(ck + "/trainer_state.json", "{\"step\": 3, \"tokens\": 1}");
  refused(resume, "records step 3 but sits in checkpoint-2/");
  test::write_text(ck + "/trainer_state.json", good_state);
  fs::copy_file(ck + "/optimizer.safetensors", d / "opt.bak");
  fs::copy_file(ck + "/model.safetensors", ck + "/optimizer.safetensors", fs::copy_options::overwrite_existing);
  refused(resume, "is not a moment or step count of any parameter");
  CHECK(count(db, "runs") == after);
  fs::copy_file(d / "opt.bak", ck + "/optimizer.safetensors", fs::copy_options::overwrite_existing);
  CHECK(test::run_distill(resume).code == 0);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE status != 'ok'") == 0);
}

TEST_CASE("bad input: eval and generate refuse bad sampling options, batch sizes and devices before writing anything") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--split", "eval", "--n", "4"}).code == 0);
  const double runs = count(db, "runs");
  const std::vector<std::string> ev = {"eval", "--db", db, "--model", kTeacher};
  const std::vector<std::string> gen = {"generate", "--db", db, "--teacher", kTeacher, "--split", "eval"};
  auto with = [](std::vector<std::string> a, std::vector<std::string> extra) {
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  for (const auto& cmd : {ev, gen}) {
    refused(with(cmd, {"--batch", "0"}), "--batch 0");
    refused(with(cmd, {"--batch", "-1"}), "--batch -1");
    refused(with(cmd, {"--temperature", "nan"}), "--temperature nan");
    refused(with(cmd, {"--temperature", "-1"}), "--temperature -1");
    refused(with(cmd, {"--top-p", "1.5"}), "--top-p 1.5");
    refused(with(cmd, {"--max-tokens", "0"}), "--max-tokens 0");
    refused(with(cmd, {"--limit", "-1"}), "--limit -1");
    refused(with(cmd, {"--device", "cuda:x"}), "--device 'cuda:x'");
    refused(with(cmd, {"--seed", "-3"}), "--seed");
  }
  refused(with(gen, {"--topk-logprobs", "100000"}), "--topk-logprobs 100000");
  refused(with(gen, {"--top-k", "-1"}), "--top-k -1");
  refused(with(gen, {"--min-p", "2"}), "--min-p 2");
  refused(with(gen, {"--commit-every", "0"}), "--commit-every 0");
  refused({"generate", "--db", db, "--teacher", kTeacher, "--split", "nosuch"}, "split 'nosuch'");
  CHECK(count(db, "runs") == runs);
  CHECK(count(db, "models") == 0);

  // A model keeps the role it was stored with: eval without --role takes it, a different --role is refused.
  REQUIRE(test::run_distill(with(ev, {"--role", "teacher", "--samples", "1", "--max-tokens", "40", "--limit", "2"})).code == 0);
  CHECK(test::run_distill(with(ev, {"--samples", "1", "--max-tokens", "40", "--limit", "2"})).code == 0);
  refused(with(ev, {"--role", "student"}), "is in the store as a teacher");
  CHECK(test::query_scalar(db, "SELECT count(*) FROM models WHERE role = 'teacher'") == 1);
  CHECK(count(db, "models") == 1);
}

TEST_CASE("bad input: --config files, compare --html and demo options are checked before any work") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--split", "eval", "--n", "4"}).code == 0);
  // --config: missing, a directory, and a value of the wrong type even where a flag overrides it
  refused({"compare", "--db", db, "--config", d / "nope.toml"}, "--config " + d / "nope.toml" + ": no such file");
  refused({"compare", "--db", db, "--config", d.path}, "not a regular file");
  test::write_text(d / "bad.toml", "seed = \"two\"\n");
  refused({"compare", "--db", db, "--config", d / "bad.toml", "--seed", "3"}, "bad.toml: key 'seed'");
  test::write_text(d / "ok.toml", "seed = 5  # réglé\n");
  CHECK(test::run_distill({"compare", "--db", db, "--config", d / "ok.toml", "--seed", "3"}).err.find("key") ==
        std::string::npos);
  // non-ASCII outside strings and comments (toml++ 3.3.0 reaches undefined behaviour on some: fuzz/regressions)
  test::write_text(d / "accent.toml", "seed = 5\nlimit = 1\xc3\xa9\n");
  refused({"compare", "--db", db, "--config", d / "accent.toml"}, "accent.toml:2:10: invalid config: unexpected text after the value");
  // compare --html: a folder, or a file in a folder that does not exist
  refused({"compare", "--db", db, "--html", d.path}, "is a directory");
  refused({"compare", "--db", db, "--html", d / "no/r.html"}, "does not exist");
  // demo: each option and the teacher, before the work directory exists
  const auto w = d / "demo";
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--steps", "0"}, {"--train-n", "0"}, {"--eval-n", "-1"}, {"--samples", "0"}, {"--max-tokens", "0"},
           {"--eval-samples", "0"}, {"--eval-limit", "-1"}, {"--gen-limit", "-1"}, {"--position-stretch", "1.5"},
           {"--average-last", "-2"}, {"--average-last", "99999"}, {"--weight-decay", "-1"}})
    refused({"demo", "--workdir", w, flag, value}, flag + " " + value);
  refused({"demo", "--workdir", w, "--precision", "fp16"}, "--precision 'fp16': expected auto, bf16 or fp32");
  refused({"demo", "--workdir", w, "--precision", "bf16"}, "bf16 autocast is for CUDA");  // the demo's device: cpu
  refused({"demo", "--workdir", w, "--teacher", d.path}, "no config.json");
  refused({"demo", "--workdir", d / "ok.toml"}, "not a directory");
  CHECK_FALSE(fs::exists(w));
}

TEST_CASE("store: a sample that breaks a constraint fails instead of being skipped, while a repeated key is skipped") {
  test::TempDir d;
  auto s = dataset::Store::open(d / "s.db", dataset::OpenMode::create);
  dataset::ProblemRow p;
  p.source = "test";
  p.split = "train";
  p.prompt = "Start with 3. Add 5. What is the result?";
  p.answer = "8";
  s->insert_problems({p}, "test", "");
  const auto model_id = dataset::upsert_model(*s, {"teacher", "/m", "LlamaForCausalLM", 1, 1, std::string(64, 'a')});
  dataset::SampleRow r;
  r.problem_id = 1;
  r.model_id = model_id;
  r.run_id = s->begin_run("generate", "");
  r.temperature = 0.6;
  r.completion = "<think>\n3+5=8\n</think>\n\\boxed{8}";
  r.verdict = "correct";
  r.finish_reason = "eos";
  REQUIRE(dataset::insert_samples(*s, {r}) == 1);
  CHECK(dataset::insert_samples(*s, {r}) == 0);  // the resume key: a rerun adds nothing
  auto bad = r;
  bad.sample_idx = 1;
  bad.temperature = std::nan("");  // binds as NULL: NOT NULL fails
  CHECK_THROWS(dataset::insert_samples(*s, {bad}));
  bad.temperature = 0.6;
  bad.verdict = "maybe";  // CHECK constraint
  CHECK_THROWS(dataset::insert_samples(*s, {bad}));
  CHECK(test::query_scalar(d / "s.db", "SELECT count(*) FROM samples") == 1);
}

TEST_CASE("bad input: data, tokenizer and pretrain commands refuse outputs over the store, special files and bad values") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--split", "train", "--n", "20"}).code == 0);
  const double problems = count(db, "problems");
  // Outputs that would destroy the store, or replace a device or a pipe, are refused; a link is written through.
  refused({"data", "export", "--db", db, "--status", "pending", "--out", db}, "writing there would destroy it");
  refused({"data", "stats", "--db", db, "--svg", db}, "writing there would destroy it");
  CHECK(count(db, "problems") == problems);
  refused({"data", "export", "--db", db, "--out", "/dev/null"}, "not a regular file");
  refused({"data", "export", "--db", db, "--status", "pending", "--split", "nosuch", "--out", d / "e.jsonl"},
          "no samples are pending in split 'nosuch'; nothing exported");
  CHECK_FALSE(fs::exists(d / "e.jsonl"));
  // An existing export or tokenizer is replaced only on request: it may be the only copy of a curation, or what a
  // model's weights were trained against.
  test::write_text(d / "e.jsonl", "an earlier export\n");
  refused({"data", "export", "--db", db, "--status", "pending", "--out", d / "e.jsonl"}, "exists; name a new file, or pass --force");
  CHECK(test::read_text(d / "e.jsonl") == "an earlier export\n");
  // --force gets past that check (this store has no samples, so the export then stops on that)
  refused({"data", "export", "--db", db, "--status", "pending", "--out", d / "e.jsonl", "--force"}, "nothing exported");
  fs::remove(d / "e.jsonl");
  fs::create_directories(d / "real");
  fs::create_symlink(d / "real/h.svg", d / "link.svg");
  REQUIRE(test::run_distill({"data", "stats", "--db", db, "--svg", d / "link.svg"}).code == 0);
  CHECK(fs::is_symlink(d / "link.svg"));
  CHECK(test::read_text(d / "real/h.svg").find("<svg") != std::string::npos);
  {  // A damaged store (its schema text broken, a byte that is not UTF-8 in it) is bad input naming the file, and
     // the message that quotes the damage is still UTF-8.
    auto bytes = test::read_text(db);
    const auto at = bytes.find("CREATE TABLE problems");
    REQUIRE(at != std::string::npos);
    bytes[bytes.find('(', at)] = '\xff';
    test::write_text(d / "damaged.db", bytes);
    const auto r = test::run_distill({"data", "stats", "--db", d / "damaged.db"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("damaged.db: the SQLite file is damaged"));
    CHECK(distill::is_valid_utf8(r.err));
    // a table renamed by another program: named before any query needs it
    std::filesystem::copy_file(db, d / "renamed.db");
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open((d / "renamed.db").c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "ALTER TABLE train_steps RENAME TO steps_old", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
    refused({"data", "stats", "--db", d / "renamed.db"}, "renamed.db: the store has no table train_steps");
    // a column renamed: named when the first statement that reads it is prepared
    std::filesystem::copy_file(db, d / "column.db");
    REQUIRE(sqlite3_open((d / "column.db").c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "ALTER TABLE samples RENAME COLUMN temperature TO temp", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
    refused({"data", "export", "--db", d / "column.db", "--out", d / "c.jsonl"},
            "column.db: its schema does not match this distill (no such column: s.temperature)");
  }
  // Empty values, folders given as files, positional arguments named in the message.
  refused({"data", "synth", "--db", "", "--n", "5"}, "--db is empty");
  refused({"data", "import", "--db", db, "--format", "jsonl", d.path}, "is a directory");
  refused({"data", "import", "--db", db, "--format", "jsonl"}, "needs the argument file");
  // Values out of range.
  refused({"data", "synth", "--db", db, "--n", "3000000000"}, "--n 3000000000");
  // Integers are plain decimal that fits: CLI11 alone saturated 99999999999999999999 to INT64_MAX and read a
  // leading 0 as octal.
  refused({"data", "review", "--db", db, "99999999999999999999", "--accept"}, "99999999999999999999 is out of range");
  refused({"data", "synth", "--db", db, "--n", "010"}, "--n: expected a whole decimal number, got 010");
  refused({"data", "synth", "--db", db, "--n", "5", "--seed", "18446744073709551616"}, "--seed: 18446744073709551616 is out of range");
  refused({"data", "synth", "--db", db, "--difficulty", "99999999999"}, "is not a level or a range");
  refused({"data", "decontaminate", "--db", db, "--max-df", "1.5"}, "--max-df");
  refused({"data", "filter", "--db", db, "--r1", "--max-repetition", "nan"}, "--max-repetition");
  // A split with no problem at all is a typo: the curation passes name the splits there are instead of passing
  // over zero samples.
  const double actions = count(db, "curation_actions");
  refused({"data", "filter", "--db", db, "--r1", "--split", "trian", "--apply"}, "--split 'trian'");
  refused({"data", "dedup", "--db", db, "--split", "trian", "--apply"}, "its splits: train");
  refused({"data", "decontaminate", "--db", db, "--split", "trian", "--against", "train", "--apply"}, "--split 'trian'");
  CHECK(count(db, "curation_actions") == actions);
  CHECK(test::run_distill({"data", "filter", "--db", db, "--r1", "--split", "train"}).code == 0);
  refused({"data", "list", "--db", db, "--search", "\"unterminated"}, "not a valid full-text query");
  CHECK(test::run_distill({"data", "list", "--db", db, "--search", "\"unterminated"}).err.find("SELECT") ==
        std::string::npos);
  // tokenizer: a file as --out, a vocabulary too small for the text's characters
  refused({"tokenizer", "train", "--db", db, "--out", db}, "exists and is not a directory");
  refused({"tokenizer", "train", "--db", db, "--out", d / "tok", "--vocab-size", "300"}, "distinct characters");
  CHECK_FALSE(fs::exists(d / "tok/tokenizer.model"));
  // pretrain: each refused before a run row
  REQUIRE(test::run_distill({"tokenizer", "train", "--db", db, "--out", d / "tok", "--vocab-size", "400"}).code == 0);
  const auto tok_bytes = test::read_text(d / "tok/tokenizer.model");
  refused({"tokenizer", "train", "--db", db, "--out", d / "tok", "--vocab-size", "500"}, "already holds a tokenizer.model");
  CHECK(test::read_text(d / "tok/tokenizer.model") == tok_bytes);
  REQUIRE(test::run_distill({"tokenizer", "train", "--db", db, "--out", d / "tok", "--vocab-size", "400", "--force"}).code == 0);
  const double runs = count(db, "runs");
  const std::vector<std::string> pre = {"pretrain", "--db", db, "--tokenizer", d / "tok", "--out", d / "t", "--steps", "2"};
  auto with = [&](std::vector<std::string> extra) {
    auto a = pre;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  refused(with({"--lr", "nan"}), "--lr nan");
  refused(with({"--min-lr-ratio", "2"}), "--min-lr-ratio 2");
  refused(with({"--eval-n", "-1"}), "--eval-n -1");
  refused(with({"--threads", "100000"}), "--threads 100000");
  refused(with({"--aux-coef", "nan"}), "--aux-coef");
  refused(with({"--model-type", "mixtral"}), "--shared-experts 0");
  refused({"pretrain", "--db", db, "--tokenizer", d / "tok", "--out", db, "--steps", "2"}, "not a directory");
  CHECK(count(db, "runs") == runs);
  CHECK_FALSE(fs::exists(d / "t"));
}
