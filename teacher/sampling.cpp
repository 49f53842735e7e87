// teacher/sampling.cpp: see sampling.h.
#include "teacher/sampling.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <mutex>

namespace distill::teacher {

namespace {

// Masks every token except, per row, the candidates (given most likely first, with their probabilities) whose
// preceding mass is still below top_p: the smallest set reaching top_p (the first candidate always stays).
torch::Tensor keep_nucleus(const torch::Tensor& logits, const torch::Tensor& cand_probs, const torch::Tensor& cand_idx,
                           double top_p) {
  auto keep_sorted = (cand_probs.cumsum(-1) - cand_probs) < top_p;
  auto keep = torch::zeros_like(logits, torch::kBool).scatter(-1, cand_idx, keep_sorted);
  return logits.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
}

torch::Tensor top_p_filter(const torch::Tensor& logits, double top_p) {
  // Sorting all V logits per step is the costly part; the nucleus nearly always lies in the top 64, so those are
  // tried first, and the full sort runs only when some row's top 64 hold less than top_p of the mass.
  const auto V = logits.size(-1);
  const std::int64_t C = std::min<std::int64_t>(64, V);
  if (C < V) {
    auto [top, top_idx] = logits.topk(C, -1);  // sorted descending
    auto top_probs = (top - torch::logsumexp(logits, -1, true)).exp();
    if ((top_probs.sum(-1) >= top_p).all().item<bool>()) return keep_nucleus(logits, top_probs, top_idx, top_p);
  }
  auto [sorted, order] = logits.sort(-1, /*descending=*/true);
  return keep_nucleus(logits, sorted.softmax(-1), order, top_p);
}

}  // namespace

torch::Tensor sampling_probs(const torch::Tensor& logits_in, const SamplingParams& p) {
  auto logits = logits_in.to(torch::kFloat32);
  if (p.temperature <= 0) {
    auto idx = logits.argmax(-1, true);
    return torch::zeros_like(logits).scatter_(-1, idx, 1.0);
  }
  logits = logits / p.temperature;
  const auto V = logits.size(-1);
  const float ninf = -std::numeric_limits<float>::infinity();
  if (p.top_k > 0 && p.top_k < V) {
    auto kth = std::get<0>(logits.topk(p.top_k, -1)).narrow(-1, p.top_k - 1, 1);  // [B,1]
    logits = logits.masked_fill(logits < kth, ninf);
  }
  if (p.top_p < 1.0) logits = top_p_filter(logits, p.top_p);
  auto probs = logits.softmax(-1);
  if (p.min_p > 0) {
    auto pmax = std::get<0>(probs.max(-1, true));
    probs = probs.masked_fill(probs < p.min_p * pmax, 0.0);
    probs = probs / probs.sum(-1, true);
  }
  return probs;
}

torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingParams& p, std::vector<at::Generator>& gens) {
  if (p.temperature <= 0) return logits.argmax(-1);
  auto probs = sampling_probs(logits, p);
  TORCH_CHECK(std::int64_t(gens.size()) == probs.size(0), "one generator per row");
  // One draw per row, batched: what at::multinomial(probs[i], 1) does (argmax of p / q with q ~ Exp(1) drawn
  // from the row's generator), with only the noise fill left per row. Draws equal multinomial's exactly.
  auto q = torch::empty_like(probs);
  for (std::size_t i = 0; i < gens.size(); ++i) q[std::int64_t(i)].exponential_(1.0, gens[i]);
  return (probs / q).argmax(-1);
}

at::Generator make_generator(std::uint64_t seed, const torch::Device& device) {
  auto g = at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
  return g;
}

}  // namespace distill::teacher
