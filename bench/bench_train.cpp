// bench/bench_train.cpp: student training throughput (tokens/s) on the CPU for the tiny preset and a ~20M-param
// dense model, side by side in one run with the PyTorch-Python eager reference (bench/reference_train.py) of the
// same weights, batches and optimizer (AdamW, clip 1.0). Also prints effective GFLOP/s (6 x params x tokens / s)
// against a plain fp32 matmul measured in the same run. Asserts nothing.
// Usage: bench_train [--steps N] [--threads K]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "distill/chunked_ce.h"
#include "distill_version.h"
#include "model/hf_checkpoint.h"
#include "model/weights_io.h"
#include "student/presets.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double matmul_gflops() {
  auto a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
  for (int i = 0; i < 3; ++i) torch::mm(a, b);
  const int reps = 20;
  const double t0 = now_s();
  for (int i = 0; i < reps; ++i) torch::mm(a, b);
  return 2.0 * 1024 * 1024 * 1024 * reps / (now_s() - t0) / 1e9;
}
}  // namespace

int main(int argc, char** argv) {
  std::int64_t steps = 10;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
  }
  if (threads) torch::set_num_threads(threads);
  const double peak = matmul_gflops();
  std::printf("plain fp32 matmul 1024^3: %.1f GFLOP/s on %d threads\n", peak, torch::get_num_threads());
  std::printf("%-10s %10s %8s %14s %14s %8s %12s %8s\n", "model", "params", "batch", "distill tok/s", "python tok/s",
              "ratio", "GFLOP/s", "of mm");
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
    torch::manual_seed(0);
    model::Transformer m(cfg);
    m->train();
    const auto mdir = (dir / name).string();
    model::save_hf_dir(*m, mdir);
    auto ids = torch::randint(4, cfg.vocab_size, {4, B, T}, torch::kInt64);
    model::save_safetensors((dir / (std::string(name) + ".batches.safetensors")).string(), {{"ids", ids}});
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& p : m->named_parameters())
      (p.value().dim() >= 2 && p.key().find("norm") == std::string::npos ? decay : no_decay).push_back(p.value());
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}).weight_decay(0.1)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}).weight_decay(0.0)));
    torch::optim::AdamW opt(std::move(groups));
    const double t0 = now_s();
    std::int64_t tokens = 0;
    for (std::int64_t s = 0; s < steps; ++s) {
      auto batch = ids[s % 4];
      model::ForwardInput in;
      in.input_ids = batch;
      in.hidden_only = true;
      auto h = m->forward(in).hidden;
      auto hs = h.narrow(1, 0, T - 1).reshape({-1, cfg.hidden_size});
      auto ys = batch.narrow(1, 1, T - 1).reshape({-1});
      auto loss = train::chunked_cross_entropy_sum(hs, m->output_weight(), ys, 0) / double(ys.size(0));
      opt.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(m->parameters(), 1.0);
      opt.step();
      tokens += B * T;
    }
    const double ours = double(tokens) / (now_s() - t0);
    const std::string cmd = std::string(DISTILL_SOURCE_TREE) + "/.venv/bin/python " + DISTILL_SOURCE_TREE +
                            "/bench/reference_train.py " + mdir + " " + (dir / (std::string(name) + ".batches.safetensors")).string() +
                            " --steps " + std::to_string(steps) + " --threads " + std::to_string(torch::get_num_threads());
    double theirs = 0;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[512] = {};
      std::string out;
      while (fgets(buf, sizeof buf, p)) out += buf;
      pclose(p);
      try {
        auto j = nlohmann::json::parse(out.substr(out.rfind('{')));
        theirs = j["tokens"].get<double>() / j["seconds"].get<double>();
      } catch (...) {
        std::fprintf(stderr, "reference failed: %s\n", out.c_str());
      }
    }
    const double gflops = 6.0 * double(m->n_params()) * ours / 1e9;
    std::printf("%-10s %10lld %5dx%-4d %12.0f %14.0f %7.2fx %12.1f %7.0f%%\n", name, (long long)m->n_params(), B, T, ours,
                theirs, theirs > 0 ? ours / theirs : 0.0, gflops, 100 * gflops / peak);
  }
  fs::remove_all(dir);
}
