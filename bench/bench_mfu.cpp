// bench/bench_mfu.cpp: model FLOPs utilisation of a student preset's training step in bf16 autocast (default
// qwen2.5-1.5b at seq 4096 on CUDA), side by side with the PyTorch-Python eager reference (bench/reference_train.py
// --device cuda --bf16: the same weights, batches and AdamW, attention through F.scaled_dot_product_attention).
// The step is the trainer's: forward to the final norm, cross-entropy over vocabulary slices, backward, clip,
// AdamW on fp32 master weights. FLOPs per token follow PaLM (appendix B): 6 x matmul parameters (the input
// embedding is a lookup) + 12 x layers x heads x head_dim x seq for attention, so MFU = that x tokens/s / peak.
// Peak bf16 dense FLOP/s comes from the GPU's name (H100/H200 SXM 989, NVL 835, H100 PCIe 756, A100 312, L40S 362)
// or --peak-tflops; without either it prints tokens/s and TFLOP/s only.
// On a machine without CUDA it says so and exits 0; `--device cpu --preset tiny --seq 128 --peak-tflops P` runs
// the same code on the CPU (a smoke run, not a measurement). Asserts nothing.
// Usage: bench_mfu [--preset NAME] [--seq T] [--batch B] [--steps N] [--vocab-chunk C] [--device cuda|cpu]
//                  [--peak-tflops P] [--no-reference]
// DISTILL_PROFILE=trace.json profiles one more step after the timed ones (Kineto, CPU + CUDA activities): writes
// the trace and prints the kernels that took most device time, with their share of the step's wall time.
#include <ATen/autocast_mode.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <kineto/ActivityType.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "bench/reference_run.h"
#include "distill/chunked_ce.h"
#include "distill/optimizer.h"
#include "model/hf_checkpoint.h"
#include "model/weights_io.h"
#include "student/presets.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The name nvidia-smi gives CUDA device `index`. nvidia-smi counts all GPUs; CUDA only CUDA_VISIBLE_DEVICES's, in
// its order, so the index goes through that list (an entry nvidia-smi also takes: a number or a GPU-... UUID).
std::string gpu_name(int index) {
  std::string out, id = std::to_string(index);
  if (const char* vis = std::getenv("CUDA_VISIBLE_DEVICES"); vis && *vis) {
    std::string list = vis;
    for (int i = 0; i < index && list.find(',') != std::string::npos; ++i) list = list.substr(list.find(',') + 1);
    id = list.substr(0, list.find(','));
  }
  const auto cmd = "nvidia-smi --query-gpu=name --format=csv,noheader -i " + id + " 2>/dev/null";
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256] = {};
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Dense bf16 tensor-core peak of the data-centre parts this project is measured on (vendor datasheets, SXM).
double peak_tflops_of(const std::string& name) {
  for (const auto& [key, tflops] : std::vector<std::pair<std::string, double>>{
           {"H100 PCIe", 756.0}, {"H100 NVL", 835.0}, {"H200 NVL", 835.0}, {"H200", 989.0}, {"H100", 989.0},
           {"A100", 312.0}, {"L40S", 362.0}})
    if (name.find(key) != std::string::npos) return tflops;
  return 0;
}

