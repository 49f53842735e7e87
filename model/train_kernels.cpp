// model/train_kernels.cpp: see train_kernels.h. The loops are plain C++ written so the compiler vectorises them;
// on x86-64 each loop function is also built for x86-64-v4 (AVX-512) and v3 (AVX2, FMA), the best picked at load
// time, since the build itself targets the baseline ISA. exp is computed inline (exp_neg) because a call to libm's
// scalar exp stops vectorisation. Built with -fno-trapping-math, without which GCC keeps the compares as branches
// and vectorises nothing (model/CMakeLists.txt). Measured here: the SwiGLU backward loop at 0.26 ns per element
// with AVX-512, 0.52 with AVX2 (ATen's silu_backward alone: 0.27-0.38). The attention tiles are written with
// GCC's vector types instead (see there).
#include "model/train_kernels.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <vector>

// target_clones with arch= levels needs GCC 12 and glibc's ifunc; elsewhere the loops are built once, plainly.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__GLIBC__)
#define DISTILL_VEC __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DISTILL_VEC
#endif
// The helpers below must be inlined into each clone, or they run with the baseline ISA (GCC leaves larger
// templates out of line).
#if defined(__GNUC__)
#define DISTILL_INLINE inline __attribute__((always_inline))
#else
#define DISTILL_INLINE inline
#endif

namespace distill::model::fused {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// e^-t for t >= 0 (t clamped to 80, where e^-t is ~1.8e-35, still a normal float), to about 2 ulp: -t = n ln2 + f
// with |f| <= ln2/2, e^f by its Taylor series to degree 7 (truncation < 1e-8 relative), 2^n put straight into the
// exponent bits. Branch-free, so loops over it vectorise.
DISTILL_INLINE float exp_neg(float t) {
  const float x = -std::min(t, 80.0f);
  const float shift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  const float n = (x * 1.44269504088896341f + shift) - shift;
  const float f = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;  // ln2 split in two for exactness
  float p = 1.0f / 5040.0f;
  p = p * f + 1.0f / 720.0f;
  p = p * f + 1.0f / 120.0f;
  p = p * f + 1.0f / 24.0f;
  p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  return p * std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
}

// 1 / (1 + e^-g) from e = e^-|g|, which never overflows: 1/(1+e) for g >= 0, e/(1+e) below.
DISTILL_INLINE float sigmoid(float g) {
  const float e = exp_neg(std::fabs(g));
  const float r = 1.0f / (1.0f + e);
  return g >= 0.0f ? r : e * r;
}

std::int64_t grain(std::int64_t width) { return std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(width, 1)); }

// ---- loops ------------------------------------------------------------------------------------------------

DISTILL_VEC void swiglu_loop(const float* g, const float* u, float* h, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) h[i] = g[i] * sigmoid(g[i]) * u[i];
}

// d silu(g)/dg = s * (1 + g * (1 - s)), s = sigmoid(g).
DISTILL_VEC void swiglu_back_loop(const float* g, const float* u, const float* d, float* dg, float* du, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float s = sigmoid(g[i]);
    const float gs = g[i] * s;
    du[i] = d[i] * gs;
    dg[i] = d[i] * u[i] * (s + gs * (1.0f - s));
  }
}

// sum of term(i) over i < n, in 16 running partial sums so that the loop vectorises (inlined into each clone).
template <class Term>
DISTILL_INLINE float sum16(std::int64_t n, const Term& term) {
  float acc[16] = {};
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += term(i + j);
  float s = 0;
  for (; i < n; ++i) s += term(i);
  for (float a : acc) s += a;
  return s;
}

DISTILL_VEC void rms_rows(const float* x, const float* w, float* y, float* rstd, std::int64_t rows, std::int64_t D,
                          float eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    const float inv = 1.0f / std::sqrt(sum16(D, [&](std::int64_t i) { return xr[i] * xr[i]; }) / float(D) + eps);
    rstd[r] = inv;
    for (std::int64_t i = 0; i < D; ++i) yr[i] = w[i] * (xr[i] * inv);
  }
}

// y = w x r with r = (mean(x^2) + eps)^-1/2: dx = r (w dy - x r^2 mean(w dy x)); dw += dy x r (into dw_acc).
DISTILL_VEC void rms_back_rows(const float* x, const float* w, const float* rstd, const float* dy, float* dx,
                               float* dw_acc, std::int64_t rows, std::int64_t D) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * D;
    const float* dr = dy + r * D;
    float* o = dx + r * D;
    const float inv = rstd[r];
    const float a = sum16(D, [&](std::int64_t i) { return w[i] * dr[i] * xr[i]; });
    const float c = inv * inv * a / float(D);
    for (std::int64_t k = 0; k < D; ++k) {
      o[k] = inv * (w[k] * dr[k] - xr[k] * c);
      dw_acc[k] += dr[k] * xr[k] * inv;
    }
  }
}

