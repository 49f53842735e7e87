// tests/test_train_cli.cpp: `distill train` end to end on a real store: the loss falls, checkpoints are complete
// and atomic, stopping (--stop-after, SIGINT) + --resume gives the loss curve and weights of an uninterrupted run
// (with --position-stretch too, and the saved mean of --average-last), resume refuses other settings, data or an
// earlier run's checkpoints, examples end in EOS as the teacher stopped, KD from the stored top-k, and gradient
// accumulation equals one large batch; a piped log shows step and validation lines, and a finished run is never
// trained over (--resume says so and changes nothing; a fresh run into it is refused); `distill plan`, and train
// refusing a run the machine cannot hold.
// Cases tagged [device] run on test::device() (CUDA, with bf16 autocast in the trainer, in scripts/device-check).
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/fs.h"
#include "common/sha256.h"
#include "dataset/curation.h"
#include "dataset/samples.h"
#include "distill/sft.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"
#include "distill/train_state.h"
#include "teacher/prompt_format.h"
#include "test_paths.h"
#include "tests/helpers.h"
#include "tests/model_fixtures.h"

using namespace distill;
using test::run_distill;

namespace {
double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }
}  // namespace

namespace {
// A store with kept teacher samples (the demo teacher's tokenizer is the default one: its path is the samples'):
// ~120 train problems (synth keeps distinct ones) and `eval_problems` of split eval, one gold-CoT sample each.
std::string kept_store(const test::TempDir& d, int eval_problems = 0) {
  const auto db = d / "s.db";
  REQUIRE(run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "120", "--difficulty", "1-2"}).code == 0);
  if (eval_problems)
    REQUIRE(run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", std::to_string(eval_problems), "--split",
                         "eval", "--difficulty", "1-2"}).code == 0);
  auto s = dataset::Store::open(db, dataset::OpenMode::read);
  const auto teacher = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";
  const auto model = dataset::upsert_model(*s, {"teacher", teacher, "DeepseekV3ForCausalLM", 1, 1, std::string(64, 'd')});
  const auto run = s->begin_run("generate", "");
  std::vector<dataset::SampleRow> rows;
  auto q = s->db().prepare("SELECT id, solution FROM problems ORDER BY id");
  while (q.step()) {
    dataset::SampleRow r;
    r.problem_id = q.col_int(0);
    r.model_id = model;
    r.run_id = run;
    r.seed = r.problem_id;
    r.max_tokens = 96;
    auto sol = q.col_text(1);
    const auto nl = sol.rfind('\n');
    r.completion = "<think>\n" + sol.substr(0, nl) + "\n</think>\n" + sol.substr(nl + 1);
    r.verdict = "correct";
    r.n_tokens = 30;
    r.finish_reason = "eos";
    rows.push_back(r);
  }
  dataset::insert_samples(*s, rows);
  REQUIRE(run_distill({"data", "review", "--db", db, "--all-pending", "--accept"}).code == 0);
  return db;
}

std::vector<double> losses(const std::string& db, std::int64_t run_id) {
  std::vector<double> out;
  for (std::int64_t step = 1;; ++step) {
    auto v = test::query_scalar(db, "SELECT loss FROM train_steps WHERE run_id = " + std::to_string(run_id) +
                                        " AND step = " + std::to_string(step));
    if (!v) break;
    out.push_back(*v);
  }
  return out;
}
}  // namespace

