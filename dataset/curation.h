// dataset/curation.h: the append-only curation log and the sample status derived from it.
// Every action is a row (keep or reject, with reason, actor, time); a sample's status is its latest action that
// has not been undone, or pending. `undo` appends an 'undo' row and links the target to it, so every action
// can be reversed exactly and the history stays readable. Filter and dedup runs (issue 4) will write here too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataset/store.h"

namespace distill::dataset {

struct CurationRow {
  std::int64_t id = 0;
  std::int64_t sample_id = 0;
  std::string action;  // keep | reject | undo
  std::string reason, actor, at;
  std::optional<std::int64_t> undone_by;
};

// Appends a keep/reject action for one sample; returns its id. InputError for an unknown sample or action.
std::int64_t curate(Store& s, std::int64_t sample_id, const std::string& action, const std::string& reason,
                    const std::string& actor);

// Reverses action `action_id`; returns the id of the undo row. InputError for an unknown id, an action that
// was already undone, or an undo (undoing an undo is refused: curate again instead).
std::int64_t undo_action(Store& s, std::int64_t action_id, const std::string& actor);

// "pending", "kept" or "rejected".
std::string sample_status(Store& s, std::int64_t sample_id);

std::vector<CurationRow> curation_history(Store& s, std::int64_t sample_id);

struct SampleView {
  std::int64_t id, problem_id, sample_idx, seed, n_tokens;
  std::string split, prompt, gold, completion, verdict, finish_reason, created_at, status;
  std::optional<std::string> extracted_answer;
  double temperature, top_p;
  std::int64_t model_id, run_id;
  std::string model_path, model_role, model_sha256;
  std::optional<int> difficulty;
  std::vector<CurationRow> history;
};
// Everything about one sample, for `data show`. InputError if it does not exist.
SampleView sample_view(Store& s, std::int64_t sample_id);

}  // namespace distill::dataset
