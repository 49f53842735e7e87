// dataset/runs.h: every run the store records (synth, import, generate, train, eval, curation passes...), for
// `distill runs`: what each made, what depends on it, hiding one from comparisons, and deleting one that nothing
// else depends on (an eval run's answers go with it). Deletions are one transaction.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataset/store.h"

namespace distill::dataset {

struct RunRow {
  std::int64_t id = 0;
  std::string kind, status, started_at, finished_at, host, version, config_toml;
  bool hidden = false;
  std::map<std::string, std::int64_t> made;  // what rows carry its id: problems, samples, eval answers, train steps, remote requests
};

std::vector<RunRow> list_runs(Store& s, bool with_hidden);  // newest first

struct TrainStepRow {
  std::int64_t step = 0, tokens = 0;
  double loss = 0, lr = 0;
  std::optional<double> val_loss;
  std::string at;
};
std::vector<TrainStepRow> train_steps_of(Store& s, std::int64_t run_id);  // by step
RunRow run_row(Store& s, std::int64_t id);                  // InputError for an unknown id

void set_run_hidden(Store& s, std::int64_t id, bool hidden);

// What deleting run `id` would take with it, or refuse: an eval run's answers go with it; a run whose problems,
// samples, train steps or remote requests others build on is refused, naming them. InputError then.
struct RunRemoval {
  RunRow run;
  std::vector<std::string> takes;  // "12 eval answers"
};
RunRemoval plan_run_removal(Store& s, std::int64_t id);
void remove_run(Store& s, std::int64_t id);  // plan_run_removal's refusals, then the deletion in one transaction

}  // namespace distill::dataset
