// model/cpu_kernels.cpp: see cpu_kernels.h. Plain loops the compiler vectorises; rows are split over threads
// only when there is enough work to pay for it.
#include "model/cpu_kernels.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>

namespace distill::model::cpu {

namespace {

// Rows of x viewed as [rows, D]: the last dim must be contiguous and the outer dims must merge into one stride.
bool row_view(const at::Tensor& x, std::int64_t* rows, std::int64_t* row_stride) {
  const auto n = x.dim();
  if (n == 0 || x.stride(n - 1) != 1) return false;
  *rows = 1;
  *row_stride = x.size(n - 1);
  std::int64_t prev_stride = -1;  // stride of the previous (outer) dim of size > 1
  for (std::int64_t i = 0; i + 1 < n; ++i) {
    if (x.size(i) == 1) continue;
    if (prev_stride >= 0 && prev_stride != x.stride(i) * x.size(i)) return false;
    prev_stride = x.stride(i);
    *rows *= x.size(i);
    *row_stride = x.stride(i);
  }
  for (std::int64_t i = 0; i + 1 < n; ++i)
    if (x.size(i) == 0) *rows = 0;
  return true;
}

std::int64_t grain_rows(std::int64_t d) { return std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(d, 1)); }

}  // namespace

bool applies(const at::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && !at::GradMode::is_enabled();
}

at::Tensor rms_norm(const at::Tensor& x_in, const at::Tensor& weight, double eps) {
  std::int64_t rows = 0, rs = 0;
  at::Tensor x = x_in;
  if (!row_view(x, &rows, &rs)) {
    x = x_in.contiguous();
    row_view(x, &rows, &rs);
  }
  const auto D = x.size(-1);
  TORCH_CHECK(weight.numel() == D && weight.is_contiguous() && weight.scalar_type() == at::kFloat, "rms_norm weight");
  auto out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  const float* px = x.data_ptr<float>();
  const float* pw = weight.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const float e = float(eps);
  at::parallel_for(0, rows, grain_rows(D), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const float* xr = px + r * rs;
      float* yr = po + r * D;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::int64_t i = 0;
      for (; i + 8 <= D; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += xr[i + j] * xr[i + j];
      float ss = 0;
      for (; i < D; ++i) ss += xr[i] * xr[i];
      for (float a : acc) ss += a;
      const float inv = 1.0f / std::sqrt(ss / float(D) + e);
      for (std::int64_t k = 0; k < D; ++k) yr[k] = pw[k] * (xr[k] * inv);
    }
  });
  return out;
}

at::Tensor silu_mul(const at::Tensor& gu_in) {
  std::int64_t rows = 0, rs = 0;
  at::Tensor gu = gu_in;
  if (!row_view(gu, &rows, &rs)) {
    gu = gu_in.contiguous();
    row_view(gu, &rows, &rs);
  }
  const auto I = gu.size(-1) / 2;
  auto sizes = gu.sizes().vec();
  sizes.back() = I;
  auto out = at::empty(sizes, gu.options().memory_format(at::MemoryFormat::Contiguous));
  const float* pg = gu.data_ptr<float>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, rows, grain_rows(I), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const float* g = pg + r * rs;
      const float* u = g + I;
      float* y = po + r * I;
      for (std::int64_t k = 0; k < I; ++k) y[k] = g[k] / (1.0f + std::exp(-g[k])) * u[k];
    }
  });
  return out;
}

}  // namespace distill::model::cpu
