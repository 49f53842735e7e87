// bench/bench_gemv.cpp: the decode step's matrix-vector products: model/cpu_gemv.h's 16-bit-weight kernel against
// ATen's fp32 product (the path it replaces) on a 0.2B student's shapes, one row, the machine's threads. Prints
// microseconds, the weight bytes streamed per second, and the ratio.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "model/cpu_gemm.h"
#include "model/cpu_gemv.h"

int main() {
  torch::NoGradGuard g;
  std::printf("bench_gemv: 1 row x [N, K] weights, %d threads\n", at::get_num_threads());
  for (auto [N, K] : {std::pair<long, long>{6144, 1024}, {1024, 3072}, {2048, 1024}, {32000, 1024}}) {
    auto w = torch::randn({N, K}).to(torch::kHalf).to(torch::kFloat);  // f16 values, as an f16 checkpoint holds
    auto w16 = distill::model::gemv::compact(w);
    if (!w16.defined()) {
      std::printf("  no AVX-512: the 16-bit path is off on this CPU\n");
      return 0;
    }
    auto x = torch::randn({1, K});
    auto time = [&](auto&& f) {
      for (int i = 0; i < 20; ++i) f();
      const int n = 300;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) f();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n;
    };
    const double a = time([&] { return distill::model::gemv::linear(x, w16); });
    const double b = time([&] { return distill::model::gemm::linear(x, w); });
    std::printf("  %5ld x %4ld: 16-bit %7.1f us (%5.1f GB/s), ATen fp32 %7.1f us (%5.1f GB/s), %.2fx\n", N, K, a * 1e6,
                double(N * K * 2) / a / 1e9, b * 1e6, double(N * K * 4) / b / 1e9, b / a);
  }
  // A whole decode step's products: 12 layers of distinct weights plus the output head, larger than any cache, so
  // this is the floor a step of the bench_export_decode student can reach (everything else in a step is overhead).
  std::vector<std::pair<at::Tensor, at::Tensor>> model;  // (w16, x) per product, in a step's order
  std::int64_t bytes = 0;
  for (int l = 0; l < 12; ++l)
    for (auto [N, K] : {std::pair<long, long>{2048, 1024}, {1024, 1024}, {6144, 1024}, {1024, 3072}}) {
      model.emplace_back(distill::model::gemv::compact(torch::randn({N, K}).to(torch::kHalf).to(torch::kFloat)),
                         torch::randn({1, K}));
      bytes += N * K * 2;
    }
  model.emplace_back(distill::model::gemv::compact(torch::randn({32000, 1024}).to(torch::kHalf).to(torch::kFloat)),
                     torch::randn({1, 1024}));
  bytes += 32000 * 1024 * 2;
  auto step = [&] {
    for (auto& [w16, x] : model) distill::model::gemv::linear(x, w16);
  };
  for (int i = 0; i < 3; ++i) step();
  const int n = 50;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n;
  std::printf("  a 217M-parameter step's 49 products (%.0f MB of f16): %.2f ms (%.1f GB/s), at most %.0f tokens/s\n",
              double(bytes) / 1e6, s * 1e3, double(bytes) / s / 1e9, 1.0 / s);
}
