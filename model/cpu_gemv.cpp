// model/cpu_gemv.cpp: see cpu_gemv.h. Only the kernel functions are compiled for AVX-512 (a target attribute, not
// a file-wide flag, so no inline ATen code here is emitted with instructions other CPUs lack), and they run only
// after the CPU reports AVX-512F/BW/VL and F16C. Output rows are split over ATen's threads.
#include "model/cpu_gemv.h"
#include "model/cpu_avx512.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <sys/mman.h>

// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* operands), a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace distill::model::gemv {

namespace {

// 16 weights widened to fp32: f16 by the hardware conversion, bf16 by a shift into the high half.
template <bool kBf16>
DISTILL_AVX512 inline __m512 load16(const std::uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (kBf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  else return _mm512_cvtph_ps(h);
}
template <bool kBf16>
DISTILL_AVX512 inline __m512 load16_tail(const std::uint16_t* p, int n) {
  const __m256i h = _mm256_maskz_loadu_epi16(__mmask16((1u << n) - 1), p);
  if constexpr (kBf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  else return _mm512_cvtph_ps(h);
}

// out[m, n] = x[m, :] . w[n, :] (+ bias[n]) for n in [n0, n1), M <= kMaxRows rows of x.
template <bool kBf16, int M>
DISTILL_AVX512 void rows(const float* x, std::int64_t K, const std::uint16_t* w, const float* bias, float* out,
                         std::int64_t N, std::int64_t n0, std::int64_t n1) {
  const std::int64_t K16 = K / 16 * 16;
  const int tail = int(K - K16);
  for (std::int64_t n = n0; n < n1; ++n) {
    const std::uint16_t* wr = w + n * K;
    __m512 acc[M];
    for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < K16; k += 16) {
      const __m512 wv = load16<kBf16>(wr + k);
      for (int m = 0; m < M; ++m) acc[m] = _mm512_fmadd_ps(_mm512_loadu_ps(x + m * K + k), wv, acc[m]);
    }
    if (tail) {
      const __mmask16 mask = __mmask16((1u << tail) - 1);
      const __m512 wv = load16_tail<kBf16>(wr + K16, tail);
      for (int m = 0; m < M; ++m) acc[m] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + m * K + K16), wv, acc[m]);
    }
    const float b = bias ? bias[n] : 0.0f;
    for (int m = 0; m < M; ++m) out[m * N + n] = _mm512_reduce_add_ps(acc[m]) + b;
  }
}

// One row of x (a single sequence's decode step): four accumulators over interleaved stretches of K, so the
// FMA latency of one chain does not bound the loop. (Two rows of w at a time, software prefetch, and threads taking
// interleaved chunks instead of contiguous halves were all slower here; bench/bench_gemv.cpp measures it.)
template <bool kBf16>
DISTILL_AVX512 void rows1(const float* x, std::int64_t K, const std::uint16_t* w, const float* bias, float* out,
                          std::int64_t n0, std::int64_t n1) {
  const std::int64_t K64 = K / 64 * 64, K16 = K / 16 * 16;
  const int tail = int(K - K16);
  const __mmask16 mask = __mmask16((1u << tail) - 1);
  for (std::int64_t n = n0; n < n1; ++n) {
    const std::uint16_t* wr = w + n * K;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    std::int64_t k = 0;
    for (; k < K64; k += 64) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), load16<kBf16>(wr + k), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16), load16<kBf16>(wr + k + 16), a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 32), load16<kBf16>(wr + k + 32), a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 48), load16<kBf16>(wr + k + 48), a3);
    }
    for (; k < K16; k += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), load16<kBf16>(wr + k), a0);
    if (tail) a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + K16), load16_tail<kBf16>(wr + K16, tail), a1);
    out[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) + (bias ? bias[n] : 0.0f);
  }
}

