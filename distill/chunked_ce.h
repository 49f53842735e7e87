// distill/chunked_ce.h: next-token cross-entropy straight from the final hidden states, computed over slices
// of the vocabulary so the [tokens, vocab] logits never exist at once (forward keeps a running logsumexp;
// backward recomputes each slice). For a 150k vocabulary that is the difference between fitting and not.
// Equals F::cross_entropy on h @ W^T, values and gradients, up to fp32 rounding (tests/test_train.cpp). On the
// CPU in float32 each slice's rows take one fused pass (model/train_kernels.h) instead of a chain of ops.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace distill::train {

// Sum over rows whose label is not -100 of -log softmax(hidden @ weight^T)[label].
// hidden [N, D] (any float dtype), weight [V, D], labels [N] int64. Each slice's logits are upcast to fp32 before
// the logsumexp; under bf16 autocast the slice matmul itself runs in bf16, as an autocast lm_head does in HF
// transformers and in bench/reference_train.py, so the loss carries bf16 rounding of the logits there.
// chunk <= 0 or >= V: one slice (the plain computation, still without keeping softmax for backward).
torch::Tensor chunked_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                        const torch::Tensor& labels, std::int64_t chunk);

}  // namespace distill::train
