// eval/run_eval.h: `distill eval`: a model answers the problems of a split, K samples each, under the R1 protocol
// (temperature 0.6, top-p 0.95, the R1 prompt) or greedily; every completion is stored in eval_results with the
// run and the model; the metrics of eval/metrics.h come back. Sample seeds derive from (seed, problem, index),
// so every model evaluated with the same seed sees the same draws for the same problems.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "dataset/store.h"
#include "eval/metrics.h"

namespace distill::eval {

struct EvalConfig {
  std::string model_dir;           // HF directory with its tokenizer.model
  std::string split = "eval";
  std::int64_t samples = 4;        // K per problem
  std::int64_t k = 0;              // pass@k / maj@k (0: K)
  std::int64_t limit = 0;          // first N problems (0: all)
  double temperature = 0.6, top_p = 0.95;
  bool greedy = false;             // temperature 0 (then one sample per problem is enough)
  std::int64_t max_tokens = 256;
  std::int64_t batch = 32;
  std::uint64_t seed = 0;
  std::string role;                // models.role: teacher | student | baseline ("": as stored, else student)
  std::string device = "cpu";
  bool resume = false;             // continue the newest unfinished eval of this model (same protocol)
  std::string prompt_format = "auto";  // auto (the model's chat template if any, else r1) | r1 | chat_template
};

struct EvalReport {
  std::int64_t run_id = 0, model_id = 0, n_params = 0, n_active_params = 0;
  std::int64_t resumed = 0;                      // completions a resumed run had stored already
  std::int64_t completed = 0, planned = 0;       // completions stored by the end of this call / the run's total
  std::string interrupted_by;                    // "SIGINT" / "SIGTERM": stopped early, by_difficulty left empty
  double seconds = 0, tokens_per_s = 0;          // wall time; all generated tokens / wall time
  std::string prompt_format;                     // the one used: r1 or chat_template
  std::map<std::string, Summary> by_difficulty;  // "1".."5", "none", and "all"
};

EvalReport run_eval(dataset::Store& store, const EvalConfig& cfg, const std::string& config_toml,
                    const std::function<void(std::int64_t done, std::int64_t total)>& progress = {});

}  // namespace distill::eval
