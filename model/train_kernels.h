// model/train_kernels.h: fused fp32 CPU ops for training, each an autograd function whose forward and backward
// are one pass over the data. Unfused, every one of these is a chain of LibTorch ops (RMSNorm: pow, mean, rsqrt,
// two muls; SwiGLU: silu, mul; RoPE: views, two muls, a roll, addcmul, plus their backward nodes), and in a
// training step their activations no longer fit in cache, so each extra pass is a trip to memory. Each equals its
// LibTorch formula up to fp32 rounding, values and gradients (tests/test_model_equivalence.cpp), and the model's
// gradients stay checked against PyTorch (tests/test_model_reference.cpp). Callers check applies(); on other
// devices or dtypes they keep the formula.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace distill::model::fused {

// True when the fused ops may run on x: a CPU float32 tensor (gradients on or off).
bool applies(const at::Tensor& x);

// y = w * (x * rsqrt(mean(x^2, -1) + eps)). x: [..., D]; w: [D]. Differentiable in x and w.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

// silu(gate) * up, both [..., I]. Differentiable in both.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

// The q, k, v projections [B, T, H*d], [B, T, K*d], [B, T, K*d] -> q [B, H, T, d], k [B, K, T, d], v [B, K, T, d],
// contiguous, with q and k rotated: y = x * cos + roll(x, d/2) * sin_rot (half-split RoPE over the whole head, as
// apply_rope); cos, sin_rot: [B, 1, T, d]. Differentiable in q, k and v.
std::tuple<at::Tensor, at::Tensor, at::Tensor> rope_heads(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                          const at::Tensor& cos, const at::Tensor& sin_rot,
                                                          std::int64_t heads, std::int64_t kv_heads);

}  // namespace distill::model::fused
