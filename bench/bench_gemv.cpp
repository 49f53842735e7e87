// bench/bench_gemv.cpp: the decode step's matrix-vector products: model/cpu_gemv.h's 16-bit-weight kernel against
// ATen's fp32 product (the path it replaces) on a 0.2B student's shapes, one row, the machine's threads. Prints
// microseconds, the weight bytes streamed per second, and the ratio.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

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
}