TEST_CASE("train: SFT lowers the loss, checkpoints atomically, and stop + resume equals an uninterrupted run", "[device]") {
  test::TempDir d;
  const auto db = kept_store(d);
  const std::vector<std::string> common = {"train", "--db", db, "--student", "tiny", "--steps", "16", "--max-seq-len", "96",
                                           "--batch-tokens", "384", "--grad-accum", "2", "--warmup", "3", "--lr", "3e-3",
                                           "--save-every", "4", "--eval-every", "8", "--vocab-chunk", "100", "--seed", "5",
                                           "--json", "--threads", "1", "--device", test::device_flag()};
  // Exact on the CPU. CUDA trains under bf16 autocast, and its attention backward accumulates with atomics, whose
  // order varies from run to run: the curves agree to bf16's rounding there, not bit for bit.
  const double same = test::device().is_cuda() ? 2e-3 : 1e-6;
  auto with = [&](std::vector<std::string> extra) {
    auto a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto full = run_distill(with({"--out", d / "full"}));
  REQUIRE(full.code == 0);
  auto fj = nlohmann::json::parse(full.out);
  CHECK(fj["finished"] == true);
  auto curve = losses(db, fj["run_id"].get<std::int64_t>());
  REQUIRE(curve.size() == 16);
  CHECK(curve.back() < 0.7 * curve.front());
  CHECK(fj["val_loss"].get<double>() > 0);
  CHECK(std::filesystem::exists(d / "full/checkpoint-12/trainer_state.json"));
  CHECK(std::filesystem::exists(d / "full/checkpoint-12/optimizer.safetensors"));
  CHECK_FALSE(std::filesystem::exists(d / "full/checkpoint-12.tmp"));
  {  // every parameter's own step count is stored beside its moments (a dense student: all took every step)
    auto opt_file = model::SafetensorsFile::open(d / "full/checkpoint-12/optimizer.safetensors");
    int steps = 0, moments = 0;
    for (const auto& t : opt_file->header().tensors) {
      if (t.name.ends_with(".step")) {
        ++steps;
        CHECK(opt_file->get(t.name).item<std::int64_t>() == 12);
      }
      if (t.name.ends_with(".exp_avg")) ++moments;
    }
    CHECK(steps == moments);
    CHECK(steps > 0);
  }
  model::load_hf_dir(d / "full", torch::kCPU);  // the final model loads

  auto first = run_distill(with({"--out", d / "split", "--stop-after", "6"}));
  REQUIRE(first.code == 0);
  auto j1 = nlohmann::json::parse(first.out);
  CHECK(j1["finished"] == false);
  CHECK(std::filesystem::exists(d / "split/checkpoint-6/model.safetensors"));
  auto second = run_distill(with({"--out", d / "split", "--resume"}));
  REQUIRE(second.code == 0);
  auto j2 = nlohmann::json::parse(second.out);
  CHECK(j2["first_step"] == 7);
  auto a = losses(db, j1["run_id"].get<std::int64_t>());
  auto b = losses(db, j2["run_id"].get<std::int64_t>());
  // the resumed run numbers its steps 7..16
  std::vector<double> resumed = a;
  for (std::int64_t step = 7; step <= 16; ++step)
    resumed.push_back(*test::query_scalar(db, "SELECT loss FROM train_steps WHERE run_id = " + j2["run_id"].dump() +
                                                  " AND step = " + std::to_string(step)));
  REQUIRE(resumed.size() == curve.size());
  for (std::size_t i = 0; i < curve.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(std::abs(resumed[i] - curve[i]) <= same * std::max(1.0, std::abs(curve[i])));
  }
  auto wa = model::SafetensorsFile::open(d / "full/model.safetensors");
  auto wb = model::SafetensorsFile::open(d / "split/model.safetensors");
  for (const auto& t : wa->header().tensors) CHECK(max_diff(wa->get(t.name), wb->get(t.name)) <= same);
  (void)b;

  // bad input: exit 2 with the reason
  auto nores = run_distill(with({"--out", d / "empty", "--resume"}));  // no such folder: no run to continue
  CHECK(nores.code == 2);
  CHECK_THAT(nores.err, Catch::Contains("does not exist: no run to continue there"));
  auto other = run_distill({"train", "--db", db, "--student", "tiny", "--steps", "20", "--out", d / "split", "--resume", "--seed", "5"});
  CHECK(other.code == 2);
  CHECK_THAT(other.err, Catch::Contains("the checkpoint was made with") && Catch::Contains("this run has"));
  auto lr_args = with({"--out", d / "split", "--resume"});
  *(std::find(lr_args.begin(), lr_args.end(), "--lr") + 1) = "1e-3";  // only the peak lr differs
  auto other_lr = run_distill(lr_args);
  CHECK(other_lr.code == 2);
  CHECK_THAT(other_lr.err, Catch::Contains("lr = 0.003") && Catch::Contains("same settings"));
  {  // a checkpoint made at another precision (bf16 autocast on CUDA, fp32 on the CPU) is refused, not continued
    const auto sf = d / "split/checkpoint-12/trainer_state.json";
    auto st = nlohmann::json::parse(read_file(sf));
    CHECK(st["schedule"]["precision"] == (test::device().is_cuda() ? "bf16-autocast" : "fp32"));
    st["schedule"]["precision"] = test::device().is_cuda() ? "fp32" : "bf16-autocast";
    write_file_atomic(sf, st.dump());
    auto other_precision = run_distill(with({"--out", d / "split", "--resume"}));
    CHECK(other_precision.code == 2);
    CHECK_THAT(other_precision.err, Catch::Contains("precision"));
  }
  {  // --precision: fp32 anywhere, bf16 autocast on CUDA alone; the checkpoint records the one a run used
    auto bogus = run_distill(with({"--out", d / "precision", "--precision", "fp16"}));
    CHECK(bogus.code == 2);
    CHECK_THAT(bogus.err, Catch::Contains("--precision 'fp16'") && Catch::Contains("auto, bf16 or fp32"));
    CHECK_FALSE(std::filesystem::exists(d / "precision"));
    if (test::device().is_cuda()) {
      auto fp32 = run_distill(with({"--out", d / "precision", "--precision", "fp32", "--stop-after", "12"}));
      REQUIRE(fp32.code == 0);
      auto st = nlohmann::json::parse(read_file(d / "precision/checkpoint-12/trainer_state.json"));
      CHECK(st["schedule"]["precision"] == "fp32");
    } else {
      auto bf16 = run_distill(with({"--out", d / "precision", "--precision", "bf16"}));
      CHECK(bf16.code == 2);
      CHECK_THAT(bf16.err, Catch::Contains("bf16 autocast is for CUDA"));
      CHECK_FALSE(std::filesystem::exists(d / "precision"));
    }
  }
  // a fresh run into a directory holding an earlier run's checkpoints: a later --resume would take its steps
  auto again = run_distill(with({"--out", d / "split"}));
  CHECK(again.code == 2);
  CHECK_THAT(again.err, Catch::Contains("checkpoint-12/ of an earlier run") && Catch::Contains("--resume"));
  CHECK(fj["truncated_examples"] == 0);
  {  // other samples of the same count (a re-curated store): the checkpoint's data fingerprint refuses them
    REQUIRE(run_distill(with({"--out", d / "recurated", "--stop-after", "4"})).code == 0);
    dataset::Store::open(db, dataset::OpenMode::read)
        ->db()
        .exec("UPDATE samples SET completion = replace(completion, '</think>', 'so\n</think>')");
    auto recurated = run_distill(with({"--out", d / "recurated", "--resume"}));
    CHECK(recurated.code == 2);
    CHECK_THAT(recurated.err, Catch::Contains("made with train_examples_sha256 = "));
  }
  {  // examples longer than --max-seq-len are cut there: counted and said, not silent
    auto cut = run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "cut", "--steps", "1", "--max-seq-len",
                            "40", "--batch-tokens", "160", "--json"});
    REQUIRE(cut.code == 0);
    CHECK(nlohmann::json::parse(cut.out)["truncated_examples"].get<int>() > 0);
    CHECK_THAT(cut.err, Catch::Contains("longer than --max-seq-len 40") && Catch::Contains("raise --max-seq-len"));
  }
  CHECK(run_distill({"train", "--db", db, "--student", "nope", "--out", d / "x"}).code == 2);
  // the answer-only baseline trains on far fewer target tokens per example: same steps, lower token count
  auto base = run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "base", "--steps", "2", "--target", "answer",
                           "--max-seq-len", "96", "--batch-tokens", "384", "--json"});
  REQUIRE(base.code == 0);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM train_steps WHERE run_id = " +
                                   nlohmann::json::parse(base.out)["run_id"].dump()) == 2);
  CHECK(run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "x", "--target", "steps"}).code == 2);
  CHECK(run_distill({"train", "--db", db, "--status", "maybe", "--out", d / "x"}).code == 2);
}

