// tests/test_cpu_gemm.cpp: model/cpu_gemm.h, the fp32 CPU products that go through oneDNN: equal to ATen's up to
// fp32 rounding (values, transposed and strided operands, accumulation, linear's gradients), taken where
// expected, and safe against signals arriving in the middle of a product; and model/cpu_gemv.h's decode products
// with 16-bit weight copies, equal to the fp32 product of the same values.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <catch2/catch.hpp>
#include <pthread.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "model/cpu_gemm.h"
#include "model/cpu_avx512.h"
#include "model/cpu_gemv.h"

using namespace distill::model;

namespace {

// The CPUs oneDNN's fp32 matmul entry in LibTorch accepts (avx512bw, vl and dq), unless it is turned off.
bool expect_onednn() {
  if (const char* e = std::getenv("DISTILL_CPU_GEMM"); e && std::string(e) == "aten") return false;
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

std::atomic<long> g_hits{0};
extern "C" void count_signal(int) { g_hits.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

TEST_CASE("gemm: products equal ATen's for plain, transposed and strided operands and accumulation") {
  torch::manual_seed(3);
  auto a = at::randn({256, 96}), b = at::randn({96, 192});
  CHECK(gemm::uses_onednn(a, b) == expect_onednn());
  CHECK_FALSE(gemm::uses_onednn(at::randn({4, 8}), at::randn({8, 4})));  // a small product stays with ATen
  CHECK(max_diff(gemm::mm(a, b), at::mm(a, b)) < 1e-4);                 // values ~ N(0, 96)
  auto at_ = at::randn({96, 256}).t(), bt = at::randn({192, 96}).t();    // transposed views
  CHECK(max_diff(gemm::mm(at_, bt), at::mm(at_, bt)) < 1e-4);
  auto strided = at::randn({256, 192}).narrow(1, 0, 96);  // neither contiguous nor transposed: copied first
  CHECK(max_diff(gemm::mm(strided, b), at::mm(strided, b)) < 1e-4);
  auto out = at::randn({256, 192});
  const auto expected = out + at::mm(a, b);
  gemm::mm_into(a, b, out, true);
  CHECK(max_diff(out, expected) < 1e-4);
  gemm::mm_into(at_, bt, out, false);
  CHECK(max_diff(out, at::mm(at_, bt)) < 1e-4);
}

TEST_CASE("gemm: linear's values and gradients equal at::linear's, with and without bias, for 3-D input") {
  for (bool with_bias : {true, false}) {
    torch::manual_seed(with_bias ? 5 : 6);
    auto x = at::randn({4, 64, 96}).requires_grad_(true), w = at::randn({192, 96}).mul_(0.1).requires_grad_(true);
    auto bias = with_bias ? at::randn({192}).requires_grad_(true) : at::Tensor();
    auto g = at::randn({4, 64, 192});
    auto x2 = x.detach().clone().requires_grad_(true), w2 = w.detach().clone().requires_grad_(true);
    auto b2 = with_bias ? bias.detach().clone().requires_grad_(true) : at::Tensor();
    auto y = gemm::linear(x, w, bias), y2 = at::linear(x2, w2, b2);
    CHECK(y.sizes() == y2.sizes());
    CHECK(max_diff(y, y2) < 1e-4);
    (y * g).sum().backward();
    (y2 * g).sum().backward();
    CHECK(max_diff(x.grad(), x2.grad()) < 1e-4);
    CHECK(max_diff(w.grad(), w2.grad()) < 1e-3);  // sums over 256 rows of ~N(0, 192) terms
    if (with_bias) CHECK(max_diff(bias.grad(), b2.grad()) < 1e-4);
    torch::NoGradGuard no_grad;  // the same values without a graph
    CHECK(max_diff(gemm::linear(x, w, bias), y2) < 1e-4);
  }
}

TEST_CASE("gemm: signals sent to the process during oneDNN products corrupt nothing") {
  // oneDNN's kernels write below the stack pointer where a signal frame lands (model/cpu_gemm.cpp): unguarded,
  // this storm corrupted the heap within a few thousand products.
  const int threads = at::get_num_threads();
  at::set_num_threads(2);  // the OpenMP worker runs part of each product too
  struct sigaction sa {}, old {};
  sa.sa_handler = count_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, &old);
  torch::manual_seed(7);
  auto a = at::randn({384, 128}), b = at::randn({128, 512});
  const auto reference = at::mm(a, b);
  std::atomic<bool> stop{false};
  g_hits = 0;
  std::thread storm([&] {
    while (!stop.load()) {
      ::kill(::getpid(), SIGUSR1);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  int wrong = 0;
  for (int i = 0; i < 3000; ++i) {
    auto out = at::empty({384, 512});
    gemm::mm_into(a, b, out, false);
    wrong += max_diff(out, reference) > 1e-3;
  }
  stop = true;
  storm.join();
  sigaction(SIGUSR1, &old, nullptr);
  at::set_num_threads(threads);
  CHECK(wrong == 0);
  CHECK(g_hits.load() > 1000);  // the signals really arrived, between products
}

TEST_CASE("gemv: 16-bit weight copies are made only when exact, and their products equal the fp32 product") {
  torch::NoGradGuard g;
  torch::manual_seed(3);
  const bool avx512 = avx512_usable();  // the kernel's own check
  auto w = torch::randn({130, 40});
  CHECK_FALSE(gemv::compact(w).defined());  // fp32 values: no exact 16-bit copy
  if (!avx512) {
    CHECK_FALSE(gemv::compact(w.to(torch::kHalf).to(torch::kFloat)).defined());
    return;
  }
  CHECK(gemv::compact(w.to(torch::kHalf).to(torch::kFloat)).scalar_type() == torch::kHalf);
  auto wide = w * 1e6;  // out of f16's range: only bf16 holds these exactly once rounded to it
  CHECK(gemv::compact(wide.to(torch::kBFloat16).to(torch::kFloat)).scalar_type() == torch::kBFloat16);
  CHECK(gemv::compact(torch::randn({2100, 1024}).to(torch::kHalf).to(torch::kFloat)).defined());  // huge-page copy
  for (auto dt : {torch::kHalf, torch::kBFloat16})
    for (std::int64_t K : {16, 40, 1000, 1024})
      for (std::int64_t N : {1, 7, 130})
        for (std::int64_t M : {1, 2, 3, 5, 8}) {
          INFO(dt << " K " << K << " N " << N << " M " << M);
          auto w32 = torch::randn({N, K}).to(dt).to(torch::kFloat);
          auto w16 = gemv::compact(w32);
          REQUIRE(w16.defined());
          auto x = torch::randn({M, 1, K});
          auto bias = torch::randn({N});
          REQUIRE(gemv::applies(x, w16));
          auto want = at::linear(x.to(torch::kDouble), w32.to(torch::kDouble), bias.to(torch::kDouble));
          auto got = gemv::linear(x, w16, bias);
          CHECK(got.sizes() == want.sizes());
          CHECK(max_diff(got.to(torch::kDouble), want) < 1e-4 * std::sqrt(double(K)));
          CHECK(max_diff(gemv::linear(x, w16), want - bias.to(torch::kDouble)) < 1e-4 * std::sqrt(double(K)));
        }
  CHECK_FALSE(gemv::applies(torch::randn({9, 16}), gemv::compact(torch::ones({4, 16}))));  // more rows: fp32 path
}
