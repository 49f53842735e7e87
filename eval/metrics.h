// eval/metrics.h: the evaluation metrics of the R1 protocol over K samples per problem: pass@1 (the mean over
// samples), unbiased pass@k (Chen et al. 2021), maj@k (majority vote over equivalent answers), completion length,
// throughput and latency, each overall and by difficulty, with bootstrap 95% intervals over problems. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace distill::eval {

struct ProblemOutcome {
  std::int64_t problem_id = 0;
  std::optional<int> difficulty;
  std::string gold;
  std::vector<bool> correct;                       // per sample
  std::vector<std::optional<std::string>> answers; // extracted final answer per sample (nullopt: none)
  std::vector<std::int64_t> tokens;                // completion tokens per sample
  std::vector<double> seconds;                     // generation time per sample
};

// 1 - C(n - c, k) / C(n, k): the chance that k of the n samples, drawn without replacement, include a correct
// one. Requires 1 <= k <= n.
double pass_at_k(std::int64_t n, std::int64_t c, std::int64_t k);

// Whether the most common answer (answers grouped by equivalence, ties to the group seen first; missing
// answers never win) is equivalent to the gold answer.
bool majority_correct(const std::vector<std::optional<std::string>>& answers, const std::string& gold);

struct Interval {
  double value = 0, lo = 0, hi = 0;  // point estimate and bootstrap 95% interval
};

struct Summary {
  std::int64_t problems = 0, samples = 0, k = 0;
  Interval pass1, pass_k, maj_k;
  double mean_tokens = 0;
  double tokens_per_s = 0;  // per sequence: completion tokens / its generation time (what one request sees)
  double latency_s = 0;     // mean seconds per sample, from admission to its last token
};

// The seed of an eval run's bootstrap intervals, from the run's --seed (eval prints them, compare repeats them).
inline std::uint64_t bootstrap_seed(std::uint64_t eval_seed) { return eval_seed ^ 0xb007ULL; }

// k = 0: k is the number of samples per problem (the smallest, if they differ).
Summary summarize(const std::vector<ProblemOutcome>& outcomes, std::int64_t k, std::uint64_t seed, int resamples = 1000);

// Per difficulty ("1".."5", "none") and overall ("all").
std::map<std::string, Summary> summarize_by_difficulty(const std::vector<ProblemOutcome>& outcomes, std::int64_t k,
                                                       std::uint64_t seed, int resamples = 1000);

}  // namespace distill::eval
