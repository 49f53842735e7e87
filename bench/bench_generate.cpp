// bench/bench_generate.cpp: teacher generation throughput (generated tokens/s) at batch 1 and batch 32 on this
// machine, side by side in one run with the PyTorch-Python eager reference (bench/reference_generate.py) on the
// same weights, prompts and sampling. Each side reports its best of --repeat runs (default 3: this machine is
// noisy, and the best run is the one least disturbed). Prints the ratio; asserts nothing.
// Usage: bench_generate [MODEL_DIR] [--max-tokens N] [--threads K] [--repeat R]   (default: models/demo-teacher)
// DISTILL_PROFILE=trace.json writes a LibTorch profiler trace of the batch-32 run.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bench/reference_run.h"
#include "dataset/synth.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "teacher/engine.h"
#include "teacher/generate.h"
#include "teacher/prompt_format.h"
#include "distill_version.h"

using namespace distill;

int main(int argc, char** argv) {
  std::string dir = std::string(DISTILL_SOURCE_TREE) + "/models/demo-teacher";
  std::int64_t max_tokens = 64;
  int threads = 0, repeat = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--max-tokens" && i + 1 < argc) max_tokens = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::max(1, std::stoi(argv[++i]));
    else dir = a;
  }
  if (threads) torch::set_num_threads(threads);
  auto model = model::load_hf_dir(dir, torch::kCPU);
  auto tok = model::load_tokenizer(dir);
  // Prompts of one common length, so the reference needs no padding: synthetic chain problems, R1 format.
  dataset::SynthOptions so;
  so.task = "chain";
  so.n = 2000;
  so.difficulty_min = 1;
  so.difficulty_max = 3;
  so.seed = 99;
  std::map<std::size_t, std::vector<std::vector<int>>> by_len;
  for (const auto& p : dataset::synthesize(so)) {
    auto ids = teacher::r1_prompt_ids(*tok, p.prompt);
    by_len[ids.size()].push_back(ids);
  }
  auto& prompts = std::max_element(by_len.begin(), by_len.end(), [](auto& a, auto& b) { return a.second.size() < b.second.size(); })->second;
  std::printf("model %s: %lld params (%lld active), prompts of %zu tokens, %lld new tokens each, %d threads\n",
              dir.c_str(), (long long)model->n_params(), (long long)model->n_active_params(), prompts[0].size(),
              (long long)max_tokens, torch::get_num_threads());
  std::printf("%-8s %10s %14s %14s %8s\n", "batch", "sequences", "distill tok/s", "python tok/s", "ratio");
  const auto tmp = std::filesystem::temp_directory_path() / ("distill-bench-gen-" + std::to_string(::getpid()) + ".json");
  for (std::int64_t batch : {1, 32}) {
    const std::int64_t n = batch == 1 ? 4 : 64;
    std::vector<std::vector<int>> use(prompts.begin(), prompts.begin() + std::min<std::size_t>(std::size_t(n), prompts.size()));
    teacher::EngineOptions eo;
    eo.max_batch = batch;
    eo.max_seq_len = std::int64_t(use[0].size()) + max_tokens + 2;
    eo.eos_id = -1;  // no early stop: both sides generate exactly max_tokens per sequence
    teacher::Engine engine(model, eo);
    teacher::SamplingParams sp;
    sp.temperature = 0.6;
    sp.top_p = 0.95;
    sp.max_tokens = max_tokens;
    double ours = 0;
    for (int r = 0; r < repeat; ++r) {
      std::deque<teacher::GenRequest> q;
      for (std::size_t i = 0; i < use.size(); ++i) q.push_back({std::int64_t(i), use[i], 1000 + i});
      const auto t0 = std::chrono::steady_clock::now();
      std::int64_t toks = 0;
      auto count = [&](teacher::GenResult&& res) { toks += std::int64_t(res.tokens.size()); };
      if (batch == 32 && r == 0 && std::getenv("DISTILL_PROFILE")) {
        torch::autograd::profiler::RecordProfile guard(std::getenv("DISTILL_PROFILE"));
        engine.run(q, sp, count);
      } else {
        engine.run(q, sp, count);
      }
      ours = std::max(ours, double(toks) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::ofstream(tmp) << nlohmann::json(use).dump();
    const double theirs = bench::reference_tokens_per_s(
        "reference_generate.py " + dir + " " + tmp.string() + " --batch " + std::to_string(batch) + " --max-tokens " +
        std::to_string(max_tokens) + " --threads " + std::to_string(torch::get_num_threads()) + " --repeat " +
        std::to_string(repeat));
    std::printf("%-8lld %10zu %14.0f %14.0f %7.2fx\n", (long long)batch, use.size(), ours, theirs, theirs > 0 ? ours / theirs : 0.0);
  }
  std::filesystem::remove(tmp);
}