TEST_CASE("train: SIGINT ends the run after the current step with a checkpoint, and --resume ends as if never stopped") {
  test::TempDir d;
  const auto db = kept_store(d);
  auto args = [&](const std::string& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"train", "--db", db, "--student", "tiny", "--steps", "300", "--max-seq-len", "96",
                                  "--batch-tokens", "384", "--warmup", "3", "--lr", "3e-3", "--eval-every", "0",
                                  "--seed", "5", "--threads", "1", "--json", "--out", out};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const int pid = test::spawn_distill(args(d / "cut"), d / "cut.err");
  // in the step loop: its first 50 step rows are in the store
  const std::string rows = "SELECT count(*) FROM train_steps s JOIN runs r ON r.id = s.run_id WHERE r.config_toml LIKE '%/cut\"%'";
  const int code = test::signal_when(pid, [&] { return test::query_scalar(db, rows).value_or(0) >= 50; }, SIGINT);
  const auto err = test::read_text(d / "cut.err");
  INFO(err);
  CHECK(code == 130);
  const auto step = train::newest_checkpoint(d / "cut");
  CHECK(step > 0);
  CHECK(step < 300);  // it really stopped early, at a step boundary, and left that step to resume from
  CHECK_THAT(err, Catch::Contains("stopped by SIGINT after step " + std::to_string(step)) && Catch::Contains("--resume"));
  auto resumed = run_distill(args(d / "cut", {"--resume"}));
  REQUIRE(resumed.code == 0);
  CHECK(nlohmann::json::parse(resumed.out)["first_step"] == step + 1);
  REQUIRE(run_distill(args(d / "full")).code == 0);
  auto wa = model::SafetensorsFile::open(d / "full/model.safetensors");
  auto wb = model::SafetensorsFile::open(d / "cut/model.safetensors");
  for (const auto& t : wa->header().tensors) CHECK(max_diff(wa->get(t.name), wb->get(t.name)) <= 1e-6);
}

