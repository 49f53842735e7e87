// dataset/curate_runs.h: the bulk curation passes over a store: rule filters, exact and near-duplicate removal,
// and n-gram decontamination. Each pass decides on the pending samples (optionally one split) and reports counts;
// a person's keep or reject stands (kept samples still count toward a per-problem cap and win dedup ties).
// Dry run by default; with `apply` the rejects are recorded as one curation action (one transaction), so a
// killed run leaves the store as it was and undo reverses it whole. A sample someone reviews while a pass reads
// keeps that review. Passes only reject: survivors stay pending until someone accepts them (data review).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataset/store.h"

namespace distill::dataset {

struct Scope {
  std::string split;  // "" = every split
};

// Ids of pending samples (no live decision), in id order.
std::vector<std::int64_t> pending_samples(Store& s, const std::string& split);

struct FilterRules {
  bool correct_only = false;              // verdict must be 'correct' (unverified ones go under rule 'unverified')
  std::optional<std::int64_t> min_tokens, max_tokens;  // samples of unknown length are skipped, and counted
  bool format = false;                    // one closed think block, then a final \boxed{}
  bool single_script = false;             // reject mixed scripts in the reasoning
  std::int64_t max_foreign_letters = 0;   // letters outside the main script tolerated by single_script
  std::optional<std::int64_t> max_paragraph_chars;
  bool no_code_blocks = false;
  std::optional<double> max_repetition;   // repetition_ratio over word n-grams
  int repetition_n = 8;
  std::optional<std::pair<double, double>> pass_rate;  // keep problems whose pass rate lies in [lo, hi]
  std::optional<std::int64_t> max_per_problem;          // among survivors, lowest sample_idx first
  std::string to_json() const;
  static FilterRules from_json(const std::string& params);  // to_json's inverse (a filter action's parameters)
};

// The first rule, in the order above, that one sample fails: (rule, reason), or nullopt. `pass` is its problem's
// (correct, samples), needed only for the pass-rate rule (skipped without it); the per-problem cap is not judged
// here, and an unknown length passes the length rules.
std::optional<std::pair<std::string, std::string>> failed_rule(const FilterRules& rules, const std::string& verdict,
                                                              std::optional<std::int64_t> n_tokens,
                                                              const std::string& completion,
                                                              std::optional<std::pair<std::int64_t, std::int64_t>> pass);

// A pass's outcome: how many it looked at, how many each rule rejects, and (when applied) the action id.
struct PassReport {
  std::int64_t considered = 0, rejected = 0;
  std::map<std::string, std::int64_t> by_rule;  // first failing rule -> samples
  std::vector<std::pair<std::int64_t, std::string>> examples;  // up to 10 (sample id, reason)
  std::optional<std::int64_t> action_id;
  std::map<std::string, std::int64_t> matched;  // decontamination: n-gram -> samples it flagged (top 20)
  std::int64_t ignored_ngrams = 0;               // decontamination: boilerplate n-grams left out
  std::vector<std::string> compared;             // dedup, decontamination: what was compared with what, in words
  std::map<std::string, std::int64_t> skipped;   // filter: rules not applied, and why ("length unknown" -> samples)
};

using ProgressFn = std::function<void(std::int64_t done, std::int64_t total)>;

struct Who {
  std::string actor, reason;  // stored with the action when applied
};

PassReport run_filter(Store& s, const FilterRules& rules, const Scope& scope, bool apply, const Who& who,
                      const ProgressFn& progress = {});

struct DedupOptions {
  bool exact = true, near = true;
  double threshold = 0.8;  // estimated Jaccard over n-token shingles (text_rules tokens(): words and symbols)
  int ngram = 5;            // tokens per shingle
  int num_perm = 128;
  std::string to_json() const;
};
// The survivor of a group is its lowest sample id. Samples are compared within their problem, and across problems
// only where the problems' own texts are near duplicates (the same threshold and shingles).
PassReport run_dedup(Store& s, const DedupOptions& o, const Scope& scope, bool apply, const Who& who,
                     const ProgressFn& progress = {});

struct DecontamOptions {
  int ngram = 8;
  double max_df = 0.01;  // n-grams in more than this share of benchmark problems (and more than 2) are template text
  std::string against_split = "eval";      // problems of this split are the benchmark (when no file is given)
  std::vector<ProblemRow> benchmark;        // or these (an imported benchmark file)
  std::string benchmark_name;               // for the report and the action's parameters
  bool completions = false;                 // also compare completions with benchmark problems and solutions
  std::string to_json() const;
};
// Flags samples whose problem shares a content word n-gram with a benchmark problem (or is one, whole), as
// open-r1 and s1 compare problems with benchmark problems; with `completions`, also samples whose completion
// shares one with a benchmark problem or solution. Each reason names what matched what.
PassReport run_decontaminate(Store& s, const DecontamOptions& o, const Scope& scope, bool apply,
                             const Who& who, const ProgressFn& progress = {});

}  // namespace distill::dataset
