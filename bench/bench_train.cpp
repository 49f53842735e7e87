// bench/bench_train.cpp: student training throughput (tokens/s) on the CPU for the tiny preset and a ~20M-param
// dense model, side by side in one run with the PyTorch-Python eager reference (bench/reference_train.py) of the
// same weights, batches and optimizer (AdamW, clip 1.0; the reference runs SDPA attention and fused AdamW, the
// fastest stock eager setup). Also prints effective GFLOP/s (6 x matmul params x tokens / s) against a plain fp32
// matmul measured in the same run, both ATen's (MKL sgemm, what the reference's products run on) and ours
// (model/cpu_gemm.h: oneDNN where it applies), and the ceiling our matmul rate puts on the ratio. Rows
// "tiny" and "dense-20m" are language modelling on random tokens (the model, loss and optimizer alone);
// "tiny-sft" is the trainer's own step on what `distill train` sees in the demo (R1 prompt + CoT, loss on the
// completion, one example per 128-token row; ragged batches, as the trainer makes them on the CPU) against the
// eager loop an HF-style script would run on the same rows (each batch padded to its longest row).
// Each side reports its best of --repeat runs, taken in turns (this machine's speed swings by a third between
// minutes; the best run is the least disturbed one). DISTILL_PROFILE=DIR writes a LibTorch profiler trace of
// each row's first run of ours to DIR/ROW.json. Asserts nothing.
// Usage: bench_train [--steps N] [--repeat R] [--threads K] [--only ROW]
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <unistd.h>

#include <functional>
#include <memory>

#include "dataset/synth.h"
#include "distill/batch.h"
#include "distill/chunked_ce.h"
#include "distill/optimizer.h"
#include "model/cpu_gemm.h"
#include "model/tokenizer.h"
#include "teacher/prompt_format.h"
#include "bench/reference_run.h"
#include "distill_version.h"
#include "model/hf_checkpoint.h"
#include "model/weights_io.h"
#include "student/presets.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// GFLOP/s of a 1024^3 fp32 product, through ATen's mm or through model::gemm (oneDNN where it applies).
double matmul_gflops(bool ours) {
  auto a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
  auto mm = [&] { return ours ? model::gemm::mm(a, b) : torch::mm(a, b); };
  for (int i = 0; i < 3; ++i) mm();
  const int reps = 20;
  const double t0 = now_s();
  for (int i = 0; i < reps; ++i) mm();
  return 2.0 * 1024 * 1024 * 1024 * reps / (now_s() - t0) / 1e9;
}
// Tokens/s of bench/reference_train.py on the same model directory and batches (0 when it fails).
double reference_tokens_per_s(const std::string& mdir, const std::string& batches, std::int64_t steps) {
  return bench::reference_tokens_per_s("reference_train.py " + mdir + " " + batches + " --steps " + std::to_string(steps) +
                                       " --threads " + std::to_string(torch::get_num_threads()));
}

