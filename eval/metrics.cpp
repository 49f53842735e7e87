// eval/metrics.cpp: see metrics.h.
#include "eval/metrics.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "common/rng.h"
#include "dataset/answer.h"

namespace distill::eval {

double pass_at_k(std::int64_t n, std::int64_t c, std::int64_t k) {
  if (k < 1 || k > n || c < 0 || c > n) throw std::invalid_argument("pass_at_k needs 1 <= k <= n and 0 <= c <= n");
  if (n - c < k) return 1.0;
  double miss = 1.0;  // C(n-c, k) / C(n, k) as a product, stable for large n
  for (std::int64_t i = n - c + 1; i <= n; ++i) miss *= 1.0 - double(k) / double(i);
  return 1.0 - miss;
}

bool majority_correct(const std::vector<std::optional<std::string>>& answers, const std::string& gold) {
  std::vector<std::pair<std::string, int>> groups;  // representative, votes
  for (const auto& a : answers) {
    if (!a) continue;
    bool placed = false;
    for (auto& g : groups)
      if (dataset::answers_equivalent(*a, g.first)) {
        ++g.second;
        placed = true;
        break;
      }
    if (!placed) groups.emplace_back(*a, 1);
  }
  if (groups.empty()) return false;
  const auto* best = &groups[0];
  for (const auto& g : groups)
    if (g.second > best->second) best = &g;
  return dataset::answers_equivalent(best->first, gold);
}

namespace {
struct PerProblem {
  double pass1, pass_k, maj;
};

Interval bootstrap(const std::vector<double>& v, std::uint64_t seed, int resamples) {
  Interval out;
  if (v.empty()) return out;
  double sum = 0;
  for (double x : v) sum += x;
  out.value = sum / double(v.size());
  if (resamples <= 0 || v.size() < 2) return out.lo = out.hi = out.value, out;
  Rng rng(seed);
  std::vector<double> means;
  means.reserve(std::size_t(resamples));
  for (int r = 0; r < resamples; ++r) {
    double s = 0;
    for (std::size_t i = 0; i < v.size(); ++i) s += v[std::size_t(rng.uniform(0, std::int64_t(v.size()) - 1))];
    means.push_back(s / double(v.size()));
  }
  std::sort(means.begin(), means.end());
  out.lo = means[std::size_t(0.025 * (resamples - 1))];
  out.hi = means[std::size_t(0.975 * (resamples - 1))];
  return out;
}
}  // namespace

Summary summarize(const std::vector<ProblemOutcome>& outcomes, std::int64_t k, std::uint64_t seed, int resamples) {
  Summary s;
  if (outcomes.empty()) return s;
  std::int64_t min_n = std::numeric_limits<std::int64_t>::max();
  for (const auto& o : outcomes) min_n = std::min<std::int64_t>(min_n, std::int64_t(o.correct.size()));
  if (min_n < 1) throw std::invalid_argument("every problem needs at least one sample");
  s.k = k <= 0 ? min_n : std::min(k, min_n);
  std::vector<double> p1, pk, mj;
  double tokens = 0, secs = 0;
  for (const auto& o : outcomes) {
    const auto n = std::int64_t(o.correct.size());
    const auto c = std::int64_t(std::count(o.correct.begin(), o.correct.end(), true));
    p1.push_back(double(c) / double(n));
    pk.push_back(pass_at_k(n, c, s.k));
    std::vector<std::optional<std::string>> first_k(o.answers.begin(), o.answers.begin() + std::min<std::int64_t>(s.k, std::int64_t(o.answers.size())));
    mj.push_back(majority_correct(first_k, o.gold) ? 1.0 : 0.0);
    for (auto t : o.tokens) tokens += double(t);
    for (auto x : o.seconds) secs += x;
    s.samples += n;
  }
  s.problems = std::int64_t(outcomes.size());
  s.pass1 = bootstrap(p1, seed, resamples);
  s.pass_k = bootstrap(pk, seed + 1, resamples);
  s.maj_k = bootstrap(mj, seed + 2, resamples);
  s.mean_tokens = tokens / double(s.samples);
  s.latency_s = secs / double(s.samples);
  s.tokens_per_s = secs > 0 ? tokens / secs : 0;
  return s;
}

std::map<std::string, Summary> summarize_by_difficulty(const std::vector<ProblemOutcome>& outcomes, std::int64_t k,
                                                       std::uint64_t seed, int resamples) {
  std::map<std::string, std::vector<ProblemOutcome>> by;
  for (const auto& o : outcomes) by[o.difficulty ? std::to_string(*o.difficulty) : "none"].push_back(o);
  std::map<std::string, Summary> out;
  for (const auto& [d, v] : by) out[d] = summarize(v, k, seed, resamples);
  out["all"] = summarize(outcomes, k, seed, resamples);
  return out;
}

}  // namespace distill::eval
