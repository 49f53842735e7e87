// tests/test_hf_pipeline.cpp: transformers-saved checkpoints (tests/fixtures/hf/gen_hf_models.py) through the whole
// pipeline with the real binary: Qwen3-MoE, Mixtral and DeepSeek-V3 teachers generate in their chat template, a
// Qwen3 student with its own tokenizer.json trains on their samples and on the demo teacher's (SentencePiece: the
// text is re-tokenized), so do Llama and Qwen2 students, runs and samples record their prompt format, logit KD across tokenizers is refused naming both files, eval and compare run.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {

std::string hf_model(const std::string& name) {
  const auto d = std::string(DISTILL_HF_FIXTURES) + "/models/" + name;
  if (!fs::exists(d)) FAIL("no HF fixture " << d << ": run `ctest -R hf_fixtures` first");
  return d;
}

}  // namespace

TEST_CASE("hf pipeline: HF teachers generate, an HF student trains on any teacher's text, eval and compare run") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "40", "--difficulty", "1-2"}).code == 0);
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "6", "--difficulty", "1",
                             "--split", "eval", "--seed", "9"}).code == 0);
  for (const char* teacher : {"qwen3_moe", "mixtral", "deepseek_v3"}) {
    INFO("teacher " << teacher);
    auto r = test::run_distill({"generate", "--db", db, "--teacher", hf_model(teacher), "--samples", "1", "--limit", "3",
                                "--max-tokens", "12", "--topk-logprobs", "4"});
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("3 new samples") && Catch::Contains("prompt format chat_template"));
  }
  CHECK(test::query_scalar(db, "SELECT count(*) FROM samples") == 9);
  // The demo teacher (SentencePiece, R1 format) adds samples in another vocabulary.
  const auto demo = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";
  REQUIRE(test::run_distill({"generate", "--db", db, "--teacher", demo, "--samples", "1", "--limit", "3",
                             "--max-tokens", "24"}).code == 0);
  REQUIRE(test::run_distill({"data", "review", "--db", db, "--all-pending", "--accept", "--reason", "test"}).code == 0);

  // SFT from the student's own weights and tokenizer: every sample is re-tokenized into its vocabulary.
  const auto out = d / "student";
  auto t = test::run_distill({"train", "--db", db, "--student", hf_model("qwen3"), "--out", out, "--steps", "3",
                              "--max-seq-len", "96", "--batch-tokens", "384", "--val-fraction", "0", "--json"});
  REQUIRE(t.code == 0);
  const auto tj = nlohmann::json::parse(t.out);
  CHECK(tj["last_step"].get<int>() == 3);
  CHECK(tj["train_examples"].get<int>() == 12);  // 9 HF-teacher samples and 3 of the demo teacher
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"})
    CHECK(fs::exists(out + "/" + f));
  // The run row and every sample's `data show` record the prompt format auto resolved to.
  CHECK_THAT(test::query_rows(db, "SELECT config_toml FROM runs WHERE kind = 'train'").at(0),
             Catch::Contains("prompt-format = \"chat_template\""));
  auto sample_of = [&](const std::string& teacher) {  // query_rows ends every column with '|'
    const auto row = test::query_rows(db, "SELECT s.id FROM samples s JOIN models m ON m.id = s.model_id WHERE m.path "
                                          "LIKE '%" + teacher + "' LIMIT 1").at(0);
    return row.substr(0, row.size() - 1);
  };
  const auto hf_sample = sample_of("qwen3_moe"), demo_sample = sample_of("demo-teacher");
  auto show = test::run_distill({"data", "show", "--db", db, hf_sample});
  CHECK_THAT(show.out, Catch::Contains("prompt format chat_template"));
  show = test::run_distill({"data", "show", "--db", db, demo_sample, "--json"});
  REQUIRE(show.code == 0);
  CHECK(nlohmann::json::parse(show.out)["prompt_format"] == "r1");

  // Llama (its own tokenizer.json, here in our R1 format) and Qwen2 (saved without a tokenizer: --tokenizer names
  // one) students fine-tune from their weights too.
  auto llama = test::run_distill({"train", "--db", db, "--student", hf_model("llama"), "--out", d / "llama", "--steps", "2",
                                  "--prompt-format", "r1", "--max-seq-len", "96", "--batch-tokens", "384",
                                  "--val-fraction", "0", "--json"});
  REQUIRE(llama.code == 0);
  CHECK(nlohmann::json::parse(llama.out)["last_step"].get<int>() == 2);
  CHECK_THAT(test::query_rows(db, "SELECT config_toml FROM runs WHERE kind = 'train' ORDER BY id DESC LIMIT 1").at(0),
             Catch::Contains("prompt-format = \"r1\""));
  auto qwen2 = test::run_distill({"train", "--db", db, "--student", hf_model("qwen2_4x"), "--tokenizer", hf_model("qwen3"),
                                  "--out", d / "qwen2", "--steps", "2", "--max-seq-len", "96", "--batch-tokens", "384",
                                  "--val-fraction", "0", "--json"});
  REQUIRE(qwen2.code == 0);
  CHECK(nlohmann::json::parse(qwen2.out)["last_step"].get<int>() == 2);
  CHECK(fs::exists(d / "qwen2/tokenizer.json"));

  // Logit KD needs one vocabulary: the demo teacher's tokenizer.model is not the student's tokenizer.json.
  auto kd = test::run_distill({"train", "--db", db, "--student", hf_model("qwen3"), "--out", d / "kd", "--steps", "2",
                               "--kd", "fkl", "--max-seq-len", "96", "--batch-tokens", "384"});
  CHECK(kd.code == 2);
  CHECK_THAT(kd.err, Catch::Contains("tokenizer.model") && Catch::Contains("tokenizer.json"));

  auto e = test::run_distill({"eval", "--db", db, "--model", out, "--split", "eval", "--samples", "1", "--max-tokens", "8",
                              "--json"});
  REQUIRE(e.code == 0);
  CHECK(nlohmann::json::parse(e.out)["prompt_format"] == "chat_template");
  auto c = test::run_distill({"compare", "--db", db, "--json"});
  CHECK(c.code == 0);
  // complete on the trained student and on a teacher
  CHECK(test::run_distill({"complete", "--model", out, "--prompt", "3+4", "--chat", "--greedy", "--max-tokens", "4"}).code == 0);
  CHECK(test::run_distill({"complete", "--model", hf_model("deepseek_v3"), "--prompt", "3+4", "--greedy", "--max-tokens",
                           "4"}).code == 0);
}
