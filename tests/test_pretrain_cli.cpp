// tests/test_pretrain_cli.cpp: `distill pretrain` trains a tiny MoE on gold CoT, lowers the loss, records the
// run and its steps, and writes an HF directory that loads and generates; stop + --resume equals an uninterrupted
// run; bad input exits 2; a piped log shows step lines, and a finished run is never trained over.
#include <signal.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <torch/torch.h>

#include "common/fs.h"
#include "model/hf_checkpoint.h"
#include "distill/train_state.h"
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

TEST_CASE("pretrain: stop + resume gives the loss curve and weights of an uninterrupted run, MoE bias included", "[device]") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "200", "--difficulty", "1-2"}).code == 0);
  REQUIRE(run_distill({"tokenizer", "train", "--db", db, "--out", d / "tok", "--vocab-size", "320"}).code == 0);
  const std::vector<std::string> common = {
      "pretrain", "--db", db, "--tokenizer", d / "tok", "--steps", "12", "--batch-size", "8", "--warmup", "3", "--lr", "3e-3",
      "--hidden-size", "32", "--layers", "2", "--heads", "2", "--kv-heads", "2", "--intermediate-size", "64",
      "--kv-lora-rank", "16", "--qk-nope-head-dim", "8", "--qk-rope-head-dim", "8", "--v-head-dim", "8", "--experts", "4",
      "--moe-intermediate-size", "32", "--bias-update-rate", "1e-2", "--eval-n", "0", "--save-every", "4", "--threads", "1",
      "--device", test::device_flag()};
  auto with = [&](std::vector<std::string> extra) {
    auto a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto curve = [&](const std::string& where) {
    std::vector<double> out;
    for (int step = 1; step <= 12; ++step) {
      const auto v = test::query_scalar(db, "SELECT s.loss FROM train_steps s JOIN runs r ON r.id = s.run_id WHERE r.config_toml "
                                            "LIKE '%" + where + "%' AND s.step = " + std::to_string(step) +
                                            " ORDER BY r.id DESC LIMIT 1");
      if (v) out.push_back(*v);
    }
    return out;
  };
  auto full = run_distill(with({"--out", d / "full"}));
  INFO(full.err);
  REQUIRE(full.code == 0);
  CHECK(std::filesystem::exists(d / "full/checkpoint-8/optimizer.safetensors"));
  CHECK(std::filesystem::exists(d / "full/config.json"));
  auto first = run_distill(with({"--out", d / "split", "--stop-after", "6"}));
  REQUIRE(first.code == 0);
  CHECK_THAT(first.out, Catch::Contains("steps 1-6") && Catch::Contains("continue with --resume"));
  CHECK(std::filesystem::exists(d / "split/checkpoint-6/trainer_state.json"));
  CHECK_FALSE(std::filesystem::exists(d / "split/config.json"));
  auto second = run_distill(with({"--out", d / "split", "--resume"}));
  INFO(second.err);
  REQUIRE(second.code == 0);
  CHECK_THAT(second.out, Catch::Contains("resuming from") && Catch::Contains("steps 7-12"));
  // Exact on the CPU; CUDA trains under bf16 autocast with atomics in attention backward (see the SFT test).
  const double same = test::device().is_cuda() ? 2e-3 : 1e-6;
  const auto a = curve("/full"), b = curve("/split");
  REQUIRE(a.size() == 12);
  REQUIRE(b.size() == 12);
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(std::abs(a[i] - b[i]) <= same * std::max(1.0, std::abs(a[i])));
  }
  auto wa = model::SafetensorsFile::open(d / "full/model.safetensors");
  auto wb = model::SafetensorsFile::open(d / "split/model.safetensors");
  int biases = 0;
  for (const auto& t : wa->header().tensors) {
    INFO(t.name);
    REQUIRE(wb->contains(t.name));
    CHECK((wa->get(t.name) - wb->get(t.name)).abs().max().item<double>() <= same);
    biases += t.name.find("e_score_correction_bias") != std::string::npos;
  }
  CHECK(biases == 1);  // the one MoE layer's routing bias, moved by the aux-loss-free updates, survives the resume
  // bad input: nothing to resume, or a checkpoint made with other settings
  auto none = run_distill(with({"--out", d / "empty", "--resume"}));
  CHECK(none.code == 2);
  CHECK_THAT(none.err, Catch::Contains("does not exist: no run to continue there"));
  auto other = with({"--out", d / "split", "--resume"});
  *(std::find(other.begin(), other.end(), "--lr") + 1) = "1e-3";
  auto r = run_distill(other);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("lr = 0.003") && Catch::Contains("same settings"));
  CHECK(run_distill(with({"--out", d / "x", "--save-every", "-1"})).code == 2);
  auto fp16 = run_distill(with({"--out", d / "x", "--precision", "fp16"}));
  CHECK(fp16.code == 2);
  CHECK_THAT(fp16.err, Catch::Contains("--precision 'fp16': expected auto, bf16 or fp32"));
  if (!test::device().is_cuda()) {
    auto bf16 = run_distill(with({"--out", d / "x", "--precision", "bf16"}));
    CHECK(bf16.code == 2);
    CHECK_THAT(bf16.err, Catch::Contains("bf16 autocast is for CUDA"));
  }
  CHECK_FALSE(std::filesystem::exists(d / "x"));
  {  // SIGTERM (a scheduler's stop): the run ends after its current step, checkpointed there, and exits 130
    auto long_run = with({"--out", d / "term"});
    *(std::find(long_run.begin(), long_run.end(), "--steps") + 1) = "100000";
    const int pid = test::spawn_distill(long_run, d / "term.err");
    const std::string rows = "SELECT count(*) FROM train_steps s JOIN runs r ON r.id = s.run_id WHERE r.config_toml LIKE '%/term%'";
    const int code = test::signal_when(pid, [&] { return test::query_scalar(db, rows).value_or(0) >= 4; }, SIGTERM, 15);
    INFO(test::read_text(d / "term.err"));
    CHECK(code == 130);
    const auto step = train::newest_checkpoint(d / "term");
    CHECK(step >= 4);
    CHECK(step < 100000);
    CHECK_THAT(test::read_text(d / "term.err"), Catch::Contains("stopped by SIGTERM after step " + std::to_string(step)));
  }
}

