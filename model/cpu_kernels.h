// model/cpu_kernels.h: hand-written fp32 CPU kernels for the no-grad decode path, where a step is hundreds of
// tiny ops and each LibTorch op costs more in dispatch than in arithmetic. Each kernel replaces a chain of ops
// with one pass over the data and equals that chain up to fp32 rounding (tests/test_model_equivalence.cpp).
// Callers check applies(); on any other device or dtype, or with gradients on, they keep the LibTorch formula.
#pragma once

#include <ATen/core/Tensor.h>

namespace distill::model::cpu {

// True when the fast kernels may run on x: a CPU float32 tensor with gradients off.
bool applies(const at::Tensor& x);

// y = weight * (x * rsqrt(mean(x^2, -1) + eps)) over the last dim. x: [..., D] whose last dim is contiguous
// (rows may be strided, as in a split); weight: [D] float32. Returns a new contiguous tensor.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// silu(gate) * up where gate_up = [..., 2I] holds gate | up (a fused projection). Returns [..., I].
at::Tensor silu_mul(const at::Tensor& gate_up);

}  // namespace distill::model::cpu