TEST_CASE("train: a checkpoint written again for the same step replaces the old one whole, leaving no temporaries") {
  test::TempDir d;
  auto write = [&](const std::string& text, bool fail) {
    train::write_checkpoint(d / "out", 4, [&](const std::string& tmp) {
      test::write_text(tmp + "/trainer_state.json", text);
      if (fail) throw std::runtime_error("killed while writing");
    });
  };
  std::filesystem::create_directories(d / "out");
  write("first", false);
  CHECK(test::read_text(d / "out/checkpoint-4/trainer_state.json") == "first");
  CHECK_THROWS(write("broken", true));  // a failed write leaves the complete older copy in place
  CHECK(test::read_text(d / "out/checkpoint-4/trainer_state.json") == "first");
  write("second", false);
  CHECK(test::read_text(d / "out/checkpoint-4/trainer_state.json") == "second");
  CHECK(train::newest_checkpoint(d / "out") == 4);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(d / "out")) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"checkpoint-4"});
}

TEST_CASE("train: samples of eval-split problems are trained on only with a warning, and --split train leaves them out") {
  test::TempDir d;
  const auto db = kept_store(d, 10);
  const std::vector<std::string> args = {"train", "--db", db, "--student", "tiny", "--steps", "1", "--max-seq-len", "96",
                                         "--batch-tokens", "384", "--val-fraction", "0", "--json"};
  auto all = args;
  all.insert(all.end(), {"--out", d / "all"});
  auto r = run_distill(all);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("10 of the samples answer problems of split 'eval'"));
  auto train_only = args;
  train_only.insert(train_only.end(), {"--out", d / "train", "--split", "train"});
  auto t = run_distill(train_only);
  REQUIRE(t.code == 0);
  CHECK_THAT(t.err, !Catch::Contains("split 'eval'"));
  CHECK(nlohmann::json::parse(r.out)["train_examples"].get<int>() == nlohmann::json::parse(t.out)["train_examples"].get<int>() + 10);
}

