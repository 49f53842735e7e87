// bench/bench_attention.cpp: causal training attention on the CPU, forward and forward + backward, of the fused
// narrow-head kernel (model/train_kernels.cpp) against LibTorch's SDPA (the flash CPU kernel, reading grouped kv
// heads itself) on the same tensors, in turns, best of --repeat each. Shapes: the tiny student's (16-wide heads,
// as bench_train's tiny rows), longer rows, 32-wide heads, and bench_train's dense-20m (64-wide); "packed" rows
// hold documents of 60-140 tokens back to back, where SDPA gets the block-diagonal causal mask the model builds
// and the fused kernel each query's first key. Usage: bench_attention [--repeat N] [--threads K]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "model/train_kernels.h"

namespace {
using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

int main(int argc, char** argv) {
  int repeat = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) torch::set_num_threads(std::atoi(argv[i + 1]));
  }
  std::printf("causal attention, fp32 CPU, %d threads, best of %d (ms)\n", torch::get_num_threads(), repeat);
  std::printf("%-28s %10s %10s %8s %12s %12s %8s\n", "shape B H K T d", "fused fwd", "sdpa fwd", "ratio",
              "fused f+b", "sdpa f+b", "ratio");
  struct Shape { std::int64_t B, H, K, T, d; bool packed; };
  for (auto c : {Shape{16, 8, 4, 128, 16, false}, Shape{32, 8, 4, 128, 16, false}, Shape{4, 8, 4, 512, 16, false},
                 Shape{8, 8, 4, 256, 32, false}, Shape{2, 4, 4, 1024, 32, false}, Shape{4, 8, 4, 512, 16, true},
                 Shape{2, 4, 4, 1024, 32, true}, Shape{8, 6, 2, 256, 64, false}}) {
    torch::manual_seed(0);
    torch::Tensor starts, mask;  // packed: each query's first key; the mask SDPA gets instead
    if (c.packed) {
      std::vector<std::int64_t> st(std::size_t(c.B * c.T));
      for (std::int64_t b = 0, doc = 0; b < c.B; ++b)
        for (std::int64_t i = 0, start = 0; i < c.T; ++i) {
          if (i - start >= 60 + (doc * 37) % 81) start = i, ++doc;  // lengths 60..140
          st[std::size_t(b * c.T + i)] = start;
        }
      starts = torch::tensor(st).view({c.B, c.T});
      auto keys = torch::arange(c.T).view({1, 1, c.T});
      mask = ((keys >= starts.unsqueeze(-1)) & (keys <= torch::arange(c.T).view({1, c.T, 1}))).unsqueeze(1);
    }
    auto q = torch::randn({c.B, c.H, c.T, c.d}).requires_grad_(true);
    auto k = torch::randn({c.B, c.K, c.T, c.d}).requires_grad_(true);
    auto v = torch::randn({c.B, c.K, c.T, c.d}).requires_grad_(true);
    auto up = torch::randn({c.B, c.T, c.H * c.d});
    const double scale = 1.0 / std::sqrt(double(c.d));
    double best[2][2] = {{1e9, 1e9}, {1e9, 1e9}};  // [fused|sdpa][fwd|fwd+bwd]
    for (int r = 0; r < repeat; ++r)
      for (int side = 0; side < 2; ++side) {  // in turns, so both see the same machine
        const auto t0 = Clock::now();
        auto o = side == 0 ? distill::model::fused::causal_attention(q, k, v, scale, starts)
                           : at::scaled_dot_product_attention(q, k, v, c.packed ? std::optional<at::Tensor>(mask) : std::nullopt, 0.0,
                                                                 !c.packed, scale, true)
                                 .transpose(1, 2)
                                 .reshape({c.B, c.T, c.H * c.d});
        const auto t1 = Clock::now();
        o.backward(up);
        const auto t2 = Clock::now();
        best[side][0] = std::min(best[side][0], seconds(t0, t1));
        best[side][1] = std::min(best[side][1], seconds(t0, t2));
        q.mutable_grad().reset(), k.mutable_grad().reset(), v.mutable_grad().reset();
      }
    const auto shape = std::to_string(c.B) + " " + std::to_string(c.H) + " " + std::to_string(c.K) + " " +
                       std::to_string(c.T) + " " + std::to_string(c.d) + (c.packed ? " packed" : "");
    std::printf("%-28s %10.2f %10.2f %7.2fx %12.2f %12.2f %7.2fx\n", shape.c_str(), best[0][0] * 1e3, best[1][0] * 1e3,
                best[1][0] / best[0][0], best[0][1] * 1e3, best[1][1] * 1e3, best[1][1] / best[0][1]);
  }
}
