// model/cpu_attention.cpp: see cpu_attention.h. As in cpu_gemv.cpp, only the kernel functions are compiled for
// AVX-512 (a target attribute), and they run only after the CPU reports it. Each (row, kv head) unit owns its
// cache rows and its query heads' outputs, so units run on any thread without locks; rows must be in distinct
// slots, as a decode batch always is.
#include "model/cpu_attention.h"
#include "model/cpu_avx512.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* operands), a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace distill::model::cpu {

namespace {

constexpr std::int64_t kMaxHeadDim = 256;

// e^x for x <= 0 (softmax after subtracting the max): Cody-Waite reduction by ln 2 and Cephes' degree-6 expf
// polynomial, within 2 ulp of expf; below -87 the result is ~1e-38 instead of a denormal, which no sum notices.
DISTILL_AVX512 inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// y = w * (x / rms(x)) as cpu::rms_norm computes it (w undefined: y = x), then the half-split rotation
// y[i] = y[i] cos[i] + y[i +- d/2] sin_rot[i] (apply_rope's roll form).
void norm_rope(const float* x, const float* w, float eps, const float* cs, const float* sn, std::int64_t d, float* out) {
  float y[kMaxHeadDim];
  if (w) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (std::int64_t i = 0; i < d; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += x[i + j] * x[i + j];
    float ss = 0;
    for (float a : acc) ss += a;
    const float inv = 1.0f / std::sqrt(ss / float(d) + eps);
    for (std::int64_t i = 0; i < d; ++i) y[i] = w[i] * (x[i] * inv);
  } else {
    std::memcpy(y, x, std::size_t(d) * sizeof(float));
  }
  const auto half = d / 2;
  for (std::int64_t i = 0; i < half; ++i) out[i] = y[i] * cs[i] + y[i + half] * sn[i];
  for (std::int64_t i = half; i < d; ++i) out[i] = y[i] * cs[i] + y[i - half] * sn[i];
}

// Softmax over s[0, S) in place.
DISTILL_AVX512 void softmax_inplace(float* s, std::int64_t S) {
  const std::int64_t S16 = S / 16 * 16;
  const __mmask16 tail = __mmask16((1u << (S - S16)) - 1);
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 mx = ninf;
  for (std::int64_t t = 0; t < S16; t += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + t));
  if (tail) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(ninf, tail, s + S16));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (std::int64_t t = 0; t < S16; t += 16) {
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + t), m));
    _mm512_storeu_ps(s + t, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (tail) {
    const __m512 e = _mm512_maskz_mov_ps(tail, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + S16), m)));
    _mm512_mask_storeu_ps(s + S16, tail, e);
    sum = _mm512_add_ps(sum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (std::int64_t t = 0; t < S16; t += 16) _mm512_storeu_ps(s + t, _mm512_mul_ps(_mm512_loadu_ps(s + t), inv));
  if (tail) _mm512_mask_storeu_ps(s + S16, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, s + S16), inv));
}

// One query (d = 16 * N16, already rotated) against S cached keys and values: out = softmax(q.k * scale) v.
template <int N16>
DISTILL_AVX512 void attend_one(const float* q, const float* keys, const float* values, std::int64_t S, float scale,
                               float* scores, float* out) {
  constexpr std::int64_t d = 16 * N16;
  __m512 qv[N16];
  for (int c = 0; c < N16; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  for (std::int64_t t = 0; t < S; ++t) {
    const float* k = keys + t * d;
    __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
    for (int c = 1; c < N16; ++c) acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k + 16 * c), acc);
    scores[t] = _mm512_reduce_add_ps(acc) * scale;
  }
  softmax_inplace(scores, S);
  __m512 o[N16];
  for (int c = 0; c < N16; ++c) o[c] = _mm512_setzero_ps();
  for (std::int64_t t = 0; t < S; ++t) {
    const __m512 p = _mm512_set1_ps(scores[t]);
    const float* v = values + t * d;
    for (int c = 0; c < N16; ++c) o[c] = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + 16 * c), o[c]);
  }
  for (int c = 0; c < N16; ++c) _mm512_storeu_ps(out + 16 * c, o[c]);
}

using AttendFn = void (*)(const float*, const float*, const float*, std::int64_t, float, float*, float*);

AttendFn attend_for(std::int64_t d) {
  switch (d / 16) {
    case 1: return attend_one<1>;
    case 2: return attend_one<2>;
    case 3: return attend_one<3>;
    case 4: return attend_one<4>;
    case 5: return attend_one<5>;
    case 6: return attend_one<6>;
    case 7: return attend_one<7>;
    case 8: return attend_one<8>;
    case 9: return attend_one<9>;
    case 10: return attend_one<10>;
    case 11: return attend_one<11>;
    case 12: return attend_one<12>;
    case 13: return attend_one<13>;
    case 14: return attend_one<14>;
    case 15: return attend_one<15>;
    default: return attend_one<16>;
  }
}