TEST_CASE("train: an example ends in EOS when the teacher stopped by itself (EOS or a stop string), not when cut") {
  auto tok = model::load_tokenizer(std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher");
  const std::string prompt = "Start with 3. Add 4, then add 1, keeping only the last digit after each step (work mod 10). "
                             "What is the result?";
  const std::string completion = "<think>\n3+4=7\n7+1=8\n</think>\n\\boxed{8}";
  const auto head = teacher::r1_prompt_ids(*tok, prompt);
  const auto body = tok->encode(std::string_view(completion).substr(8));
  for (const char* reason : {"eos", "stop", "length"}) {
    INFO(reason);
    auto e = train::sft_example(*tok, prompt, completion, reason, "cot");
    REQUIRE(e);
    CHECK(e->loss_from == std::int64_t(head.size()));
    CHECK(std::vector<int>(e->ids.begin(), e->ids.begin() + e->loss_from) == head);
    auto want = body;
    if (std::string(reason) != "length") want.push_back(tok->eos_id());
    CHECK(std::vector<int>(e->ids.begin() + e->loss_from, e->ids.end()) == want);
  }
  auto ans = train::sft_example(*tok, prompt, completion, "eos", "answer");
  REQUIRE(ans);
  CHECK(tok->decode(std::vector<int>(ans->ids.begin() + ans->loss_from, ans->ids.end() - 1)) == "</think>\n\\boxed{8}");
  CHECK_FALSE(train::sft_example(*tok, prompt, "<think>\n3+4=7", "length", "answer"));  // no answer to keep
}

TEST_CASE("train: --position-stretch reaches the trainer, and stop + resume replays its positions", "[device]") {
  test::TempDir d;
  const auto db = kept_store(d);
  const std::vector<std::string> common = {"train", "--db", db, "--student", "tiny", "--steps", "8", "--max-seq-len", "96",
                                           "--batch-tokens", "384", "--warmup", "2", "--lr", "3e-3", "--eval-every", "0",
                                           "--seed", "5", "--json", "--threads", "1", "--device", test::device_flag()};
  const double same = test::device().is_cuda() ? 2e-3 : 1e-6;
  auto run = [&](std::vector<std::string> extra) {
    auto a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    auto r = run_distill(a);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out);
  };
  auto curve_of = [&](const nlohmann::json& j) {
    std::vector<double> c;
    for (std::int64_t step = 1; step <= 8; ++step)
      if (auto v = test::query_scalar(db, "SELECT loss FROM train_steps WHERE run_id = " + j["run_id"].dump() +
                                              " AND step = " + std::to_string(step)))
        c.push_back(*v);
    return c;
  };
  auto plain = curve_of(run({"--out", d / "plain"}));
  auto full = curve_of(run({"--out", d / "full", "--position-stretch", "0.5"}));
  REQUIRE(plain.size() == 8);
  REQUIRE(full.size() == 8);
  CHECK(plain[0] == Approx(full[0]).epsilon(0.05));  // same weights and data: close at step 1, not equal
  double differs = 0;
  for (std::size_t i = 0; i < 8; ++i) differs = std::max(differs, std::abs(plain[i] - full[i]));
  CHECK(differs > 1e-4);
  auto first = run({"--out", d / "split", "--position-stretch", "0.5", "--stop-after", "4"});
  auto second = run({"--out", d / "split", "--position-stretch", "0.5", "--resume"});
  auto a = curve_of(first), b = curve_of(second);
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);  // the resumed run records steps 5..8
  a.insert(a.end(), b.begin(), b.end());
  for (std::size_t i = 0; i < 8; ++i) {
    INFO("step " << i + 1);
    CHECK(std::abs(a[i] - full[i]) <= same * std::max(1.0, std::abs(full[i])));
  }
  auto other = run_distill({"train", "--db", db, "--student", "tiny", "--steps", "8", "--max-seq-len", "96", "--batch-tokens",
                            "384", "--warmup", "2", "--lr", "3e-3", "--eval-every", "0", "--seed", "5", "--out", d / "split",
                            "--resume", "--device", test::device_flag()});
  CHECK(other.code == 2);  // the checkpoint records the stretch: resuming without it would be another curve
  CHECK_THAT(other.err, Catch::Contains("position_stretch"));
  CHECK(run_distill({"train", "--db", db, "--out", d / "x", "--position-stretch", "1.5"}).code == 2);
}