// One head of d values: y = x * c + roll(x, d/2) * s (forward, s = sin_rot) or the transpose, dx = dy * c +
// roll(dy * s, d/2) (backward). c, s: the position's tables.
DISTILL_VEC void rotate_head(const float* x, const float* c, const float* s, float* y, std::int64_t d, bool back) {
  const auto half = d / 2;
  if (!back) {
    for (std::int64_t i = 0; i < half; ++i) y[i] = x[i] * c[i] + x[i + half] * s[i];
    for (std::int64_t i = 0; i < half; ++i) y[i + half] = x[i + half] * c[i + half] + x[i] * s[i + half];
  } else {
    for (std::int64_t i = 0; i < half; ++i) y[i] = x[i] * c[i] + x[i + half] * s[i + half];
    for (std::int64_t i = 0; i < half; ++i) y[i + half] = x[i + half] * c[i + half] + x[i] * s[i];
  }
}

// max of x[0..n) in 16 running maxima, as sum16 (a < b ? b : a is the IEEE max the vector units compute).
DISTILL_INLINE float max16(std::int64_t n, const float* x) {
  float acc[16];
  for (float& a : acc) a = -INFINITY;
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] = acc[j] < x[i + j] ? x[i + j] : acc[j];
  float m = -INFINITY;
  for (; i < n; ++i) m = m < x[i] ? x[i] : m;
  for (float a : acc) m = m < a ? a : m;
  return m;
}

// Cross-entropy rows over one vocabulary slice of n columns starting at c0 (see ce_slice_forward).
DISTILL_VEC void ce_fwd_rows(const float* x, const std::int64_t* labels, std::int64_t c0, std::int64_t rows,
                             std::int64_t n, float* m, float* s, float* target) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * n;
    const float mr = std::max(m[r], max16(n, row));
    const float sum = sum16(n, [&](std::int64_t j) { return exp_neg(mr - row[j]); });
    s[r] = s[r] * std::exp(m[r] - mr) + sum;  // e^-inf = 0 on the first slice
    m[r] = mr;
    const auto col = labels[r] - c0;
    if (col >= 0 && col < n) target[r] = row[col];
  }
}

DISTILL_VEC void ce_bwd_rows(float* x, const std::int64_t* labels, std::int64_t c0, std::int64_t rows, std::int64_t n,
                             const float* lse, const float* scale) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = x + r * n;
    const float l = lse[r], k = scale[r];
    // A recomputed logit may exceed lse by rounding: exp_neg of a slightly negative t is still exact.
    for (std::int64_t j = 0; j < n; ++j) row[j] = k * exp_neg(l - row[j]);
    const auto col = labels[r] - c0;
    if (col >= 0 && col < n) row[col] -= k;
  }
}

// ---- causal attention for narrow heads ------------------------------------------------------------------
// Work is cut into tiles of QB query rows x KB keys whose products are small fixed-size matrix products held in
// registers, written with GCC's vector types (16 floats: one AVX-512 register, two AVX2 ones) because the
// auto-vectoriser scatters such tiles into shuffles and spills. A head of D values is D/16 vectors. One task is
// one (batch row, kv head) with its `rep` query heads, so the task sums its own key and value gradients. Keys
// (and values, for the backward) are copied once per task into [key block][D][KB] tiles, zero past T.

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  // the same, at any float address

DISTILL_INLINE v16 load16(const float* p) { return *reinterpret_cast<const v16u*>(p); }
DISTILL_INLINE void store16(float* p, v16 x) { *reinterpret_cast<v16u*>(p) = x; }

constexpr std::int64_t QB = 8, KB = 16;

struct AttnShape {
  std::int64_t T, H, rep;
  float scale;
};

std::int64_t key_blocks(std::int64_t T) { return (T + KB - 1) / KB; }

template <int D>
DISTILL_INLINE void key_tiles(const float* k, std::int64_t T, float* kt) {
  for (std::int64_t jb = 0; jb < key_blocks(T); ++jb)
    for (int c = 0; c < D; ++c)
      for (std::int64_t jj = 0; jj < KB; ++jj) {
        const auto j = jb * KB + jj;
        kt[(jb * D + c) * KB + jj] = j < T ? k[j * D + c] : 0.0f;
      }
}

