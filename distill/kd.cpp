// distill/kd.cpp: see kd.h.
#include "distill/kd.h"

#include <torch/torch.h>

#include <cmath>

#include "common/errors.h"

namespace distill::train {

KdKind parse_kd_kind(const std::string& name) {
  if (name == "fkl") return KdKind::fkl;
  if (name == "rkl") return KdKind::rkl;
  if (name == "jsd") return KdKind::jsd;
  throw InputError("--kd '" + name + "' is not known (expected fkl, rkl or jsd)");
}

torch::Tensor kd_loss_sum(const torch::Tensor& student_logits, const torch::Tensor& top_ids, const torch::Tensor& top_logp,
                          KdKind kind) {
  const double log_floor = std::log(1e-9);
  auto logq = torch::log_softmax(student_logits.to(torch::kFloat32), -1);
  auto q_top = logq.gather(-1, top_ids);
  auto q_tail = logq.scatter(-1, top_ids, -std::numeric_limits<float>::infinity()).logsumexp(-1, true).clamp_min(log_floor);
  auto t = top_logp.to(torch::kFloat32);
  auto p_tail = (1 - t.exp().sum(-1, true)).clamp_min(1e-9).log();
  auto lp = torch::cat({t, p_tail}, -1), lq = torch::cat({q_top, q_tail}, -1);
  auto p = lp.exp(), q = lq.exp();
  switch (kind) {
    case KdKind::fkl: return (p * (lp - lq)).sum();
    case KdKind::rkl: return (q * (lq - lp)).sum();
    default: {
      auto lm = ((p + q) / 2).log();
      return (0.5 * (p * (lp - lm)) + 0.5 * (q * (lq - lm))).sum();
    }
  }
}

}  // namespace distill::train