TEST_CASE("train: --average-last saves the mean of the last N steps' weights, and stop + resume saves the same mean") {
  test::TempDir d;
  const auto db = kept_store(d);
  const std::vector<std::string> common = {"train", "--db", db, "--student", "tiny", "--steps", "6", "--max-seq-len", "96",
                                           "--batch-tokens", "384", "--warmup", "2", "--lr", "3e-3", "--eval-every", "0",
                                           "--seed", "5", "--json", "--threads", "1"};
  auto run = [&](std::vector<std::string> extra) {
    auto a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return run_distill(a);
  };
  auto json_of = [](const test::CliResult& r) {
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out);
  };
  CHECK(json_of(run({"--out", d / "plain"}))["averaged_steps"] == 0);  // the weights after step 6: w6
  // The same run (averaging changes no step), its checkpoints holding w1..w5, and a saved mean of w4, w5, w6.
  auto avg = json_of(run({"--out", d / "avg", "--average-last", "3", "--save-every", "1"}));
  CHECK(avg["averaged_steps"] == 3);
  auto w4 = model::SafetensorsFile::open(d / "avg/checkpoint-4/model.safetensors");
  auto w5 = model::SafetensorsFile::open(d / "avg/checkpoint-5/model.safetensors");
  auto w6 = model::SafetensorsFile::open(d / "plain/model.safetensors");
  auto mean = model::SafetensorsFile::open(d / "avg/model.safetensors");
  CHECK(std::filesystem::exists(d / "avg/checkpoint-4/average.safetensors"));
  CHECK_FALSE(std::filesystem::exists(d / "avg/checkpoint-3/average.safetensors"));  // before the window: none
  double off = 0, moved = 0;
  for (const auto& t : mean->header().tensors) {
    auto of = [&](const std::shared_ptr<model::SafetensorsFile>& f) { return f->get(t.name).to(torch::kDouble); };
    const auto want = (of(w4) + of(w5) + of(w6)) / 3;
    off = std::max(off, max_diff(mean->get(t.name).to(torch::kDouble), want));
    moved = std::max(moved, max_diff(mean->get(t.name), w6->get(t.name)));
  }
  CHECK(off <= 1e-6);
  CHECK(moved > 1e-5);  // the mean is not the last step's weights
  // Stopped inside the window (after step 5: the mean of w4 and w5 is in its checkpoint) and resumed.
  json_of(run({"--out", d / "split", "--average-last", "3", "--stop-after", "5"}));
  CHECK(std::filesystem::exists(d / "split/checkpoint-5/average.safetensors"));
  CHECK(json_of(run({"--out", d / "split", "--average-last", "3", "--resume"}))["averaged_steps"] == 3);
  auto resumed = model::SafetensorsFile::open(d / "split/model.safetensors");
  double apart = 0;
  for (const auto& t : mean->header().tensors)
    apart = std::max(apart, max_diff(resumed->get(t.name), mean->get(t.name)));
  CHECK(apart <= 1e-6);
  // A resume must average as the checkpoint's run did; the window fits in the schedule.
  json_of(run({"--out", d / "again", "--average-last", "3", "--stop-after", "5"}));
  auto other = run({"--out", d / "again", "--resume"});
  CHECK(other.code == 2);
  CHECK_THAT(other.err, Catch::Contains("average_last"));
  std::filesystem::remove(d / "again/checkpoint-5/average.safetensors");
  auto lost = run({"--out", d / "again", "--average-last", "3", "--resume"});
  CHECK(lost.code == 2);
  CHECK_THAT(lost.err, Catch::Contains("average.safetensors: missing"));
  auto wide = run({"--out", d / "wide", "--average-last", "7"});
  CHECK(wide.code == 2);
  CHECK_THAT(wide.err, Catch::Contains("--average-last 7: expected <= --steps (6)"));
}