// Runs `step` once under the Kineto profiler, saves the trace to `path`, and prints the events of the step's
// device by total time: on CUDA its kernels, copies and memsets (annotations and syncs left out, so the sum is
// device busy time, and its gap to the wall is idle device time plus the profiler's own overhead); on the CPU
// its operators, which nest and so overlap.
template <class Step, class Sync>
void profile_step(const std::string& path, const torch::Device& device, Step&& step, Sync&& sync) {
  namespace prof = torch::profiler::impl;
  namespace ap = torch::autograd::profiler;
  std::set<prof::ActivityType> activities{prof::ActivityType::CPU};
  if (device.is_cuda()) activities.insert(prof::ActivityType::CUDA);
  const prof::ProfilerConfig config(prof::ProfilerState::KINETO);
  ap::prepareProfiler(config, activities);
  ap::enableProfiler(config, activities);
  const double t0 = now_s();
  step();
  sync();
  const double wall_ms = (now_s() - t0) * 1e3;
  auto result = ap::disableProfiler();
  result->save(path);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) std::fprintf(stderr, "bench_mfu: the profiler wrote no trace to %s\n", path.c_str());
  auto device_work = [&](const torch::autograd::profiler::KinetoEvent& e) {
    if (e.deviceType() != device.type()) return false;
    if (!device.is_cuda()) return true;
    const auto t = e.activityType();
    return t == std::uint8_t(libkineto::ActivityType::CONCURRENT_KERNEL) ||
           t == std::uint8_t(libkineto::ActivityType::GPU_MEMCPY) || t == std::uint8_t(libkineto::ActivityType::GPU_MEMSET);
  };
  std::map<std::string, std::pair<double, long>> by_name;  // name -> (total ms, count)
  double total_ms = 0;
  for (const auto& e : result->events()) {
    if (!device_work(e)) continue;
    auto& [ms, n] = by_name[e.name()];
    ms += double(e.durationNs()) / 1e6;
    ++n;
    total_ms += double(e.durationNs()) / 1e6;
  }
  std::vector<std::pair<std::string, std::pair<double, long>>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::printf("profile: one step, %.1f ms wall; %s events %.1f ms in all (%s); trace %s\n", wall_ms,
              device.is_cuda() ? "device" : "CPU operator", total_ms,
              device.is_cuda() ? "kernels, copies and memsets: the gap to the wall is idle time and profiler overhead"
                               : "nested, so they overlap",
              path.c_str());
  std::printf("  %9s %6s %6s  %s\n", "ms", "wall%", "calls", "name");
  for (std::size_t i = 0; i < rows.size() && i < 30; ++i) {
    const auto& [name, v] = rows[i];
    std::printf("  %9.2f %5.1f%% %6ld  %.110s\n", v.first, 100 * v.first / wall_ms, v.second, name.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "qwen2.5-1.5b", device_name = "cuda";
  std::int64_t seq = 4096, batch = 1, steps = 10, vocab_chunk = 32768;
  double peak = 0;
  bool reference = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--preset") preset = next();
    else if (a == "--seq") seq = std::stoll(next());
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--steps") steps = std::stoll(next());
    else if (a == "--vocab-chunk") vocab_chunk = std::stoll(next());
    else if (a == "--device") device_name = next();
    else if (a == "--peak-tflops") peak = std::stod(next());
    else if (a == "--no-reference") reference = false;
    else {
      std::fprintf(stderr, "bench_mfu: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const auto* p = student::find_preset(preset);
  if (!p) {
    std::fprintf(stderr, "bench_mfu: unknown preset %s (presets: %s)\n", preset.c_str(), student::preset_names().c_str());
    return 2;
  }
  const torch::Device device(device_name);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::printf("bench_mfu: no CUDA device here; run it on a GPU machine (or --device cpu for a smoke run)\n");
    return 0;
  }
  const std::string name = device.is_cuda() ? gpu_name(device.has_index() ? device.index() : 0) : "cpu";
  if (peak <= 0) peak = peak_tflops_of(name);
  if (peak <= 0)
    std::fprintf(stderr, "bench_mfu: no known bf16 peak for '%s' (--peak-tflops gives one): tokens/s and TFLOP/s only\n",
                 name.empty() ? "this GPU" : name.c_str());
  const auto& cfg = p->config;
  torch::manual_seed(0);
  model::Transformer m(cfg);
  m->train();
  const auto dir = fs::temp_directory_path() / ("distill-bench-mfu-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto mdir = (dir / "model").string(), batches = (dir / "batches.safetensors").string();
  if (reference) model::save_hf_dir(*m, mdir);
  auto ids = torch::randint(4, cfg.vocab_size, {2, batch, seq}, torch::kInt64);  // two batches, taken in turn
  if (reference) model::save_safetensors(batches, {{"ids", ids}});
  m->to(device);
  auto ids_dev = ids.to(device);
  auto opt = train::make_adamw(*m, 1e-4, 0.1);
  const auto type = device.type();

  auto step = [&](std::int64_t s) {
    auto b = ids_dev[s % 2];
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, true);
    {
      model::ForwardInput in;  // next-token loss on the first seq - 1 positions, as the reference
      in.input_ids = b;
      in.hidden_only = true;
      auto h = m->forward(in).hidden.narrow(1, 0, seq - 1).reshape({-1, cfg.hidden_size});
      auto ys = b.narrow(1, 1, seq - 1).reshape({-1});
      auto loss = train::chunked_cross_entropy_sum(h, m->output_weight(), ys, vocab_chunk) / double(ys.size(0));
      opt->zero_grad();
      loss.backward();
    }
    at::autocast::set_autocast_enabled(type, false);
    at::autocast::clear_cache();
    train::adamw_step(*opt, 1e-4, 1.0);
  };
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
  };
  for (std::int64_t s = 0; s < 2; ++s) step(s);  // warm-up: allocator, kernels, optimizer state
  sync();
  const double t0 = now_s();
  for (std::int64_t s = 0; s < steps; ++s) step(s);
  sync();
  const double ours = double(steps * batch * seq) / (now_s() - t0);

  const double mm_params = double(m->n_params() - (cfg.tie_word_embeddings ? 0 : cfg.vocab_size * cfg.hidden_size));
  const double flops_per_token = 6.0 * mm_params + 12.0 * double(cfg.num_hidden_layers) * double(cfg.num_attention_heads) *
                                                       double(cfg.attn_head_dim()) * double(seq);
  // Our row goes out before the reference starts, so a reference that fails or runs past a time limit (a lent GPU
  // is held for minutes) does not take the measurement with it.
  std::printf("bench_mfu: %s on %s, bf16 autocast, seq %lld x batch %lld, %lld steps\n", preset.c_str(), name.c_str(),
              (long long)seq, (long long)batch, (long long)steps);
  std::printf("%-16s %14s %12s %8s\n", "", "tokens/s", "TFLOP/s", "MFU");
  auto row = [&](const char* who, double tps) {
    const double tflops = flops_per_token * tps / 1e12;
    if (peak > 0) std::printf("%-16s %14.0f %12.1f %7.1f%%\n", who, tps, tflops, 100 * tflops / peak);
    else std::printf("%-16s %14.0f %12.1f %8s\n", who, tps, tflops, "-");
    std::fflush(stdout);
  };
  row("distill", ours);
  if (const char* trace = std::getenv("DISTILL_PROFILE"); trace && *trace)  // after the row: a failure keeps it
    profile_step(trace, device, [&] { step(steps); }, sync);
  if (reference) {
    opt.reset();  // the GPU's memory to the reference: optimizer state, gradients, weights, batches
    m->zero_grad(true);
    m->to(torch::kCPU);
    ids_dev = torch::Tensor();
    if (device.is_cuda()) {
      torch::cuda::synchronize();
      c10::cuda::CUDACachingAllocator::emptyCache();
    }
    const double theirs = bench::reference_tokens_per_s("reference_train.py " + mdir + " " + batches + " --steps " +
                                                        std::to_string(steps) + " --warmup 2 --device " + device_name +
                                                        " --bf16");
    if (theirs > 0) row("pytorch eager", theirs);
    std::printf("ratio %.2fx (%.3g FLOPs per token", theirs > 0 ? ours / theirs : 0.0, flops_per_token);
    if (peak > 0) std::printf("; peak %.4g TFLOP/s", peak);
    std::printf(")\n");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