// out[r][jj] = sum_c a[r][c] * tile[c][jj]: a tile's QB x KB products, one vector per query row.
template <int D>
DISTILL_INLINE void tile_dots(const float (&a)[QB][D], const float* tile, float (&out)[QB][KB]) {
  v16 acc[QB] = {};
  for (int c = 0; c < D; ++c) {
    const v16 t = load16(tile + c * KB);
    for (int r = 0; r < QB; ++r) acc[r] += a[r][c] * t;
  }
  for (int r = 0; r < QB; ++r) store16(out[r], acc[r]);
}

// out[r] (D values) = sum_j w[r][j] * rows[j] over j < n, for the QB rows of weights w (row stride ws).
template <int D>
DISTILL_INLINE void tile_weighted_rows(const float* w, std::int64_t ws, const float* rows, std::int64_t n,
                                       float (&out)[QB][D]) {
  constexpr int NV = D / 16;
  v16 acc[QB][NV] = {};
  for (std::int64_t j = 0; j < n; ++j) {
    v16 x[NV];
    for (int u = 0; u < NV; ++u) x[u] = load16(rows + j * D + 16 * u);
    for (int r = 0; r < QB; ++r)
      for (int u = 0; u < NV; ++u) acc[r][u] += w[r * ws + j] * x[u];
  }
  for (int r = 0; r < QB; ++r)
    for (int u = 0; u < NV; ++u) store16(out[r] + 16 * u, acc[r][u]);
}

// The first key query i may read: its document's first token (st: per query, non-decreasing), else 0.
DISTILL_INLINE std::int64_t first_key(const std::int64_t* st, std::int64_t i) { return st ? st[i] : 0; }

// Forward of one task. q: its heads [rep][T][D]; k, v: [T][D]; o: the first head's column in [T][H*D]; lse:
// [rep][T], each score row's log-sum-exp, kept for the backward; st: null or the first key of each query. kt,
// sc: scratch of key_blocks(T)*KB*D and QB*key_blocks(T)*KB floats. A query tile reads the key tiles from its
// first query's first key to its last query: with documents packed in a row, the others are never touched.
template <int D>
DISTILL_INLINE void attn_fwd_group(const AttnShape& a, const float* q, const float* k, const float* v,
                                   const std::int64_t* st, float* o, float* lse, float* kt, float* sc) {
  const std::int64_t T = a.T, ostride = a.H * D;
  key_tiles<D>(k, T, kt);
  for (std::int64_t r = 0; r < a.rep; ++r)
    for (std::int64_t i0 = 0; i0 < T; i0 += QB) {
      const std::int64_t rows = std::min(QB, T - i0), last = i0 + rows - 1;
      const std::int64_t jb0 = first_key(st, i0) / KB, base = jb0 * KB, W = (last / KB + 1) * KB - base;
      alignas(64) float qb[QB][D];
      for (std::int64_t rr = 0; rr < QB; ++rr)
        for (int c = 0; c < D; ++c) qb[rr][c] = rr < rows ? q[(r * T + i0 + rr) * D + c] * a.scale : 0.0f;
      for (std::int64_t jb = jb0; jb * KB <= last; ++jb) {
        alignas(64) float t[QB][KB];
        tile_dots<D>(qb, kt + jb * D * KB, t);
        for (std::int64_t rr = 0; rr < QB; ++rr) std::memcpy(sc + rr * W + jb * KB - base, t[rr], sizeof t[rr]);
      }
      float inv[QB] = {};
      for (std::int64_t rr = 0; rr < QB; ++rr) {  // softmax over keys lo..i; 0 elsewhere and in the padding rows
        float* srow = sc + rr * W;  // key base + j at j
        const std::int64_t lo = rr < rows ? first_key(st, i0 + rr) - base : 0, hi = rr < rows ? i0 + rr + 1 - base : 0;
        if (hi > lo) {
          const float m = max16(hi - lo, srow + lo);
          for (std::int64_t j = lo; j < hi; ++j) srow[j] = exp_neg(m - srow[j]);
          const float l = sum16(hi - lo, [&](std::int64_t j) { return srow[lo + j]; });
          inv[rr] = 1.0f / l;
          lse[r * T + i0 + rr] = m + std::log(l);
        }
        for (std::int64_t j = 0; j < lo; ++j) srow[j] = 0.0f;
        for (std::int64_t j = hi; j < W; ++j) srow[j] = 0.0f;
      }
      alignas(64) float ob[QB][D];
      tile_weighted_rows<D>(sc, W, v + base * D, last + 1 - base, ob);
      for (std::int64_t rr = 0; rr < rows; ++rr)
        for (int c = 0; c < D; ++c) o[(i0 + rr) * ostride + r * D + c] = ob[rr][c] * inv[rr];
    }
}

