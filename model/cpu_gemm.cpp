// model/cpu_gemm.cpp: see cpu_gemm.h. The oneDNN entry is ATen's own at::native::mkldnn_matmul (the function
// behind its bf16 and opt-in "bf32" addmm), which libtorch_cpu exports but whose header the wheel does not ship:
// it is declared here with the signature torch 2.11 exports. Whether it runs (a CPU without AVX-512, or a LibTorch
// built without oneDNN, makes it throw) is found out once, on a tiny product checked against at::mm.
//
// Signals: oneDNN's JIT matmul kernels keep data below the stack pointer past the 128 bytes the x86-64 ABI lets
// a signal frame skip, so a signal handler that runs on a thread inside such a kernel overwrites it. Measured
// here: a no-op SIGUSR1 handler, signalled every 50 us, corrupted the heap within 4000 products of 384x128x512
// (a SIGINT during `distill train` did the same, about 1 run in 8); on an alternate signal stack nothing broke, and
// ATen's MKL path takes the same storm unharmed. So every oneDNN call runs with the asynchronous signals blocked
// on its thread (pending ones arrive as the call returns; two syscalls per product, under 1% of one), and the
// OpenMP workers, which run parts of the same kernels, block them for good: a signal sent to the process goes to
// a thread that does not block it, the main thread between products.
#include "model/cpu_gemm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <pthread.h>
#include <torch/csrc/autograd/custom_function.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace at::native {
// result = beta * result + alpha * (mat1 @ mat2); 2-D (or 3-D batched) operands, each contiguous or a transposed
// view (others are made contiguous); result contiguous. fp32 runs in plain fp32 unless
// torch.backends.mkldnn's fp32 precision is lowered (distill never does).
TORCH_API void mkldnn_matmul(const Tensor& mat1, const Tensor& mat2, const Tensor& result, float beta, float alpha);
}  // namespace at::native

namespace distill::model::gemm {

namespace {

// Below this much work (M*N*K) or this many rows or columns, MKL's lower fixed cost wins (measured here: oneDNN
// is at parity at 64x128x256 and at half MKL's speed at 16x128x256).
constexpr std::int64_t kMinWork = std::int64_t(1) << 22;
constexpr std::int64_t kMinSide = 16;

// Every signal but the synchronous ones (a fault in the kernel must still stop the program where it happens).
sigset_t async_signals() {
  sigset_t s;
  sigfillset(&s);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) sigdelset(&s, sig);
  return s;
}

// The OpenMP workers of a pool of n threads block the asynchronous signals, once per pool size.
void block_signals_in_workers() {
  static std::atomic<int> done{1};
  const int n = at::get_num_threads();
  if (n <= done.load(std::memory_order_relaxed) || at::in_parallel_region()) return;
  const auto caller = pthread_self();
  at::parallel_for(0, n, 1, [&](std::int64_t, std::int64_t) {
    if (pthread_equal(pthread_self(), caller)) return;
    const auto s = async_signals();
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
  });
  done.store(n, std::memory_order_relaxed);
}

// at::native::mkldnn_matmul with this thread's asynchronous signals held back (see the top of the file).
void onednn_matmul(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, float beta) {
  block_signals_in_workers();
  const auto s = async_signals();
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &s, &old);
  try {
    at::native::mkldnn_matmul(a, b, out, beta, 1.0f);
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

bool onednn_runs() {
  static const bool ok = [] {
    if (const char* e = std::getenv("DISTILL_CPU_GEMM"); e && std::strcmp(e, "aten") == 0) return false;
    try {
      auto a = at::arange(12, at::kFloat).view({3, 4}).div_(7), b = at::arange(8, at::kFloat).view({4, 2}).sub_(3);
      auto out = at::empty({3, 2}, at::kFloat);
      onednn_matmul(a, b, out, 0.0f);
      return at::allclose(out, at::mm(a, b), 1e-5, 1e-6);
    } catch (const std::exception&) {
      return false;
    }
  }();
  return ok;
}

bool applies(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.layout() == at::kStrided &&
         !at::autocast::is_autocast_enabled(at::kCPU) && onednn_runs();
}

bool big_enough(std::int64_t m, std::int64_t k, std::int64_t n) {
  return m >= kMinSide && n >= kMinSide && k > 0 && m * n * k >= kMinWork;
}

bool tracked(const at::Tensor& t) { return t.defined() && t.requires_grad() && at::GradMode::is_enabled(); }

// x2 [M, K] w^T (+ bias) through oneDNN; the caller has checked uses_onednn.
at::Tensor linear_2d(const at::Tensor& x2, const at::Tensor& w, const at::Tensor& bias) {
  auto y = at::empty({x2.size(0), w.size(0)}, x2.options());
  onednn_matmul(x2, w.t(), y, 0.0f);
  if (bias.defined()) y.add_(bias);
  return y;
}

std::vector<std::int64_t> out_sizes(const at::Tensor& x, std::int64_t n) {
  auto s = x.sizes().vec();
  s.back() = n;
  return s;
}

struct LinearFn : public torch::autograd::Function<LinearFn> {
  // bias as an optional: an undefined tensor argument is not allowed, an empty optional is (not a variable).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const std::optional<at::Tensor>& bias_opt) {
    const auto bias = bias_opt.value_or(at::Tensor());
    auto x2 = x.reshape({-1, x.size(-1)});
    ctx->save_for_backward({x2, w});
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    ctx->saved_data["bias"] = bias.defined();
    return linear_2d(x2, w, bias).view(out_sizes(x, w.size(0)));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const auto& x2 = saved[0];
    const auto& w = saved[1];
    auto dy = grad_out[0].reshape({-1, w.size(0)});
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) dx = gemm::mm(dy, w).view(ctx->saved_data["x_sizes"].toIntVector());
    if (ctx->needs_input_grad(1)) dw = gemm::mm(dy.t(), x2);
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

bool uses_onednn(const at::Tensor& a, const at::Tensor& b) {
  return a.dim() == 2 && b.dim() == 2 && applies(a) && applies(b) && big_enough(a.size(0), a.size(1), b.size(1));
}

void mm_into(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, bool accumulate) {
  if (uses_onednn(a, b) && applies(out) && out.is_contiguous() && !tracked(a) && !tracked(b) && !tracked(out)) {
    onednn_matmul(a, b, out, accumulate ? 1.0f : 0.0f);
    return;
  }
  at::Tensor o = out;
  if (accumulate) o.addmm_(a, b);
  else at::mm_out(o, a, b);
}

at::Tensor mm(const at::Tensor& a, const at::Tensor& b) {
  if (!uses_onednn(a, b) || tracked(a) || tracked(b)) return at::mm(a, b);
  auto out = at::empty({a.size(0), b.size(1)}, a.options());
  onednn_matmul(a, b, out, 0.0f);
  return out;
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  const bool ours = x.dim() >= 1 && w.dim() == 2 && x.size(-1) == w.size(1) && applies(x) && applies(w) && (!bias.defined() || applies(bias)) &&
                    big_enough(x.numel() / std::max<std::int64_t>(x.size(-1), 1), x.size(-1), w.size(0));
  if (!ours) return at::linear(x, w, bias);
  if (tracked(x) || tracked(w) || tracked(bias))
    return LinearFn::apply(x, w, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt);
  return linear_2d(x.reshape({-1, x.size(-1)}), w, bias).view(out_sizes(x, w.size(0)));
}

}  // namespace distill::model::gemm
