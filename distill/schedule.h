// distill/schedule.h: the learning-rate schedule shared by pretraining and student training:
// linear warmup from 0 to `peak`, then cosine decay to `peak * min_ratio` at `total` steps.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace distill::train {

inline double lr_at(std::int64_t step, std::int64_t total, std::int64_t warmup, double peak, double min_ratio) {
  if (warmup > 0 && step < warmup) return peak * double(step + 1) / double(warmup);
  const double span = double(std::max<std::int64_t>(1, total - warmup));
  const double t = std::clamp(double(step - warmup) / span, 0.0, 1.0);
  return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(M_PI * t)));
}

}  // namespace distill::train