// Backward of one task (FlashAttention's: p = exp(s - lse) recomputed tile by tile, ds = p (dp - do.o)): dq
// [rep][T][D]; dk, dv [T][D] this task's sums; d_o and o read in the [T][H*D] layout. kt, vt: key and value
// tiles; dks, dvs: sums over key_blocks(T)*KB rows; st as in the forward.
template <int D>
DISTILL_INLINE void attn_bwd_group(const AttnShape& a, const float* q, const float* k, const float* v, const float* o,
                                   const float* d_o, const float* lse, const std::int64_t* st, float* dq, float* dk,
                                   float* dv, float* kt, float* vt, float* dks, float* dvs) {
  constexpr int NV = D / 16;
  const std::int64_t T = a.T, ostride = a.H * D, Tp = key_blocks(T) * KB;
  key_tiles<D>(k, T, kt);
  key_tiles<D>(v, T, vt);
  for (std::int64_t x = 0; x < Tp * D; ++x) dks[x] = dvs[x] = 0.0f;
  for (std::int64_t r = 0; r < a.rep; ++r)
    for (std::int64_t i0 = 0; i0 < T; i0 += QB) {
      const std::int64_t rows = std::min(QB, T - i0), last = i0 + rows - 1;
      alignas(64) float qb[QB][D], dob[QB][D];
      float di[QB], li[QB];
      for (std::int64_t rr = 0; rr < QB; ++rr) {
        const bool in = rr < rows;
        const std::int64_t row = in ? i0 + rr : i0;  // padding rows read row i0, and use none of it
        const float* orow = o + row * ostride + r * D;
        const float* drow = d_o + row * ostride + r * D;
        float dot = 0.0f;
        for (int c = 0; c < D; ++c) {
          qb[rr][c] = in ? q[(r * T + i0 + rr) * D + c] * a.scale : 0.0f;  // as the forward rounded it
          dob[rr][c] = in ? drow[c] : 0.0f;
          dot += in ? drow[c] * orow[c] : 0.0f;
        }
        di[rr] = dot;
        li[rr] = in ? lse[r * T + i0 + rr] : 0.0f;
      }
      v16 dqa[QB][NV] = {};
      std::int64_t lo[QB];
      for (std::int64_t rr = 0; rr < QB; ++rr) lo[rr] = rr < rows ? first_key(st, i0 + rr) : T;
      for (std::int64_t jb = lo[0] / KB; jb * KB <= last; ++jb) {
        alignas(64) float p[QB][KB], ds[QB][KB];
        tile_dots<D>(qb, kt + jb * D * KB, p);
        tile_dots<D>(dob, vt + jb * D * KB, ds);
        for (std::int64_t rr = 0; rr < QB; ++rr)
          for (std::int64_t jj = 0; jj < KB; ++jj) {
            const std::int64_t j = jb * KB + jj;
            const bool live = j >= lo[rr] && j <= i0 + rr;  // padding rows: lo = T
            const float pv = live ? exp_neg(li[rr] - p[rr][jj]) : 0.0f;
            p[rr][jj] = pv;
            ds[rr][jj] = pv * (ds[rr][jj] - di[rr]);  // dk = ds (scale q), dq = scale (ds k)
          }
        for (std::int64_t jj = 0; jj < KB; ++jj) {
          const std::int64_t j = jb * KB + jj;
          if (j >= T) break;
          v16 kj[NV], gk[NV] = {}, gv[NV] = {};
          for (int u = 0; u < NV; ++u) kj[u] = load16(k + j * D + 16 * u);
          for (int rr = 0; rr < QB; ++rr)
            for (int u = 0; u < NV; ++u) {
              dqa[rr][u] += ds[rr][jj] * kj[u];
              gk[u] += ds[rr][jj] * load16(qb[rr] + 16 * u);
              gv[u] += p[rr][jj] * load16(dob[rr] + 16 * u);
            }
          for (int u = 0; u < NV; ++u) {
            store16(dks + j * D + 16 * u, load16(dks + j * D + 16 * u) + gk[u]);
            store16(dvs + j * D + 16 * u, load16(dvs + j * D + 16 * u) + gv[u]);
          }
        }
      }
      for (std::int64_t rr = 0; rr < rows; ++rr)
        for (int u = 0; u < NV; ++u) store16(dq + (r * T + i0 + rr) * D + 16 * u, dqa[rr][u] * a.scale);
    }
  std::memcpy(dk, dks, std::size_t(T * D) * sizeof(float));
  std::memcpy(dv, dvs, std::size_t(T * D) * sizeof(float));
}