TEST_CASE("train: --kd distils from the top-k that generate stored, and refuses a different tokenizer", "[device]") {
  test::TempDir d;
  const auto db = d / "s.db";
  const auto teacher = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";
  REQUIRE(run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "80", "--difficulty", "1-2"}).code == 0);
  REQUIRE(run_distill({"generate", "--db", db, "--teacher", teacher, "--samples", "1", "--limit", "24", "--max-tokens", "64",
                       "--topk-logprobs", "8", "--device", test::device_flag()}).code == 0);
  REQUIRE(run_distill({"data", "review", "--db", db, "--all-pending", "--accept"}).code == 0);
  auto r = run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "kd", "--steps", "6", "--max-seq-len", "128",
                        "--batch-tokens", "512", "--kd", "jsd", "--kd-weight", "1", "--val-fraction", "0", "--json",
                        "--device", test::device_flag()});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["kd_examples"].get<int>() >= 20);  // re-encoding the teacher's text gives back its tokens
  CHECK(j["final_kd"].get<double>() > 0);
  REQUIRE(run_distill({"tokenizer", "train", "--db", db, "--out", d / "tok2", "--vocab-size", "400"}).code == 0);
  auto bad = run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "kd2", "--steps", "2", "--kd", "fkl",
                          "--tokenizer", d / "tok2"});
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("needs the teacher's tokenizer"));
  CHECK(run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "kd3", "--kd", "kl"}).code == 2);
  // the teacher's directory gone (a store moved to another host): its vocabulary cannot be checked, so no KD
  dataset::Store::open(db, dataset::OpenMode::read)->db().exec("UPDATE models SET path = '/nonexistent/teacher'");
  auto gone = run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "kd4", "--steps", "2", "--kd", "fkl",
                           "--tokenizer", teacher});
  CHECK(gone.code == 2);
  CHECK_THAT(gone.err, Catch::Contains("/nonexistent/teacher/tokenizer.model") && Catch::Contains("is missing"));
}

TEST_CASE("train: two accumulated micro-batches give the curve of one batch of both") {
  test::TempDir d;
  const auto db = kept_store(d);
  auto curve_of = [&](const std::string& out, const std::string& batch_tokens, const std::string& accum,
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"train", "--db", db, "--student", "tiny", "--steps", "5", "--max-seq-len", "96",
                                  "--batch-tokens", batch_tokens, "--grad-accum", accum, "--lr", "3e-3", "--seed", "6",
                                  "--json", "--threads", "1", "--out", d / out};
    a.insert(a.end(), extra.begin(), extra.end());
    auto r = run_distill(a);
    REQUIRE(r.code == 0);
    return losses(db, nlohmann::json::parse(r.out)["run_id"].get<std::int64_t>());
  };
  auto one = curve_of("one", "768", "1");
  auto two = curve_of("two", "384", "2");
  auto ckpt = curve_of("ckpt", "384", "2", {"--checkpoint-activations"});
  REQUIRE(one.size() == 5);
  REQUIRE(two.size() == 5);
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(std::abs(one[i] - two[i]) <= 1e-5 * std::abs(one[i]));
    CHECK(std::abs(ckpt[i] - two[i]) <= 1e-5 * std::abs(two[i]));
  }
}

