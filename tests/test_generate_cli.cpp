// tests/test_generate_cli.cpp: `distill generate` end to end on a real store with a tiny random teacher:
// lineage in the store, reruns add nothing, and a run killed with SIGKILL resumes with no duplicate and no
// gap, giving exactly the samples of an uninterrupted run.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <torch/torch.h>

#include "dataset/synth.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "teacher/generate.h"
#include "teacher/prompt_format.h"
#include "tests/helpers.h"
#include "tests/model_fixtures.h"

using namespace distill;
using test::run_distill;

namespace {

// A store with synthetic problems and a tiny random DeepSeek-style teacher with its tokenizer.
void make_fixture(const test::TempDir& d, int n_problems) {
  dataset::SynthOptions o;
  o.task = "chain";
  o.n = n_problems;
  o.difficulty_min = 1;
  o.difficulty_max = 3;
  auto rows = dataset::synthesize(o);
  dataset::Store::open(d / "s.db", dataset::OpenMode::create)->insert_problems(rows, "test", "");
  std::vector<std::string> texts;
  for (auto& r : rows) texts.push_back(teacher::r1_prompt(r.prompt) + teacher::r1_response_from_solution(*r.solution));
  model::TokenizerTrainOptions to;
  to.vocab_size = 320;
  model::write_tokenizer(d / "tok", model::train_sentencepiece(texts, to));
  auto tk = model::load_tokenizer(d / "tok");
  model::ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = tk->vocab_size();
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.intermediate_size = 48;
  c.kv_lora_rank = 8;
  c.qk_nope_head_dim = 8;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 8;
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 2;
  c.n_shared_experts = 1;
  c.moe_intermediate_size = 16;
  c.first_k_dense_replace = 1;
  c.scoring_func = "sigmoid";
  c.initializer_range = 0.2;
  torch::manual_seed(0);
  model::Transformer m(c);
  model::save_hf_dir(*m, d / "teacher", d / "tok");
}

std::int64_t count(const std::string& db, const char* sql) {
  return std::int64_t(test::query_scalar(db, sql).value_or(-1));
}

std::vector<std::string> sample_rows(const std::string& db) {
  return test::query_rows(db, "SELECT problem_id, sample_idx, seed, completion, verdict, n_tokens, finish_reason "
                              "FROM samples ORDER BY problem_id, sample_idx");
}

}  // namespace

