// model/cpu_gemm.h: fp32 matrix products on the CPU through oneDNN's matmul. LibTorch carries oneDNN, but
// ATen's fp32 mm/addmm/linear call MKL's sgemm, which on AMD CPUs runs its AVX2 kernels even where the core has
// AVX-512: on this Zen 5 machine MKL sgemm gives ~210 GFLOP/s on 2 threads and oneDNN ~460 for the training
// shapes (2048 rows by 128-1024), forward, input-gradient and weight-gradient products alike, in plain fp32
// (not oneDNN's bf16 "fast math", which LibTorch leaves off unless asked). For small products (a decode step's
// few rows) oneDNN's fixed cost per call is larger than MKL's, so those stay with ATen; so do every other
// device, dtype, CPU autocast, and CPUs without AVX-512 (oneDNN's fp32 matmul entry in LibTorch needs it).
// DISTILL_CPU_GEMM=aten turns the oneDNN path off (for A/B measurements). Results equal ATen's up to fp32
// rounding (a different summation order); tests/test_cpu_gemm.cpp checks values and gradients, and the model's
// reference tests run through it.
#pragma once

#include <ATen/core/Tensor.h>

namespace distill::model::gemm {

// out (+)= a @ b. a [M, K], b [K, N], each contiguous or a transposed view of a contiguous matrix (anything
// else is copied first); out [M, N] contiguous. accumulate: out += a @ b, else out = a @ b.
void mm_into(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, bool accumulate);

// a @ b as a new [M, K] x [K, N] -> [M, N] tensor (no autograd: for the hand-written backward passes).
at::Tensor mm(const at::Tensor& a, const at::Tensor& b);

// x w^T + bias, as torch::nn::functional::linear: x [..., K], w [N, K], bias [N] or undefined. Differentiable
// in x, w and bias; the backward's products take the same path.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

// True when a [M, K] x [K, N] product of these operands goes through oneDNN (for tests and benchmarks).
bool uses_onednn(const at::Tensor& a, const at::Tensor& b);

}  // namespace distill::model::gemm
