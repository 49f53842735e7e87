// distill/schedule.h: the learning-rate schedule shared by pretraining and student training:
// linear warmup from 0 to `peak`, then cosine decay to `peak * min_ratio` at `total` steps; and the range checks
// both trainers make on their shared options before any work.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>

#include "common/errors.h"

namespace distill::train {

inline double lr_at(std::int64_t step, std::int64_t total, std::int64_t warmup, double peak, double min_ratio) {
  if (warmup > 0 && step < warmup) return peak * double(step + 1) / double(warmup);
  const double span = double(std::max<std::int64_t>(1, total - warmup));
  const double t = std::clamp(double(step - warmup) / span, 0.0, 1.0);
  return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(M_PI * t)));
}

struct CommonTrainOptions {
  double lr, min_lr_ratio, weight_decay, grad_clip;
  std::int64_t steps, warmup, eval_every;
  int threads;
};

// InputError naming the flag and the value given when one is out of range or not a number.
inline void check_train_options(const CommonTrainOptions& o) {
  auto bad = [](const char* flag, const std::string& v, const char* want) {
    throw InputError(std::string(flag) + " " + v + ": expected " + want);
  };
  if (o.steps < 1) bad("--steps", std::to_string(o.steps), ">= 1");
  if (o.warmup < 0) bad("--warmup", std::to_string(o.warmup), ">= 0");
  if (o.eval_every < 0) bad("--eval-every", std::to_string(o.eval_every), ">= 0 (0: only at the end)");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) bad("--lr", number_text(o.lr), "a finite number > 0");
  if (!(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1)) bad("--min-lr-ratio", number_text(o.min_lr_ratio), "a number in [0, 1]");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) bad("--weight-decay", number_text(o.weight_decay), "a finite number >= 0");
  if (!(o.grad_clip >= 0) || !std::isfinite(o.grad_clip)) bad("--grad-clip", number_text(o.grad_clip), "a finite number >= 0 (0: off)");
  const int most = 4 * int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.threads < 0 || o.threads > most)
    bad("--threads", std::to_string(o.threads), ("0..4 x this machine's cores (" + std::to_string(most) + "); 0: the default").c_str());
}

}  // namespace distill::train
