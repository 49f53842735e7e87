// dataset/reverify.h: `distill data verify`: stored samples verified again against their problem's gold answer,
// after the verifier improved or a gold answer arrived. Without `apply` nothing is written; applied (the CLI's
// default), it is one curation action of kind 'verify' that records each changed verdict (old and new, with verifier versions) and, where a sample's
// rejection rested only on its old verdict, returns that sample to pending. Undo restores both (curation.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataset/curate_runs.h"

namespace distill::dataset {

struct VerifyOptions {
  std::optional<std::int64_t> run_id;  // only samples drawn or imported by this run (default: all)
};

struct VerifyReport {
  std::int64_t considered = 0;
  std::int64_t changed = 0;    // samples whose verdict, extracted answer, rule or verifier version changed
  std::map<std::string, std::int64_t> transitions;  // "incorrect -> correct" -> samples (verdict changes only)
  std::int64_t restamped = 0;  // same verdict, newer verifier version or extraction rule recorded
  std::int64_t reopened = 0;   // rejected only for the old verdict, now correct: back to pending
  std::int64_t still_rejected = 0;  // now correct, but rejected for another reason too (or by a person): left alone
  std::int64_t kept_not_correct = 0;  // kept by a person, now not correct: left alone, listed for review
  std::vector<std::pair<std::int64_t, std::string>> examples;  // up to 10 (sample id, "old -> new (answer)")
  std::optional<std::int64_t> action_id;
};

VerifyReport reverify(Store& s, const VerifyOptions& o, bool apply, const Who& who, const ProgressFn& progress = {});

}  // namespace distill::dataset
