// tests/test_pretrain_cli.cpp: `distill pretrain` trains a tiny MoE on gold CoT, lowers the loss, records the
// run and its steps, and writes an HF directory that loads and generates; bad input exits 2.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <torch/torch.h>

#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "tests/helpers.h"
#include "tests/model_fixtures.h"

using namespace distill;
using test::run_distill;

namespace {
double scalar(const std::string& db, const char* sql) {
  auto v = test::query_scalar(db, sql);
  REQUIRE(v.has_value());
  return *v;
}
}  // namespace

TEST_CASE("pretrain: a tiny MoE learns from gold CoT and is written as a loadable HF directory", "[device]") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "400", "--difficulty", "1-2"}).code == 0);
  REQUIRE(run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "20", "--split", "eval"}).code == 0);
  REQUIRE(run_distill({"tokenizer", "train", "--db", db, "--out", d / "tok", "--vocab-size", "320"}).code == 0);
  auto r = run_distill({"pretrain", "--db", db, "--tokenizer", d / "tok", "--out", d / "m", "--steps", "40",
                        "--batch-size", "16", "--warmup", "5", "--lr", "3e-3", "--hidden-size", "32", "--layers", "2", "--heads", "2",
                        "--kv-heads", "2", "--intermediate-size", "64", "--kv-lora-rank", "16", "--qk-nope-head-dim", "8",
                        "--qk-rope-head-dim", "8", "--v-head-dim", "8", "--experts", "4", "--moe-intermediate-size", "32",
                        "--eval-n", "10", "--device", test::device_flag()});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("held-out greedy accuracy"));
  CHECK(scalar(db, "SELECT count(*) FROM train_steps") == 40);
  const double first = scalar(db, "SELECT avg(loss) FROM train_steps WHERE step <= 5");
  const double last = scalar(db, "SELECT avg(loss) FROM train_steps WHERE step > 35");
  CHECK(last < first * 0.7);
  CHECK(scalar(db, "SELECT count(*) FROM runs WHERE kind = 'pretrain' AND status = 'ok'") == 1);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"}) CHECK(std::filesystem::exists(d / ("m/" + std::string(f))));
  auto m = model::load_hf_dir(d / "m", torch::kCPU);
  CHECK(m->config().model_type == "deepseek_v3");
  CHECK(m->moe_layers().size() == 1);
  // the result generates into the store
  auto g = run_distill({"generate", "--db", db, "--teacher", d / "m", "--samples", "2", "--limit", "3", "--max-tokens", "24",
                        "--device", test::device_flag()});
  INFO(g.err);
  CHECK(g.code == 0);
  // bad input: missing tokenizer, a split without gold solutions
  CHECK(run_distill({"pretrain", "--db", db, "--tokenizer", d / "nope", "--out", d / "x", "--steps", "1"}).code == 2);
  CHECK(run_distill({"pretrain", "--db", db, "--tokenizer", d / "tok", "--out", d / "x", "--split", "none", "--steps", "1"}).code == 2);
}