TEST_CASE("generate: samples land with lineage, logprobs and verdicts, and a rerun adds nothing", "[device]") {
  test::TempDir d;
  make_fixture(d, 6);
  const std::vector<std::string> args = {"generate", "--db", d / "s.db", "--teacher", d / "teacher", "--samples", "3",
                                         "--max-tokens", "16", "--limit", "4", "--topk-logprobs", "5", "--batch", "5",
                                         "--device", test::device_flag()};
  auto r = run_distill(args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("12 new samples"));
  const auto db = d / "s.db";
  CHECK(count(db, "SELECT count(*) FROM samples") == 12);
  CHECK(count(db, "SELECT count(*) FROM models WHERE role = 'teacher' AND length(sha256) = 64") == 1);
  CHECK(count(db, "SELECT count(*) FROM samples WHERE completion LIKE '<think>%'") == 12);
  CHECK(count(db, "SELECT count(*) FROM samples WHERE temperature = 0.6 AND top_p = 0.95 AND max_tokens = 16") == 12);
  CHECK(count(db, "SELECT count(*) FROM sample_logprobs l JOIN samples s ON s.id = l.sample_id "
                  "WHERE l.k = 5 AND length(l.blob) = 12 + 8 * 5 * s.n_tokens") == 12);  // dataset/topk.h
  CHECK(count(db, "SELECT count(*) FROM runs WHERE kind = 'generate' AND status = 'ok'") == 1);
  auto again = run_distill(args);
  REQUIRE(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains("0 new samples (12 of 12 already stored)"));
  CHECK(count(db, "SELECT count(*) FROM samples") == 12);
  {  // the same seeds with other settings would keep the old draws and make none: refused, nothing written
    auto hotter = args;
    hotter.insert(hotter.end(), {"--temperature", "0.9"});
    auto h = run_distill(hotter);
    CHECK(h.code == 2);
    CHECK_THAT(h.err, Catch::Contains("12 of the planned samples are stored already") &&
                          Catch::Contains("temperature 0.6") && Catch::Contains("another --seed"));
    for (auto [flag, value] : {std::pair{"--top-k", "5"}, std::pair{"--topk-logprobs", "3"}, std::pair{"--stop", "7"}}) {
      auto other = args;  // settings the sample rows do not hold: read from the config of the run that drew them
      if (auto at = std::find(other.begin(), other.end(), flag); at != other.end()) *(at + 1) = value;
      else other.insert(other.end(), {flag, value});
      auto o = run_distill(other);
      INFO(flag);
      CHECK(o.code == 2);
      CHECK_THAT(o.err, Catch::Contains(std::string(flag).substr(2) + " = ") && Catch::Contains("another --seed"));
    }
    auto lp = run_distill({"generate", "--db", db, "--teacher", d / "teacher", "--samples", "1", "--max-tokens", "16",
                           "--limit", "4", "--seed", "9", "--device", test::device_flag()});
    REQUIRE(lp.code == 0);
    auto want_lp = run_distill({"generate", "--db", db, "--teacher", d / "teacher", "--samples", "1", "--max-tokens", "16",
                                "--limit", "4", "--seed", "9", "--topk-logprobs", "5", "--device", test::device_flag()});
    CHECK(want_lp.code == 2);
    CHECK_THAT(want_lp.err, Catch::Contains("without top-k logprobs"));
    CHECK(count(db, "SELECT count(*) FROM samples") == 16);
  }
  // a stop string ends sequences early and is not stored
  auto st = run_distill({"generate", "--db", db, "--teacher", d / "teacher", "--samples", "1", "--limit", "6",
                         "--max-tokens", "16", "--seed", "5", "--temperature", "0", "--stop", "1", "--stop", "2",
                         "--device", test::device_flag()});
  REQUIRE(st.code == 0);
  CHECK(count(db, "SELECT count(*) FROM samples s JOIN runs r ON r.id = s.run_id AND r.config_toml LIKE '%seed = 5%' "
                  "WHERE s.finish_reason = 'stop' AND s.completion NOT LIKE '%1%' AND s.completion NOT LIKE '%2%'") ==
        count(db, "SELECT count(*) FROM samples s JOIN runs r ON r.id = s.run_id AND r.config_toml LIKE '%seed = 5%' "
                  "WHERE s.finish_reason = 'stop'"));
  CHECK(count(db, "SELECT count(*) FROM samples WHERE finish_reason = 'stop'") > 0);
  {  // greedy: top-p changes nothing, so a rerun that differs only there resumes (adds nothing)
    auto again_greedy = run_distill({"generate", "--db", db, "--teacher", d / "teacher", "--samples", "1", "--limit", "6",
                                     "--max-tokens", "16", "--seed", "5", "--temperature", "0", "--top-p", "0.5", "--stop",
                                     "1", "--stop", "2", "--device", test::device_flag()});
    INFO(again_greedy.err);
    CHECK(again_greedy.code == 0);
    CHECK_THAT(again_greedy.out, Catch::Contains("0 new samples"));
  }
  // bad input: a teacher directory without weights, an unknown split
  std::filesystem::create_directories(d / "empty");
  CHECK(run_distill({"generate", "--db", db, "--teacher", d / "empty"}).code == 2);
  CHECK(run_distill({"generate", "--db", db, "--teacher", d / "teacher", "--split", "nope"}).code == 2);
}

namespace {
// The two interrupted-generate tests: a 40-problem fixture with a pristine copy (ref.db) for the uninterrupted run,
// and the command both sides run, committing every 4 samples.
std::vector<std::string> interrupted_args(const test::TempDir& d, const std::string& db, const char* samples) {
  return {"generate", "--db", db, "--teacher", d / "teacher", "--samples", samples,
          "--max-tokens", "24", "--batch", "4", "--commit-every", "4", "--temperature", "0.8"};
}
}  // namespace