template <bool kBf16>
void run(const float* x, std::int64_t M, std::int64_t K, const std::uint16_t* w, const float* bias, float* out,
         std::int64_t N) {
  // Each thread takes whole rows of w; 64 rows of a 1024-wide matrix are 128 KiB, worth a task.
  const std::int64_t grain = std::max<std::int64_t>(16, (1 << 17) / std::max<std::int64_t>(K * 2, 1));
  at::parallel_for(0, N, grain, [&](std::int64_t n0, std::int64_t n1) {
    switch (M) {
      case 1: rows1<kBf16>(x, K, w, bias, out, n0, n1); break;
      case 2: rows<kBf16, 2>(x, K, w, bias, out, N, n0, n1); break;
      case 3: rows<kBf16, 3>(x, K, w, bias, out, N, n0, n1); break;
      case 4: rows<kBf16, 4>(x, K, w, bias, out, N, n0, n1); break;
      case 5: rows<kBf16, 5>(x, K, w, bias, out, N, n0, n1); break;
      case 6: rows<kBf16, 6>(x, K, w, bias, out, N, n0, n1); break;
      case 7: rows<kBf16, 7>(x, K, w, bias, out, N, n0, n1); break;
      default: rows<kBf16, 8>(x, K, w, bias, out, N, n0, n1); break;
    }
  });
}

}  // namespace

namespace {

// Decode streams every weight once a step: on 4 KiB pages that is a TLB miss every page, so copies of 2 MiB or
// more live in 2 MiB-aligned memory marked for transparent huge pages (the kernel's "madvise" mode, the default).
at::Tensor huge_page_copy(const at::Tensor& c) {
  constexpr std::size_t kHuge = std::size_t(2) << 20;
  const std::size_t bytes = c.nbytes();
  if (bytes < kHuge) return c;
  const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = nullptr;
  if (posix_memalign(&p, kHuge, rounded) != 0) return c;
  madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without THP the copy still works, on small pages
  auto out = at::from_blob(p, c.sizes(), [](void* q) { std::free(q); }, c.options());
  out.copy_(c);
  // Pages faulted in on a fragmented machine are mostly small; Linux 6.1+ can collapse them now, synchronously.
  madvise(p, rounded, 25 /* MADV_COLLAPSE */);  // EINVAL on older kernels: nothing lost
  return out;
}

}  // namespace

at::Tensor compact(const at::Tensor& w) {
  if (!avx512_usable() || !w.defined() || w.device().type() != at::kCPU || w.scalar_type() != at::kFloat || w.dim() != 2)
    return {};
  const auto head = w.flatten().narrow(0, 0, std::min<std::int64_t>(w.numel(), 4096));
  for (auto t : {at::kHalf, at::kBFloat16}) {
    if (!at::equal(head.to(t).to(at::kFloat), head)) continue;  // a trained fp32 model fails here, cheaply
    auto c = w.to(t).contiguous();
    if (at::equal(c.to(at::kFloat), w)) return huge_page_copy(c);
  }
  return {};
}

bool applies(const at::Tensor& x, const at::Tensor& w16) {
  if (!w16.defined() || at::GradMode::is_enabled() || x.device().type() != at::kCPU || x.scalar_type() != at::kFloat)
    return false;
  return x.dim() >= 1 && x.numel() / std::max<std::int64_t>(x.size(-1), 1) <= kMaxRows;
}

at::Tensor linear(const at::Tensor& x_in, const at::Tensor& w16, const at::Tensor& bias) {
  const auto K = x_in.size(-1), N = w16.size(0);
  TORCH_CHECK(w16.size(1) == K, "gemv::linear: x has ", K, " columns, the weight ", w16.size(1));
  auto x = x_in.contiguous();
  const auto M = x.numel() / K;
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  auto out = at::empty(sizes, x.options());
  const at::Tensor bias_c = bias.defined() ? bias.contiguous() : bias;
  const float* b = bias_c.defined() ? bias_c.data_ptr<float>() : nullptr;
  const auto* w = static_cast<const std::uint16_t*>(w16.data_ptr());
  if (w16.scalar_type() == at::kBFloat16) run<true>(x.data_ptr<float>(), M, K, w, b, out.data_ptr<float>(), N);
  else run<false>(x.data_ptr<float>(), M, K, w, b, out.data_ptr<float>(), N);
  return out;
}

}  // namespace distill::model::gemv