TEST_CASE("pretrain: a piped log shows its steps, and --resume of a finished run changes nothing") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "100", "--difficulty", "1-2"}).code == 0);
  REQUIRE(run_distill({"tokenizer", "train", "--db", db, "--out", d / "tok", "--vocab-size", "320"}).code == 0);
  const std::vector<std::string> args = {
      "pretrain", "--db", db, "--tokenizer", d / "tok", "--out", d / "m", "--steps", "6", "--batch-size", "4",
      "--warmup", "1", "--hidden-size", "32", "--layers", "2", "--heads", "2", "--kv-heads", "2", "--intermediate-size",
      "64", "--kv-lora-rank", "16", "--qk-nope-head-dim", "8", "--qk-rope-head-dim", "8", "--v-head-dim", "8",
      "--experts", "4", "--moe-intermediate-size", "32", "--eval-n", "0", "--log-every", "3"};
  auto r = run_distill(args);
  REQUIRE(r.code == 0);
  for (const char* step : {"step 1/6", "step 3/6", "step 6/6"})
    CHECK_THAT(r.err, Catch::Matches("(.|\n)*pretrain: " + std::string(step) + "  loss [0-9.]+  lr .* tok/s  ETA [-0-9:]+\n(.|\n)*"));
  CHECK_THAT(r.err, !Catch::Contains("step 2/6"));
  const auto runs = scalar(db, "SELECT count(*) FROM runs");
  const auto mtime = std::filesystem::last_write_time(d / "m/model.safetensors");
  auto resumed = args;
  resumed.push_back("--resume");
  auto again = run_distill(resumed);
  CHECK(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains("holds this run, finished; nothing to do"));
  CHECK(scalar(db, "SELECT count(*) FROM runs") == runs);
  CHECK(std::filesystem::last_write_time(d / "m/model.safetensors") == mtime);
  auto over = run_distill(args);
  CHECK(over.code == 2);
  CHECK_THAT(over.err, Catch::Contains("already holds a model"));
}