DISTILL_VEC void attn_fwd_task(int d, const AttnShape& a, const float* q, const float* k, const float* v,
                               const std::int64_t* st, float* o, float* lse, float* kt, float* sc) {
  if (d == 16) attn_fwd_group<16>(a, q, k, v, st, o, lse, kt, sc);
  else if (d == 32) attn_fwd_group<32>(a, q, k, v, st, o, lse, kt, sc);
  else attn_fwd_group<64>(a, q, k, v, st, o, lse, kt, sc);
}

DISTILL_VEC void attn_bwd_task(int d, const AttnShape& a, const float* q, const float* k, const float* v,
                               const float* o, const float* d_o, const float* lse, const std::int64_t* st, float* dq,
                               float* dk, float* dv, float* kt, float* vt, float* dks, float* dvs) {
  if (d == 16) attn_bwd_group<16>(a, q, k, v, o, d_o, lse, st, dq, dk, dv, kt, vt, dks, dvs);
  else if (d == 32) attn_bwd_group<32>(a, q, k, v, o, d_o, lse, st, dq, dk, dv, kt, vt, dks, dvs);
  else attn_bwd_group<64>(a, q, k, v, o, d_o, lse, st, dq, dk, dv, kt, vt, dks, dvs);
}

at::Tensor contiguous_or_zeros(const at::Tensor& g, const at::Tensor& like) {
  return g.defined() ? g.contiguous() : at::zeros_like(like, at::MemoryFormat::Contiguous);
}

// ---- autograd functions ----------------------------------------------------------------------------------

struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_in, double eps) {
    auto x = x_in.contiguous();
    auto w = w_in.contiguous();
    const auto D = x.size(-1), rows = x.numel() / std::max<std::int64_t>(D, 1);
    auto y = at::empty_like(x);
    auto rstd = at::empty({rows}, x.options());
    const float *px = x.data_ptr<float>(), *pw = w.data_ptr<float>();
    float *py = y.data_ptr<float>(), *pr = rstd.data_ptr<float>();
    at::parallel_for(0, rows, grain(D), [&](std::int64_t b, std::int64_t e) {
      rms_rows(px + b * D, pw, py + b * D, pr + b, e - b, D, float(eps));
    });
    ctx->save_for_backward({x, w, rstd});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &rstd = saved[2];
    auto dy = grads[0].contiguous();
    const auto D = x.size(-1), rows = x.numel() / std::max<std::int64_t>(D, 1);
    auto dx = at::empty_like(x);
    // dw: per-thread partial sums over rows, added up at the end.
    const int threads = at::get_num_threads();
    std::vector<float> partial(std::size_t(threads) * std::size_t(D), 0.0f);
    const float *px = x.data_ptr<float>(), *pw = w.data_ptr<float>(), *pr = rstd.data_ptr<float>(),
                *pd = dy.data_ptr<float>();
    float* pdx = dx.data_ptr<float>();
    at::parallel_for(0, rows, grain(D), [&](std::int64_t b, std::int64_t e) {
      float* acc = partial.data() + std::size_t(at::get_thread_num()) * std::size_t(D);
      rms_back_rows(px + b * D, pw, pr + b, pd + b * D, pdx + b * D, acc, e - b, D);
    });
    auto dw = at::zeros({D}, w.options());
    float* pdw = dw.data_ptr<float>();
    for (int t = 0; t < threads; ++t)
      for (std::int64_t k = 0; k < D; ++k) pdw[k] += partial[std::size_t(t) * std::size_t(D) + std::size_t(k)];
    return {dx, dw, at::Tensor()};
  }
};

// Elementwise over n = numel values, split into chunks for the threads.
struct SwigluFn : torch::autograd::Function<SwigluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g_in, const at::Tensor& u_in) {
    auto g = g_in.contiguous(), u = u_in.contiguous();
    auto h = at::empty_like(g);
    const float *pg = g.data_ptr<float>(), *pu = u.data_ptr<float>();
    float* ph = h.data_ptr<float>();
    at::parallel_for(0, g.numel(), 32768, [&](std::int64_t b, std::int64_t e) { swiglu_loop(pg + b, pu + b, ph + b, e - b); });
    ctx->save_for_backward({g, u});
    return h;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &g = saved[0], &u = saved[1];
    auto dh = grads[0].contiguous();
    auto dg = at::empty_like(g), du = at::empty_like(u);
    const float *pg = g.data_ptr<float>(), *pu = u.data_ptr<float>(), *pd = dh.data_ptr<float>();
    float *pdg = dg.data_ptr<float>(), *pdu = du.data_ptr<float>();
    at::parallel_for(0, g.numel(), 32768, [&](std::int64_t b, std::int64_t e) {
      swiglu_back_loop(pg + b, pu + b, pd + b, pdg + b, pdu + b, e - b);
    });
    return {dg, du};
  }
};

