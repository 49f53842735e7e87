// teacher/sampling.h: turning next-token logits into tokens: greedy, temperature, top-k, top-p, min-p.
// Filters run batched on the logits' device in the order temperature -> top-k -> top-p -> min-p; the draw
// uses each row's own generator, so a sequence's tokens depend on its seed only, never on its batch mates.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace distill::teacher {

// Temperatures below this decode greedily (vLLM's rule): logits / T would overflow to inf - inf = NaN long before
// T reaches 0, and the draw would then fall on token 0.
constexpr double kGreedyBelowTemperature = 1e-5;

struct SamplingParams {
  double temperature = 0.6;    // 0 (or under kGreedyBelowTemperature): greedy
  double top_p = 0.95;         // 1: off. Keeps the smallest set of most likely tokens whose mass reaches top_p
  std::int64_t top_k = 0;      // 0: off
  double min_p = 0.0;          // 0: off. Drops tokens with p < min_p * p_max
  std::int64_t max_tokens = 256;
  std::int64_t topk_logprobs = 0;  // capture this many (token, logprob) of the unfiltered distribution per step
};

// InputError naming the flag (--temperature, --top-p, --top-k, --min-p, --max-tokens, --topk-logprobs) when a
// value is out of range or not a number; `vocab_size` bounds --topk-logprobs.
void check_sampling(const SamplingParams& p, std::int64_t vocab_size);

inline bool is_greedy(const SamplingParams& p) { return p.temperature < kGreedyBelowTemperature; }

// The filtered, renormalised distribution [B, V] (float) the draw uses. Greedy (is_greedy): one-hot.
// On the CPU in fp32 a per-row kernel computes it; elsewhere sampling_probs_ops, the same as LibTorch ops.
torch::Tensor sampling_probs(const torch::Tensor& logits, const SamplingParams& p);
torch::Tensor sampling_probs_ops(const torch::Tensor& logits, const SamplingParams& p);

// One token per row ([B] int64 on the logits' device); gens[i] draws row i.
torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingParams& p, std::vector<at::Generator>& gens);

// A generator for `device` seeded with `seed`, independent of the global one.
at::Generator make_generator(std::uint64_t seed, const torch::Device& device);

}  // namespace distill::teacher
