// model/cpu_kernels.h: hand-written fp32 CPU kernels for the no-grad decode path, where a step is hundreds of
// tiny ops and each LibTorch op costs more in dispatch than in arithmetic. Each kernel replaces a chain of ops
// with one pass over the data and equals that chain up to fp32 rounding (tests/test_model_equivalence.cpp).
// Callers check applies(); on any other device or dtype, or with gradients on, they keep the LibTorch formula.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace distill::model::cpu {

// True when the fast kernels may run on x: a CPU float32 tensor with gradients off.
bool applies(const at::Tensor& x);

// y = weight * (x * rsqrt(mean(x^2, -1) + eps)) over the last dim. x: [..., D] whose last dim is contiguous
// (rows may be strided, as in a split); weight: [D] float32. Returns a new contiguous tensor.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// silu(gate) * up where gate_up = [..., 2I] holds gate | up (a fused projection). Returns [..., I].
at::Tensor silu_mul(const at::Tensor& gate_up);

// The per-token part of MLA latent attention (MlaAttentionImpl::forward_latent), after the projections:
// q: [B, T, H*L] -> [B, T, H, L] with each head's last `rope` values rotated; ckv: [B, T, L] -> the latent
// [B, T, L] = [rms_norm(ckv[:rank]) * norm_weight | rotated ckv[rank:]]. L = rank + rope; rotation in half-split
// order: y = x * cos + roll(x, rope/2) * sin_rot, with cos, sin_rot: [B, 1, T, rope] as apply_rope takes them.
// Rows of q and ckv may be strided (slices of one fused projection). Returns (q_rotated, latent), contiguous.
std::pair<at::Tensor, at::Tensor> mla_rope_latent(const at::Tensor& q, const at::Tensor& ckv, const at::Tensor& norm_weight,
                                                  double eps, const at::Tensor& cos, const at::Tensor& sin_rot,
                                                  std::int64_t heads, std::int64_t rank);

// MoE routing of router logits [N, E] (rows may be strided, e.g. a slice of a fused projection), as
// MoEImpl::route: softmax, or sigmoid plus a bias correction with group-limited choice; top-k (ties go to the
// lower expert id); weights renormalised when `norm_topk_prob`, then scaled. Returns (idx [N,k] int64, w [N,k]).
struct RouteOptions {
  bool sigmoid = false;         // false: softmax
  std::int64_t k = 1;           // experts per token
  std::int64_t n_group = 1;     // sigmoid only: groups, of which the best topk_group are eligible
  std::int64_t topk_group = 1;
  bool norm_topk_prob = false;
  double scaling = 1.0;         // routed_scaling_factor
};
std::pair<at::Tensor, at::Tensor> route(const at::Tensor& logits, const at::Tensor& bias, const RouteOptions& o);

// Grouped MoE dispatch: the (token, expert) pairs counted and ordered by expert in plain loops, each active
// expert's rows gathered once and run through two matmuls (gate|up, then down) with silu*up between, and each
// token's k outputs summed with its routing weights in the order j = 0..k-1 (as the naive loop adds them).
// x: [N, D]; idx, w: [N, k]; gate_up_t[e]: [D, 2I]; down_t[e]: [I, D]. Returns [N, D].
at::Tensor moe_grouped(const at::Tensor& x, const at::Tensor& idx, const at::Tensor& w,
                       const std::vector<at::Tensor>& gate_up_t, const std::vector<at::Tensor>& down_t);

}  // namespace distill::model::cpu