// Row (b, t) of q holds H heads of d values, of k and v K heads each. Forward scatters them to the [B, heads, T, d]
// layouts (rotating q and k); backward gathers the three gradients back.
void rope_pass(float* q, float* k, float* v, float* hq, float* hk, float* hv, const float* cos, const float* sin,
               std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t K, std::int64_t d, bool back) {
  at::parallel_for(0, B * T, grain((H + 2 * K) * d), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const auto b = r / T, t = r % T;
      const float* c = cos + r * d;
      const float* s = sin + r * d;
      for (std::int64_t h = 0; h < H + 2 * K; ++h) {
        const bool is_q = h < H, is_k = !is_q && h < H + K;
        const auto head = is_q ? h : (is_k ? h - H : h - H - K);
        const auto width = is_q ? H : K;
        float* row = (is_q ? q : (is_k ? k : v)) + (r * width + head) * d;
        float* split = (is_q ? hq : (is_k ? hk : hv)) + ((b * width + head) * T + t) * d;
        float* src = back ? split : row;
        float* dst = back ? row : split;
        if (h < H + K) rotate_head(src, c, s, dst, d, back);
        else std::memcpy(dst, src, std::size_t(d) * sizeof(float));
      }
    }
  });
}

struct RopeHeadsFn : torch::autograd::Function<RopeHeadsFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in,
                               const at::Tensor& v_in, const at::Tensor& cos_in, const at::Tensor& sin_in,
                               std::int64_t H, std::int64_t K) {
    auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    auto cos = cos_in.contiguous(), sin = sin_in.contiguous();
    const auto B = q.size(0), T = q.size(1), d = q.size(2) / H;
    auto hq = at::empty({B, H, T, d}, q.options()), hk = at::empty({B, K, T, d}, q.options()),
         hv = at::empty({B, K, T, d}, q.options());
    rope_pass(q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), hq.data_ptr<float>(),
              hk.data_ptr<float>(), hv.data_ptr<float>(), cos.data_ptr<float>(), sin.data_ptr<float>(), B, T, H, K,
              d, false);
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["H"] = H;
    ctx->saved_data["K"] = K;
    ctx->saved_data["B"] = B;
    ctx->saved_data["T"] = T;
    return {hq, hk, hv};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto H = ctx->saved_data["H"].toInt(), K = ctx->saved_data["K"].toInt();
    const auto B = ctx->saved_data["B"].toInt(), T = ctx->saved_data["T"].toInt();
    const auto d = saved[0].size(-1);
    auto opts = saved[0].options();
    auto dhq = contiguous_or_zeros(grads[0], at::empty({B, H, T, d}, opts));
    auto dhk = contiguous_or_zeros(grads[1], at::empty({B, K, T, d}, opts));
    auto dhv = contiguous_or_zeros(grads[2], at::empty({B, K, T, d}, opts));
    auto dq = at::empty({B, T, H * d}, opts), dk = at::empty({B, T, K * d}, opts), dv = at::empty({B, T, K * d}, opts);
    rope_pass(dq.data_ptr<float>(), dk.data_ptr<float>(), dv.data_ptr<float>(), dhq.data_ptr<float>(),
              dhk.data_ptr<float>(), dhv.data_ptr<float>(), saved[0].data_ptr<float>(), saved[1].data_ptr<float>(), B,
              T, H, K, d, true);
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct CausalAttentionFn : torch::autograd::Function<CausalAttentionFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in,
                            const at::Tensor& v_in, const at::Tensor& starts_in, double scale) {
    auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    auto starts = starts_in.contiguous();  // empty: plain causal
    const std::int64_t* pst = starts.numel() ? starts.data_ptr<std::int64_t>() : nullptr;
    const auto B = q.size(0), H = q.size(1), T = q.size(2), K = k.size(1), d = q.size(3);
    const AttnShape a{T, H, H / K, float(scale)};
    const auto Tp = key_blocks(T) * KB;
    auto o = at::empty({B, T, H * d}, q.options());
    auto lse = at::empty({B, H, T}, q.options());
    const float *pq = q.data_ptr<float>(), *pk = k.data_ptr<float>(), *pv = v.data_ptr<float>();
    float *po = o.data_ptr<float>(), *pl = lse.data_ptr<float>();
    at::parallel_for(0, B * K, 1, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float> kt(std::size_t(Tp * d)), sc(std::size_t(QB * Tp));
      for (std::int64_t t = begin; t < end; ++t) {
        const auto b = t / K, h0 = t % K * a.rep;
        attn_fwd_task(int(d), a, pq + (b * H + h0) * T * d, pk + t * T * d, pv + t * T * d, pst ? pst + b * T : nullptr,
                      po + (b * T * H + h0) * d, pl + (b * H + h0) * T, kt.data(), sc.data());
      }
    });
    ctx->save_for_backward({q, k, v, o, lse, starts});
    ctx->saved_data["scale"] = scale;
    return o;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &o = saved[3], &lse = saved[4];
    const auto B = q.size(0), H = q.size(1), T = q.size(2), K = k.size(1), d = q.size(3);
    const AttnShape a{T, H, H / K, float(ctx->saved_data["scale"].toDouble())};
    const auto Tp = key_blocks(T) * KB;
    auto d_o = contiguous_or_zeros(grads[0], o);
    auto dq = at::empty_like(q), dk = at::empty_like(k), dv = at::empty_like(v);
    const auto& starts = saved[5];
    const std::int64_t* pst = starts.numel() ? starts.data_ptr<std::int64_t>() : nullptr;
    const float *pq = q.data_ptr<float>(), *pk = k.data_ptr<float>(), *pv = v.data_ptr<float>(),
                *po = o.data_ptr<float>(), *pd = d_o.data_ptr<float>(), *pl = lse.data_ptr<float>();
    float *pdq = dq.data_ptr<float>(), *pdk = dk.data_ptr<float>(), *pdv = dv.data_ptr<float>();
    at::parallel_for(0, B * K, 1, [&](std::int64_t begin, std::int64_t end) {
      const auto n = std::size_t(Tp * d);
      std::vector<float> kt(n), vt(n), dks(n), dvs(n);
      for (std::int64_t t = begin; t < end; ++t) {
        const auto b = t / K, h0 = t % K * a.rep, orow = (b * T * H + h0) * d;
        attn_bwd_task(int(d), a, pq + (b * H + h0) * T * d, pk + t * T * d, pv + t * T * d, po + orow, pd + orow,
                      pl + (b * H + h0) * T, pst ? pst + b * T : nullptr, pdq + (b * H + h0) * T * d, pdk + t * T * d, pdv + t * T * d, kt.data(),
                      vt.data(), dks.data(), dvs.data());
      }
    });
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool applies(const at::Tensor& x) { return x.device().is_cpu() && x.scalar_type() == at::kFloat; }

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  TORCH_CHECK(applies(x) && applies(w) && w.numel() == x.size(-1), "fused::rms_norm: CPU float32, weight [D]");
  return RmsNormFn::apply(x, w, eps);
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  TORCH_CHECK(applies(gate) && applies(up) && gate.sizes() == up.sizes(), "fused::swiglu: CPU float32 gate and up of one shape");
  return SwigluFn::apply(gate, up);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> rope_heads(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                          const at::Tensor& cos, const at::Tensor& sin_rot,
                                                          std::int64_t H, std::int64_t K) {
  TORCH_CHECK(applies(q) && applies(k) && applies(v) && q.dim() == 3 && q.size(2) % H == 0, "fused::rope_heads: q, k, v");
  const auto B = q.size(0), T = q.size(1), d = q.size(2) / H;
  TORCH_CHECK(k.sizes() == at::IntArrayRef({B, T, K * d}) && v.sizes() == k.sizes(), "fused::rope_heads: k, v must be [B, T, K*d]");
  TORCH_CHECK(d % 2 == 0 && cos.numel() == B * T * d && sin_rot.numel() == B * T * d && applies(cos) &&
                  applies(sin_rot),
              "fused::rope_heads: rotary tables must be [B, 1, T, head_dim] float32");
  auto out = RopeHeadsFn::apply(q, k, v, cos, sin_rot, H, K);
  return {out[0], out[1], out[2]};
}

