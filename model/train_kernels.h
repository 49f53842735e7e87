// model/train_kernels.h: fused fp32 CPU ops for training: autograd functions whose forward and backward are one
// pass over the data each, and the row passes of the chunked cross-entropy. Unfused, every one of these is a chain
// of LibTorch ops (RMSNorm: pow, mean, rsqrt, two muls; SwiGLU: silu, mul; RoPE: views, two muls, a roll, addcmul,
// plus their backward nodes; cross-entropy: max, sub, exp, sum, gather, then sub, exp, scatter, mul), and in a
// training step their activations no longer fit in cache, so each extra pass is a trip to memory. Each equals its
// LibTorch formula up to fp32 rounding, values and gradients (tests/test_model_equivalence.cpp, the cross-entropy
// in tests/test_train.cpp), and the model's gradients stay checked against PyTorch
// (tests/test_model_reference.cpp). Callers check applies(); on other devices or dtypes they keep the formula.
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

// Causal attention, softmax(scale q k^T + causal mask) v, for heads 16, 32 or 64 wide, with grouped kv heads (query
// head h reads kv head h / (H / K)): q [B, H, T, d], k and v [B, K, T, d] -> [B, T, H * d], the heads already
// merged for the output projection. With `starts` ([B, T] int64, CPU; never decreasing along a row, starts[i] <=
// i) query i reads only keys starts[i]..i: documents packed back to back in a row, the block-diagonal causal mask,
// without computing the blocks it masks. Forward keeps each row's log-sum-exp; backward recomputes the scores
// tile by tile (FlashAttention's scheme). Differentiable in q, k and v. causal_attention_applies says whether it
// takes these tensors.
bool causal_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                            const at::Tensor& starts = {});

// The starts for packed rows, from the model's positions and segment ids ([B, T] CPU; segments may be [1, T]):
// when every document is one run of its row (segment ids never decrease) with strictly increasing positions, the
// model's mask (key position <= query position, same segment) is exactly keys starts[i]..i, starts[i] being the
// first token of i's run. Undefined when some row is laid out otherwise (then the mask must be used).
at::Tensor document_starts(const at::Tensor& positions, const at::Tensor& segments);

// Cross-entropy over one slice of the vocabulary, row by row, for distill/chunked_ce.cpp (plain functions, no
// autograd: the loss's own backward calls the second). logits [N, n] holds columns c0 .. c0+n-1, contiguous CPU
// float32; labels [N] int64 (a label outside the slice, -100 included, is skipped); the row statistics are [N]
// contiguous float32. Forward, in place: m = running max, s = running sum of exp(logit - m), rescaled when m
// grows; target = the label's logit where it falls in this slice. Backward, in place of the logits:
// scale * (softmax - onehot(label)), the softmax from the forward's lse = m + log(s).
void ce_slice_forward(const at::Tensor& logits, const at::Tensor& labels, std::int64_t c0, at::Tensor& m,
                      at::Tensor& s, at::Tensor& target);
void ce_slice_backward(at::Tensor& logits, const at::Tensor& labels, std::int64_t c0, const at::Tensor& lse,
                       const at::Tensor& scale);

}  // namespace distill::model::fused