// Best tokens/s of each side over `repeat` turns: ours (`run_ours` trains and returns its tokens/s), then the
// reference. The first of ours is profiled when DISTILL_PROFILE names a directory (profiling slows it down: use
// --repeat 2 or more to keep a clean run).
std::pair<double, double> best_of(int repeat, const std::string& row, const std::function<double()>& run_ours,
                                  const std::function<double()>& run_reference) {
  double ours = 0, theirs = 0;
  for (int r = 0; r < repeat; ++r) {
    std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
    if (r == 0 && std::getenv("DISTILL_PROFILE"))
      prof = std::make_unique<torch::autograd::profiler::RecordProfile>(std::string(std::getenv("DISTILL_PROFILE")) +
                                                                         "/" + row + ".json");
    const double o = run_ours();
    prof.reset();
    ours = std::max(ours, o);
    theirs = std::max(theirs, run_reference());
  }
  return {ours, theirs};
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t steps = 10;
  int threads = 0, repeat = 3;
  std::string only;  // one row by name (tiny, dense-20m, tiny-sft), e.g. to profile it alone
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::stoi(argv[++i]));
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
  }
  if (threads) torch::set_num_threads(threads);
  if (const char* p = std::getenv("DISTILL_PROFILE")) fs::create_directories(p);
  const double aten_peak = matmul_gflops(false), peak = matmul_gflops(true);
  std::printf("plain fp32 matmul 1024^3 on %d threads: ATen %.1f GFLOP/s, ours %.1f GFLOP/s (%s)\n",
              torch::get_num_threads(), aten_peak, peak,
              model::gemm::uses_onednn(torch::zeros({1024, 1024}), torch::zeros({1024, 1024})) ? "oneDNN" : "ATen");
  std::printf("%-10s %10s %8s %14s %14s %8s %12s %8s %8s\n", "model", "params", "batch", "distill tok/s", "python tok/s",
              "ratio", "GFLOP/s", "of mm", "ceiling");
  const auto dir = fs::temp_directory_path() / ("distill-bench-train-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto mid = student::find_preset("tiny")->config;  // ~20M dense, same family
  mid.hidden_size = 384;
  mid.intermediate_size = 1024;
  mid.num_hidden_layers = 12;
  mid.num_attention_heads = 6;
  mid.num_key_value_heads = 2;
  mid.tie_word_embeddings = false;
  for (auto [name, cfg, B, T] : {std::tuple{"tiny", student::find_preset("tiny")->config, 16, 128},
                                 std::tuple{"dense-20m", mid, 8, 256}}) {
    if (!only.empty() && only != name) continue;
    torch::manual_seed(0);
    model::Transformer m(cfg);
    m->train();
    const auto mdir = (dir / name).string();
    model::save_hf_dir(*m, mdir);
    auto ids = torch::randint(4, cfg.vocab_size, {4, B, T}, torch::kInt64);
    model::save_safetensors((dir / (std::string(name) + ".batches.safetensors")).string(), {{"ids", ids}});
    auto opt = train::make_adamw(*m, 1e-3, 0.1);
    const auto batches_file = (dir / (std::string(name) + ".batches.safetensors")).string();
    auto run = [&] {
      double t0 = now_s();
      std::int64_t tokens = 0;
      for (std::int64_t s = -1; s < steps; ++s) {  // step -1: a warm-up, untimed (as the reference's)
        if (s == 0) tokens = 0, t0 = now_s();
        auto batch = ids[(s + 4) % 4];
        model::ForwardInput in;
        in.input_ids = batch;
        in.hidden_only = true;
        auto h = m->forward(in).hidden;
        auto hs = h.narrow(1, 0, T - 1).reshape({-1, cfg.hidden_size});
        auto ys = batch.narrow(1, 1, T - 1).reshape({-1});
        auto loss = train::chunked_cross_entropy_sum(hs, m->output_weight(), ys, 0) / double(ys.size(0));
        opt->zero_grad();
        loss.backward();
        train::adamw_step(*opt, 1e-3, 1.0);
        tokens += B * T;
      }
      return double(tokens) / (now_s() - t0);
    };
    const auto [ours, theirs] = best_of(repeat, name, run, [&] { return reference_tokens_per_s(mdir, batches_file, steps); });
    // GFLOP/s counts the matmul work, 6 x matmul params x tokens (the untied input embedding is a lookup, not a
    // matmul; attention counts as free); "of mm" is that against our plain matmul rate. ceiling: the ratio a step
    // of ours made of nothing but those matmuls at that rate would reach against the reference's measured rate.
    const double mm_params = double(m->n_params() - (cfg.tie_word_embeddings ? 0 : cfg.vocab_size * cfg.hidden_size));
    const double gflops = 6.0 * mm_params * ours / 1e9;
    const double ceiling = theirs > 0 ? peak / (6.0 * mm_params * theirs / 1e9) : 0.0;
    std::printf("%-10s %10lld %5dx%-4d %12.0f %14.0f %7.2fx %12.1f %7.0f%% %7.2fx\n", name, (long long)m->n_params(), B, T,
                ours, theirs, theirs > 0 ? ours / theirs : 0.0, gflops, 100 * gflops / peak, ceiling);
  }
  if (only.empty() || only == "tiny-sft") {  // the trainer's step on demo-like rows
    auto cfg = student::find_preset("tiny")->config;
    const auto teacher_dir = std::string(DISTILL_SOURCE_TREE) + "/models/demo-teacher";
    auto tok = model::load_tokenizer(teacher_dir);
    cfg.vocab_size = tok->vocab_size();
    dataset::SynthOptions so;
    so.task = "chain";
    so.n = 4 * 32;
    so.difficulty_min = 1;
    so.difficulty_max = 4;
    so.seed = 7;
    std::vector<train::Example> ex;
    for (const auto& p : dataset::synthesize(so)) {
      train::Example e;
      e.ids = teacher::r1_prompt_ids(*tok, p.prompt);
      e.loss_from = std::int64_t(e.ids.size());
      const auto sol = p.solution.value_or("");
      const auto nl = sol.rfind('\n');
      auto c = tok->encode(sol.substr(0, nl) + "\n</think>\n" + sol.substr(nl + 1));
      e.ids.insert(e.ids.end(), c.begin(), c.end());
      e.ids.push_back(tok->eos_id());
      ex.push_back(std::move(e));
    }
    std::vector<const train::Example*> ptrs;
    for (const auto& e : ex) ptrs.push_back(&e);
    auto rows = train::pack_rows(ptrs, 128, tok->pad_id());
    const std::int64_t B = 32, S = std::int64_t(rows.size()) / B;
    std::vector<torch::Tensor> ids, labels;
    std::vector<std::int64_t> counted;
    std::vector<train::Batch> batches;
    torch::manual_seed(0);
    model::Transformer m(cfg);
    m->train();
    for (std::int64_t i = 0; i < S; ++i) {
      std::vector<train::Row> part(rows.begin() + i * B, rows.begin() + (i + 1) * B);
      std::vector<std::int64_t> flat_ids, flat_labels;
      std::int64_t used = 0;
      for (const auto& r : part) {
        flat_ids.insert(flat_ids.end(), r.ids.begin(), r.ids.end());
        flat_labels.insert(flat_labels.end(), r.labels.begin(), r.labels.end());
        used += r.used;
      }
      ids.push_back(torch::tensor(flat_ids, torch::kInt64).view({B, 128}));
      labels.push_back(torch::tensor(flat_labels, torch::kInt64).view({B, 128}));
      counted.push_back(used);
      batches.push_back(train::to_batch(part, torch::kCPU, train::ragged_rows_for(m, torch::kCPU)));  // as the trainer
    }
    const auto mdir = (dir / "tiny-sft").string();
    model::save_hf_dir(*m, mdir);
    const auto data = (dir / "tiny-sft.batches.safetensors").string();
    model::save_safetensors(data, {{"ids", torch::stack(ids)}, {"labels", torch::stack(labels)},
                                   {"tokens", torch::tensor(counted, torch::kInt64)}});
    auto opt = train::make_adamw(*m, 1e-3, 0.1);
    auto run = [&] {
      double t0 = now_s();
      std::int64_t tokens = 0;
      for (std::int64_t s = -1; s < steps; ++s) {  // step -1: a warm-up, untimed (as the reference's)
        if (s == 0) tokens = 0, t0 = now_s();
        const auto& b = batches[std::size_t((s + S) % S)];
        opt->zero_grad();
        (train::batch_loss_sum(m, b, 0) / double(b.targets)).backward();
        train::adamw_step(*opt, 1e-3, 1.0);
        tokens += b.tokens;
      }
      return double(tokens) / (now_s() - t0);
    };
    const auto [ours, theirs] = best_of(repeat, "tiny-sft", run, [&] { return reference_tokens_per_s(mdir, data, steps); });
    std::printf("%-10s %10lld %5lldx%-4d %12.0f %14.0f %7.2fx %12s %8s %8s\n", "tiny-sft", (long long)m->n_params(),
                (long long)B, 128, ours, theirs, theirs > 0 ? ours / theirs : 0.0, "-", "-", "-");
  }
  fs::remove_all(dir);
}