bool fp32_vector(const at::Tensor& t, std::int64_t n) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.numel() == n;
}

}  // namespace

bool decode_attention_applies(const at::Tensor& qkv, const DecodeAttention& a) {
  if (!avx512_usable() || !qkv.defined() || !qkv.device().is_cpu() || qkv.scalar_type() != at::kFloat ||
      at::GradMode::is_enabled() || qkv.dim() != 3 || qkv.size(1) != 1 || qkv.stride(2) != 1)
    return false;
  const auto B = qkv.size(0), d = a.head_dim;
  if (d <= 0 || d % 16 != 0 || d > kMaxHeadDim || a.kv_heads <= 0 || a.heads % a.kv_heads != 0 ||
      qkv.size(2) != (a.heads + 2 * a.kv_heads) * d)
    return false;
  if ((a.q_norm.defined() && !fp32_vector(a.q_norm, d)) || (a.k_norm.defined() && !fp32_vector(a.k_norm, d)))
    return false;
  if (!fp32_vector(a.cos, B * d) || !fp32_vector(a.sin_rot, B * d)) return false;
  for (const auto* c : {&a.k_cache, &a.v_cache})
    if (!c->defined() || !c->device().is_cpu() || c->scalar_type() != at::kFloat || !c->is_contiguous() ||
        c->dim() != 4 || c->size(1) != a.kv_heads || c->size(3) != d)
      return false;
  return a.slots.defined() && a.slots.numel() == B && a.positions.defined() && a.positions.numel() == B &&
         a.slots.device().is_cpu() && a.positions.device().is_cpu();
}

at::Tensor decode_attention(const at::Tensor& qkv, const DecodeAttention& a) {
  TORCH_CHECK(decode_attention_applies(qkv, a), "decode_attention: inputs it does not take");
  const auto B = qkv.size(0), H = a.heads, Hk = a.kv_heads, d = a.head_dim, rep = H / Hk;
  const auto max_len = a.k_cache.size(2), n_slots = a.k_cache.size(0);
  const auto slots = a.slots.to(at::kLong).contiguous(), pos = a.positions.to(at::kLong).contiguous();
  const auto cs = a.cos.contiguous(), sn = a.sin_rot.contiguous();
  const std::int64_t* ps = slots.data_ptr<std::int64_t>();
  const std::int64_t* pp = pos.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < B; ++b)
    TORCH_CHECK(ps[b] >= 0 && ps[b] < n_slots && pp[b] >= 0 && pp[b] < max_len, "decode_attention: row ", b,
                " has slot ", ps[b], " and position ", pp[b], " outside the cache [", n_slots, ", ", max_len, "]");
  auto out = at::empty({B, 1, H * d}, qkv.options().memory_format(at::MemoryFormat::Contiguous));
  const float* px = qkv.data_ptr<float>();
  const float* qn = a.q_norm.defined() ? a.q_norm.data_ptr<float>() : nullptr;
  const float* kn = a.k_norm.defined() ? a.k_norm.data_ptr<float>() : nullptr;
  float* kc = a.k_cache.data_ptr<float>();
  float* vc = a.v_cache.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const auto rs = qkv.stride(0);
  const float eps = float(a.eps), scale = float(a.scale);
  const AttendFn attend = attend_for(d);
  at::parallel_for(0, B * Hk, 1, [&](std::int64_t u0, std::int64_t u1) {
    std::vector<float> scores;
    alignas(64) float q[kMaxHeadDim];
    for (std::int64_t u = u0; u < u1; ++u) {
      const auto b = u / Hk, j = u % Hk, S = pp[b] + 1;
      const float* row = px + b * rs;
      const float *c = cs.data_ptr<float>() + b * d, *s = sn.data_ptr<float>() + b * d;
      const auto base = (ps[b] * Hk + j) * max_len * d;  // this (slot, kv head)'s keys and values
      norm_rope(row + (H + j) * d, kn, eps, c, s, d, kc + base + pp[b] * d);
      std::memcpy(vc + base + pp[b] * d, row + (H + Hk + j) * d, std::size_t(d) * sizeof(float));
      scores.resize(std::size_t(S));
      for (std::int64_t h = j * rep; h < (j + 1) * rep; ++h) {
        norm_rope(row + h * d, qn, eps, c, s, d, q);
        attend(q, kc + base, vc + base, S, scale, scores.data(), po + b * H * d + h * d);
      }
    }
  });
  return out;
}

}  // namespace distill::model::cpu
