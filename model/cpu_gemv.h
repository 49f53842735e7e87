// model/cpu_gemv.h: decode-time products with 16-bit weight copies. A decode step multiplies a few rows by every
// weight matrix, so its speed is how fast the weights stream from memory; ATen's fp32 GEMV reads 4 bytes a weight.
// For a checkpoint stored in f16 or bf16 (every real one, and any f16 export) the fp32 weights hold f16 or bf16
// values exactly, so a 16-bit copy loses nothing: these kernels read it (half the bytes), widen each weight to
// fp32 in registers and accumulate in fp32. Results equal the fp32 product up to summation order.
// AVX-512 only (checked at run time); elsewhere compact() declines and callers keep the fp32 path.
#pragma once

#include <ATen/core/Tensor.h>

namespace distill::model::gemv {

inline constexpr std::int64_t kMaxRows = 8;  // decode batches up to this many rows take the 16-bit path

// w [N, K] fp32 on the CPU as an f16 (or else bf16) copy when every value converts exactly and the CPU has
// AVX-512; otherwise an undefined tensor.
at::Tensor compact(const at::Tensor& w);

// Whether linear(x, w16) applies: x fp32 on the CPU without gradients, at most kMaxRows rows, w16 defined.
bool applies(const at::Tensor& x, const at::Tensor& w16);

// x [..., K] fp32 times w16^T ([N, K], f16 or bf16) plus bias [N] (fp32, optional): [..., N] fp32.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w16, const at::Tensor& bias = {});

}  // namespace distill::model::gemv
