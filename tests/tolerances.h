// tests/tolerances.h: every numeric tolerance of the reference tests, in one table, each with its reason.
#pragma once

namespace distill::test::tol {

// fp32 logits vs the Python reference: both run the same ATen kernels; differences come only from the order
// of reductions (fused SDPA vs explicit softmax(QK^T)V, index_add order of expert outputs). Observed ~1e-6.
inline constexpr double kLogitsAtol = 2e-5;
// LM loss and aux loss: a mean of ~20 terms of the logits above.
inline constexpr double kLossRtol = 1e-5;
// Parameter gradients: accumulate the logits' rounding through backward over 2-3 layers.
inline constexpr double kGradAtol = 2e-5;
inline constexpr double kGradRtol = 1e-4;
// Same-implementation equivalences (KV cache vs full forward, grouped vs naive MoE, packed vs unpacked):
// only summation order differs.
inline constexpr double kEquivAtol = 1e-5;
// Parameters after four AdamW steps vs torch.optim.AdamW: the same update formula in the same order, fp32; the
// only difference is the clip's norm, summed in another order (relative ~1e-7 of a ~1e-3 step).
inline constexpr double kOptimAtol = 1e-6;

// fp32 logits of transformers-saved checkpoints vs transformers 5.x (tests/test_hf_parity.cpp): the bound.
// Observed up to ~2e-6 (the per-architecture figures print with the test).
inline constexpr double kHfLogitsAtol = 1e-4;
// A bf16/f16 checkpoint computed in its own dtype vs transformers computing in it: both round every op's output
// to 8 (bf16) or 11 (f16) mantissa bits, in different orders and with different fused kernels, on logits of a few
// units; bf16's unit in the last place there is ~0.03.
inline constexpr double kHfHalfLogitsAtol = 0.25;

}  // namespace distill::test::tol