TEST_CASE("generate: a run killed with SIGKILL resumes with no duplicate and no gap") {
  test::TempDir d;
  make_fixture(d, 40);
  std::filesystem::copy_file(d / "s.db", d / "ref.db");
  auto args = [&](const std::string& db) { return interrupted_args(d, db, "3"); };
  const int pid = test::spawn_distill(args(d / "s.db"));
  CHECK(test::signal_when(pid, [&] { return count(d / "s.db", "SELECT count(*) FROM samples") >= 12; }, SIGKILL) == -SIGKILL);
  const auto after_kill = count(d / "s.db", "SELECT count(*) FROM samples");
  INFO("samples when killed: " << after_kill);
  CHECK(after_kill >= 12);
  CHECK(after_kill < 120);  // it really was interrupted
  CHECK(count(d / "s.db", "SELECT count(*) FROM runs WHERE kind = 'generate' AND status = 'running'") == 1);
  REQUIRE(run_distill(args(d / "s.db")).code == 0);
  REQUIRE(run_distill(args(d / "ref.db")).code == 0);
  CHECK(count(d / "s.db", "SELECT count(*) FROM samples") == 120);
  CHECK(count(d / "s.db", "SELECT count(*) FROM (SELECT problem_id, sample_idx FROM samples GROUP BY 1, 2 HAVING count(*) > 1)") == 0);
  CHECK(sample_rows(d / "s.db") == sample_rows(d / "ref.db"));
}

TEST_CASE("generate: SIGINT stores what has finished and exits 130, and the same command then draws the rest") {
  test::TempDir d;
  make_fixture(d, 40);
  std::filesystem::copy_file(d / "s.db", d / "ref.db");
  auto args = [&](const std::string& db) { return interrupted_args(d, db, "6"); };
  // refused before any write: a context too long for the teacher leaves no model row behind
  auto too_long = run_distill({"generate", "--db", d / "s.db", "--teacher", d / "teacher", "--max-tokens", "100000"});
  CHECK(too_long.code == 2);
  CHECK(count(d / "s.db", "SELECT count(*) FROM models") == 0);
  CHECK(count(d / "s.db", "SELECT count(*) FROM runs WHERE kind = 'generate'") == 0);

  const int pid = test::spawn_distill(args(d / "s.db"), d / "int.err");
  const int code = test::signal_when(pid, [&] { return count(d / "s.db", "SELECT count(*) FROM samples") >= 12; }, SIGINT);
  const auto err = test::read_text(d / "int.err");
  INFO(err);
  CHECK(code == 130);
  const auto stored = count(d / "s.db", "SELECT count(*) FROM samples");
  CHECK(stored >= 12);
  CHECK(stored < 240);  // it stopped early
  CHECK_THAT(err, Catch::Contains("stopped by SIGINT after " + std::to_string(stored) + " of 240 new samples") &&
                      Catch::Contains("run the same command again"));
  CHECK(count(d / "s.db", "SELECT count(*) FROM runs WHERE kind = 'generate' AND status = 'failed'") == 1);
  REQUIRE(run_distill(args(d / "s.db")).code == 0);
  REQUIRE(run_distill(args(d / "ref.db")).code == 0);
  CHECK(count(d / "s.db", "SELECT count(*) FROM samples") == 240);
  CHECK(sample_rows(d / "s.db") == sample_rows(d / "ref.db"));
}

TEST_CASE("generate: samples drawn under the row-id seeds of older versions are found when a run resumes") {
  // Seeds follow the problem's content hash now; a store drawn before that still resumes instead of drawing
  // every sample again under new seeds.
  test::TempDir d;
  make_fixture(d, 6);
  const std::vector<std::string> args = {"generate", "--db", d / "s.db", "--teacher", d / "teacher", "--samples", "2",
                                         "--max-tokens", "8"};
  REQUIRE(run_distill(args).code == 0);
  {
    auto s = dataset::Store::open(d / "s.db", dataset::OpenMode::read);
    auto q = s->db().prepare("SELECT id, problem_id, sample_idx FROM samples");
    std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> rows;
    while (q.step()) rows.emplace_back(q.col_int(0), q.col_int(1), q.col_int(2));
    auto up = s->db().prepare("UPDATE samples SET seed = ? WHERE id = ?");
    for (auto [id, problem, idx] : rows) {  // as an older distill drew them
      up.bind(1, std::int64_t(teacher::legacy_sample_seed(0, problem, idx))).bind(2, id);
      up.run();
      up.reset();
    }
  }
  auto r = run_distill(args);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 new samples (12 of 12 already stored)"));
  CHECK(count(d / "s.db", "SELECT count(*) FROM samples") == 12);
}
