// distill/kd.h: logit distillation from the teacher's stored top-k. The teacher is known only through K
// (token id, logprob) pairs per position; the rest of its mass, 1 - sum of those probabilities, is one more
// "tail" outcome, and the student's distribution is folded onto the same K + 1 outcomes (its tail is the mass of
// every other token). Both tails are floored at 1e-9 so every log stays finite. Per position:
//   fkl = KL(teacher || student) (mode covering, the usual KD), rkl = KL(student || teacher) (mode seeking),
//   jsd = the Jensen-Shannon divergence with equal weights.
// Checked, value and gradient, against tests/reference/gen_kd.py.
#pragma once

#include <torch/types.h>

#include <string>

namespace distill::train {

enum class KdKind { fkl, rkl, jsd };
KdKind parse_kd_kind(const std::string& name);  // InputError naming the valid ones

// Sum over positions. student_logits [N, V]; top_ids [N, K] int64; top_logp [N, K] float (teacher logprobs).
torch::Tensor kd_loss_sum(const torch::Tensor& student_logits, const torch::Tensor& top_ids, const torch::Tensor& top_logp,
                          KdKind kind);

}  // namespace distill::train
