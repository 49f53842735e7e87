// dataset/evals.h: evaluation results in the store: what `distill eval` writes (one row per completion, with its
// run and model) and what `distill compare` reads back (the newest eval run of every model, and its rows).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataset/store.h"

namespace distill::dataset {

struct EvalRow {
  std::int64_t problem_id = 0, sample_idx = 0, n_tokens = 0;
  std::string completion, verdict;
  double latency_ms = 0;
};

// One transaction.
void insert_eval_results(Store& s, std::int64_t run_id, std::int64_t model_id, const std::vector<EvalRow>& rows);

struct EvalRunInfo {
  std::int64_t run_id = 0, model_id = 0, n_params = 0, n_active_params = 0;
  std::string role, path, arch, sha256, started_at;
  std::string config_toml;  // the run's resolved config: its protocol (eval/protocol.h)
};

// Which eval runs a comparison takes: `runs` names them exactly (finished eval runs, hidden ones too); else
// `models` names the models, each with its newest finished run that is not hidden; else every model so.
struct EvalRunSelection {
  std::vector<std::int64_t> runs, models;
};
// The selected runs; teachers first, then students, then baselines, then by model id. InputError for a named
// run that is not a finished eval run, or a named model with no such run.
std::vector<EvalRunInfo> latest_eval_runs(Store& s, const EvalRunSelection& sel = {});

// The eval runs of the model with this sha256 that did not finish ('running' when killed, or 'failed') and hold
// completions, newest first: (run id, its config TOML).
std::vector<std::pair<std::int64_t, std::string>> unfinished_eval_runs(Store& s, const std::string& sha256);

// The newest finished ('ok') eval run of that model, 0 if none.
std::int64_t newest_finished_eval_run(Store& s, const std::string& sha256);

struct EvalResult {
  std::int64_t problem_id = 0, sample_idx = 0, n_tokens = 0;
  std::string completion, verdict, gold, prompt;
  std::optional<int> difficulty;
  double latency_ms = 0;
};
std::vector<EvalResult> eval_results_of(Store& s, std::int64_t run_id);  // by problem, then sample index

// Every eval run with its answer count, newest first (the studio's run choice): counted through eval_results's
// primary key, so a store of a million samples is not read for it.
struct EvalRunRow {
  std::int64_t id = 0, answers = 0;
  std::string status, started_at;
  bool hidden = false;
};
std::vector<EvalRunRow> eval_runs(Store& s);

// Eval answers for error analysis (`data list --eval`): every eval run's completions, filtered. Newest run first,
// then by problem and sample index.
struct EvalAnswerQuery {
  std::optional<std::int64_t> run_id, model_id, problem_id;
  std::string verdict, split;  // "" = any
  std::int64_t limit = 50, offset = 0;
};
struct EvalAnswerRow {
  std::int64_t run_id = 0, model_id = 0, problem_id = 0, sample_idx = 0, n_tokens = 0;
  std::string role, model_path, split, verdict, completion;
};
std::vector<EvalAnswerRow> list_eval_answers(Store& s, const EvalAnswerQuery& q);
std::int64_t count_eval_answers(Store& s, const EvalAnswerQuery& q);

}  // namespace distill::dataset
