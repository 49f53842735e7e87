// eval/compare.h: teacher vs student(s) vs baselines from their newest eval runs, on the problems every one of
// them answered (same problems; the same seeds when they were evaluated with the same --seed). Per model:
// params, active params, pass@1, maj@k (at the k its run was made with), tokens per answer, speed, latency, and
// cost relative to the first model, the teacher when there is one (active params x tokens per answer); per
// problem: where their majority answers are not equally right. Each model's protocol is read from its run and
// shown; runs made under different protocols, or on fewer problems than another, are said so in every output.
// Renders a terminal table, JSON and a self-contained HTML report with SVG charts. Reads the store only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataset/evals.h"
#include "eval/metrics.h"
#include "eval/protocol.h"

namespace distill::eval {

struct ModelReport {
  dataset::EvalRunInfo run;
  std::string label;                             // "role: directory", made unique among the models compared
  Protocol protocol;                             // what its run measured under
  std::int64_t answered = 0;                     // problems its run answered (before taking the common ones)
  std::map<std::string, Summary> by_difficulty;  // "1".."5", "none", "all"
  std::vector<std::int64_t> tokens;              // completion lengths, for the distribution chart
  double relative_cost = 1;                      // (active params x mean tokens) / the first model's (`cost_base`)
  std::string color;                             // stable per role: the teacher orange, students greens/blues, baselines greys
};

struct TrainCurve {  // a student's training run, found by its --out directory
  std::string label;  // the student's
  std::string color;
  std::int64_t run_id = 0;
  std::vector<std::int64_t> steps;
  std::vector<double> loss;
  std::vector<std::pair<std::int64_t, double>> val_loss;  // (step, loss) where it was measured
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
  std::string cost_base;      // label of the model costs are relative to
  // Said in every output when not empty: the protocols, when they differ ("the models were evaluated under
  // different protocols: teacher: ... (...); student: ..."), and the models whose runs answered more problems than
  // all of them share.
  std::vector<std::string> warnings;
  std::vector<TrainCurve> curves;                             // the students' training runs, when the store has them
  std::vector<std::pair<std::string, std::int64_t>> funnel;   // the store's curation funnel (dataset::curation_funnel)
};

// InputError when the store holds no finished eval runs. Bootstrap intervals use `seed`, else each run's own
// (the intervals `distill eval` printed for it, when the problems are the same).
Comparison compare_models(dataset::Store& s, std::optional<std::uint64_t> seed = std::nullopt,
                          const dataset::EvalRunSelection& sel = {});

std::string comparison_table(const Comparison& c);  // the terminal table and the disagreement list
std::string comparison_json(const Comparison& c);
std::string comparison_html(const Comparison& c);  // one file, inline SVG, no scripts or external resources

// Training loss by step (validation loss as dots), one line per curve, as a standalone SVG ("" for none): the
// report's training chart, and `distill runs show --svg`.
std::string training_curves_svg(const std::vector<TrainCurve>& curves);

}  // namespace distill::eval