namespace {
void check_ce_slice(const at::Tensor& logits, const at::Tensor& labels, std::initializer_list<const at::Tensor*> rows) {
  TORCH_CHECK(applies(logits) && logits.dim() == 2 && logits.is_contiguous() && labels.dim() == 1 &&
                  labels.scalar_type() == at::kLong && labels.is_contiguous() && labels.size(0) == logits.size(0),
              "fused ce slice: logits [N, n] contiguous CPU float32, labels [N] int64");
  for (const auto* t : rows)
    TORCH_CHECK(applies(*t) && t->dim() == 1 && t->is_contiguous() && t->size(0) == logits.size(0),
                "fused ce slice: row statistics must be [N] contiguous CPU float32");
}
}  // namespace

void ce_slice_forward(const at::Tensor& logits, const at::Tensor& labels, std::int64_t c0, at::Tensor& m,
                      at::Tensor& s, at::Tensor& target) {
  check_ce_slice(logits, labels, {&m, &s, &target});
  const auto N = logits.size(0), n = logits.size(1);
  const float* x = logits.data_ptr<float>();
  const std::int64_t* lab = labels.data_ptr<std::int64_t>();
  float *pm = m.data_ptr<float>(), *ps = s.data_ptr<float>(), *pt = target.data_ptr<float>();
  at::parallel_for(0, N, grain(n), [&](std::int64_t b, std::int64_t e) {
    ce_fwd_rows(x + b * n, lab + b, c0, e - b, n, pm + b, ps + b, pt + b);
  });
}