TEST_CASE("train: a piped log shows steps and validation losses, and a finished run is never trained over") {
  test::TempDir d;
  const auto db = kept_store(d);
  const auto out = d / "m";
  const std::vector<std::string> args = {"train", "--db", db, "--student", "tiny", "--out", out, "--steps", "12",
                                         "--warmup", "2", "--eval-every", "6", "--max-seq-len", "96",
                                         "--batch-tokens", "384", "--log-every", "5"};
  auto r = run_distill(args);  // stderr is a pipe here, not a terminal
  REQUIRE(r.code == 0);
  // a line at the first step, every 5th, the last, and each validation loss, with lr, rate and ETA
  for (const char* step : {"step 1/12", "step 5/12", "step 10/12", "step 12/12"})
    CHECK_THAT(r.err, Catch::Matches("(.|\n)*train: " + std::string(step) +
                                     "  loss [0-9.]+  lr [0-9.]+e[-+][0-9]+  [0-9]+ tok/s  ETA [-0-9:]+(.|\n)*"));
  CHECK_THAT(r.err, Catch::Matches("(.|\n)*train: step 6/12  val loss [0-9.]+\n(.|\n)*"));
  CHECK_THAT(r.err, Catch::Matches("(.|\n)*train: step 12/12  loss .*  val loss [0-9.]+\n(.|\n)*"));
  CHECK_THAT(r.err, !Catch::Contains("step 3/12"));
  CHECK_THAT(r.err, !Catch::Contains("\r"));  // no bar redraws in a log file
  auto quiet = args;
  quiet[6] = d / "quiet";
  quiet.back() = "0";
  auto q = run_distill(quiet);
  REQUIRE(q.code == 0);
  CHECK_THAT(q.err, !Catch::Contains("step "));  // --log-every 0: no step lines

  // --resume of the finished run: nothing trained, nothing written, and it says so
  const auto runs = test::query_scalar(db, "SELECT count(*) FROM runs");
  const auto weights = sha256_file_hex(out + "/model.safetensors");
  const auto mtime = std::filesystem::last_write_time(out + "/model.safetensors");
  auto resumed = args;
  resumed.push_back("--resume");
  auto again = run_distill(resumed);
  CHECK(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains("holds this run, finished; nothing to do"));
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs") == runs);
  CHECK(sha256_file_hex(out + "/model.safetensors") == weights);
  CHECK(std::filesystem::last_write_time(out + "/model.safetensors") == mtime);
  auto marker = nlohmann::json::parse(read_file(out + "/trainer_state.json"));
  CHECK(marker["finished"] == true);
  CHECK(marker["step"] == 12);
  // with other settings it is not this run: refused as a checkpoint of other settings is
  auto other = resumed;
  other.insert(other.end(), {"--seed", "9"});
  auto o = run_distill(other);
  CHECK(o.code == 2);
  CHECK_THAT(o.err, Catch::Contains("seed") && Catch::Contains("same settings"));
  // a fresh run into it would overwrite the finished model: refused before any work, the model untouched
  auto over = run_distill(args);
  CHECK(over.code == 2);
  CHECK_THAT(over.err, Catch::Contains("already holds a model") && Catch::Contains("--student"));
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs") == runs);
  CHECK(sha256_file_hex(out + "/model.safetensors") == weights);
  // training that model further is a new run that starts from it
  auto further = run_distill({"train", "--db", db, "--student", out, "--out", d / "further", "--steps", "4",
                              "--max-seq-len", "96", "--batch-tokens", "384"});
  CHECK(further.code == 0);
  CHECK(std::filesystem::exists(d / "further/model.safetensors"));
}

TEST_CASE("plan: the memory of a run part by part, what to change when it does not fit, and train refusing one") {
  auto big = run_distill({"plan", "--student", "llama3.3-70b", "--seq-len", "4096", "--batch-tokens", "8192"});
  REQUIRE(big.code == 0);
  for (const char* part : {"weights", "gradients", "optimizer (AdamW moments)", "activations", "logits and loss",
                           "workspace", "peak", "does not fit", "--lora-rank 16:", "--checkpoint-activations:",
                           "more GPUs"})
    CHECK_THAT(big.out, Catch::Contains(part));
  auto tiny = run_distill({"plan", "--student", "tiny", "--seq-len", "128", "--batch-tokens", "4096", "--json"});
  REQUIRE(tiny.code == 0);
  auto j = nlohmann::json::parse(tiny.out);
  CHECK(j["fits"] == true);
  CHECK(j["weights"] == 4 * j["params"].get<std::int64_t>());
  CHECK(j["peak"].get<std::int64_t>() > j["weights"].get<std::int64_t>() + j["optimizer"].get<std::int64_t>());
  auto gpu = run_distill({"plan", "--student", "qwen2.5-7b", "--device", "cuda", "--gpu-mem", "80", "--lora-rank", "16",
                          "--checkpoint-activations", "--seq-len", "4096", "--batch-tokens", "4096", "--json"});
  REQUIRE(gpu.code == 0);
  CHECK(nlohmann::json::parse(gpu.out)["fits"] == true);
  CHECK(run_distill({"plan", "--student", "gpt-9"}).code == 2);
  CHECK(run_distill({"plan", "--student", "tiny", "--precision", "bf16"}).code == 2);  // bf16 autocast is CUDA's

  // train makes the same estimate before it loads the model: a run this machine cannot hold is refused
  test::TempDir d;
  const auto db = kept_store(d);
  auto r = run_distill({"train", "--db", db, "--student", "llama3.3-70b", "--out", d / "big", "--steps", "1"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("cannot fit the machine's") && Catch::Contains("--force"));
  CHECK_FALSE(std::filesystem::exists(d / "big"));
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE kind = 'train'") == 0);
}
