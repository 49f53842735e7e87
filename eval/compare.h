// eval/compare.h: teacher vs student(s) vs baselines from their newest eval runs, on the problems every one of
// them answered (same problems; the same seeds when they were evaluated with the same --seed). Per model:
// params, active params, pass@1, maj@k, tokens per answer, speed, and cost relative to the teacher (active
// params x tokens per answer); per problem: where their majority answers disagree. Renders a terminal table,
// JSON and a self-contained HTML report with SVG charts. Reads the store only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dataset/evals.h"
#include "eval/metrics.h"

namespace distill::eval {

struct ModelReport {
  dataset::EvalRunInfo run;
  std::map<std::string, Summary> by_difficulty;  // "1".."5", "none", "all"
  std::vector<std::int64_t> tokens;              // completion lengths, for the distribution chart
  double relative_cost = 1;                      // (active params x mean tokens) / the first model's
};

struct Disagreement {
  std::int64_t problem_id = 0;
  std::string prompt, gold;
  std::vector<std::string> majority;  // per model: its majority answer ("" when none)
  std::vector<bool> correct;          // per model: maj correct
};

struct Comparison {
  std::vector<ModelReport> models;
  std::int64_t problems = 0;  // answered by every model
  std::vector<Disagreement> disagreements;
};

// InputError when the store holds no eval runs.
Comparison compare_models(dataset::Store& s, std::uint64_t seed = 0);

std::string comparison_table(const Comparison& c);  // the terminal table and the disagreement list
std::string comparison_json(const Comparison& c);
std::string comparison_html(const Comparison& c);  // one file, inline SVG, no scripts or external resources

}  // namespace distill::eval
