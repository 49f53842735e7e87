// distill/kd.h: logit distillation from the teacher's stored top-k. The teacher is known only through K
// (token id, logprob) pairs per position; the rest of its mass, 1 - sum of those probabilities, is one more
// "tail" outcome, and the student's distribution is folded onto the same K + 1 outcomes (its tail is the mass of
// every other token). Both tails are floored at 1e-9 so every log stays finite. Per position:
//   fkl = KL(teacher || student) (mode covering, the usual KD), rkl = KL(student || teacher) (mode seeking),
//   jsd = the Jensen-Shannon divergence with equal weights.
// Checked, value and gradient, against tests/reference/gen_kd.py; the sliced form against the plain one.
#pragma once

#include <torch/types.h>

#include <string>

namespace distill::train {

enum class KdKind { fkl, rkl, jsd };
KdKind parse_kd_kind(const std::string& name);  // InputError naming the valid ones

// Sum over positions. student_logits [N, V]; top_ids [N, K] int64 (distinct per row); top_logp [N, K] float
// (teacher logprobs).
torch::Tensor kd_loss_sum(const torch::Tensor& student_logits, const torch::Tensor& top_ids, const torch::Tensor& top_logp,
                          KdKind kind);

// The same loss from the student's final hidden states [N, D] and output weight [V, D], over vocabulary slices
// of `chunk` (<= 0: one), so the [N, V] logits never exist at once (as chunked_cross_entropy_sum): forward keeps
// two logsumexps per row, backward recomputes each slice. Equals kd_loss_sum(hidden @ weight^T, ...).
torch::Tensor chunked_kd_loss_sum(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& top_ids,
                                  const torch::Tensor& top_logp, KdKind kind, std::int64_t chunk);

}  // namespace distill::train