void ce_slice_backward(at::Tensor& logits, const at::Tensor& labels, std::int64_t c0, const at::Tensor& lse,
                       const at::Tensor& scale) {
  check_ce_slice(logits, labels, {&lse, &scale});
  const auto N = logits.size(0), n = logits.size(1);
  float* x = logits.data_ptr<float>();
  const std::int64_t* lab = labels.data_ptr<std::int64_t>();
  const float *pl = lse.data_ptr<float>(), *pk = scale.data_ptr<float>();
  at::parallel_for(0, N, grain(n), [&](std::int64_t b, std::int64_t e) {
    ce_bwd_rows(x + b * n, lab + b, c0, e - b, n, pl + b, pk + b);
  });
}

bool causal_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  return applies(q) && applies(k) && applies(v) && q.dim() == 4 && (q.size(3) == 16 || q.size(3) == 32 || q.size(3) == 64) &&
         k.sizes() == v.sizes() && k.dim() == 4 && k.size(0) == q.size(0) && k.size(2) == q.size(2) &&
         k.size(3) == q.size(3) && k.size(1) > 0 && q.size(1) % k.size(1) == 0;
}

at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                            const at::Tensor& starts) {
  TORCH_CHECK(causal_attention_applies(q, k, v),
              "fused::causal_attention: CPU float32 q [B, H, T, d], k and v [B, K, T, d], K dividing H, d 16, 32 or 64");
  if (starts.defined()) {
    TORCH_CHECK(starts.device().is_cpu() && starts.scalar_type() == at::kLong &&
                    starts.sizes() == at::IntArrayRef({q.size(0), q.size(2)}),
                "fused::causal_attention: starts must be [B, T] int64 on the CPU");
    // The kernel reads keys starts[i]..i of query i and relies on the starts never decreasing along a row.
    auto s = starts.contiguous();
    const auto T = q.size(2);
    const std::int64_t* p = s.data_ptr<std::int64_t>();
    for (std::int64_t x = 0; x < s.numel(); ++x) {
      const auto i = x % T;
      TORCH_CHECK(p[x] >= 0 && p[x] <= i && (i == 0 || p[x] >= p[x - 1]),
                  "fused::causal_attention: starts must satisfy 0 <= starts[i] <= i and never decrease along a row");
    }
    return CausalAttentionFn::apply(q, k, v, s, scale);
  }
  return CausalAttentionFn::apply(q, k, v, at::empty({0}, q.options().dtype(at::kLong)), scale);
}

at::Tensor document_starts(const at::Tensor& positions, const at::Tensor& segments) {
  auto pos = positions.to(at::kLong).contiguous();
  auto seg = segments.to(at::kLong).expand_as(pos).contiguous();  // the mask broadcasts [1, T] too
  const auto B = pos.size(0), T = pos.size(1);
  auto starts = at::empty({B, T}, pos.options());
  const std::int64_t *p = pos.data_ptr<std::int64_t>(), *s = seg.data_ptr<std::int64_t>();
  std::int64_t* out = starts.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t start = 0;
    for (std::int64_t i = 0; i < T; ++i) {
      const auto x = b * T + i;
      if (i == 0 || s[x] != s[x - 1]) {
        if (i > 0 && s[x] < s[x - 1]) return {};
        start = i;
      } else if (p[x] <= p[x - 1]) {
        return {};
      }
      out[x] = start;
    }
  }
  return starts;
}

}  // namespace distill::model::fused
