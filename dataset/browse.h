// dataset/browse.h: the read side of a curation session: listing samples by status, verdict, problem, length
// and full text (SQLite FTS5 over completions), and the curation statistics (status counts, length histogram,
// pass rate by difficulty). Read-only queries.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataset/curation.h"

namespace distill::dataset {

struct ListQuery {
  std::optional<Status> status;
  std::string verdict;  // "" = any
  std::string split;    // "" = any
  std::optional<std::int64_t> problem_id, min_tokens, max_tokens;
  std::string search;   // FTS5 query over completions ("" = none), e.g. 'carry AND "mod 10"'
  std::int64_t limit = 50, offset = 0;
};

struct ListRow {
  std::int64_t id, problem_id;
  std::optional<std::int64_t> n_tokens;  // nullopt: unknown
  std::int64_t sample_idx;
  std::string split, status, verdict, snippet;  // snippet: the search hit in context, or the answer line
};

// Matching samples in id order. InputError for an FTS5 query SQLite cannot parse (with its message).
std::vector<ListRow> list_samples(Store& s, const ListQuery& q);
std::int64_t count_samples(Store& s, const ListQuery& q);  // ignores limit/offset

// Samples to train on: their problem and completion, in sample id order.
struct CuratedSample {
  std::int64_t id = 0, problem_id = 0, model_id = 0;
  std::optional<std::int64_t> n_tokens;  // nullopt: unknown (imported without a tokenizer)
  std::string prompt, answer, completion, finish_reason, model_path, split;  // split: the problem's
  std::optional<int> difficulty;
};
std::vector<CuratedSample> curated_samples(Store& s, const std::vector<Status>& statuses, const std::string& split);

struct CurationStats {
  std::map<std::string, std::map<std::string, std::int64_t>> by_split_verdict;  // split -> verdict -> samples
  std::map<std::string, std::int64_t> by_status;                               // pending / kept / rejected
  std::vector<std::pair<std::int64_t, std::int64_t>> length_histogram;         // (bucket lower bound, samples)
  std::int64_t length_bucket = 0;
  struct PassRate {
    std::int64_t samples = 0, correct = 0, problems = 0;
  };
  std::map<std::string, PassRate> by_difficulty;  // "1".."5" or "none"
  std::vector<std::pair<std::string, std::int64_t>> funnel;  // curation_funnel()
};
CurationStats curation_stats(Store& s, int histogram_buckets = 16);

// The R1 curation funnel: generated -> correct -> passed the other filters -> deduplicated -> decontaminated ->
// kept. Each stage counts the samples no live action of that stage (or an earlier one) rejected: a filter's
// 'verdict' rule is the correct stage, its other rules the filtered stage; kept counts status kept. Holds across
// reruns, as it reads the log rather than the last run.
std::vector<std::pair<std::string, std::int64_t>> curation_funnel(Store& s);

}  // namespace distill::dataset

namespace distill::dataset {

// One problem with everything answered to it, for `data problem show` and the studio's problem view.
struct EvalAnswer {
  std::int64_t run_id = 0, model_id = 0, sample_idx = 0, n_tokens = 0;
  std::string role, model_path, verdict, completion, run_status;
};
struct ProblemView {
  std::int64_t id = 0;
  std::string source, split, prompt, answer;
  std::optional<std::string> solution;
  std::optional<int> difficulty;
  std::vector<ListRow> samples;      // its samples, by id (the first 200)
  std::int64_t n_samples = 0;        // all of them
  std::vector<EvalAnswer> evals;     // every eval run's answers to it: teachers, students, baselines; newest run first
};
ProblemView problem_view(Store& s, std::int64_t problem_id);  // InputError for an unknown id

// The reasons people gave most recently in reviews, newest first, each once (for the studio's reason picker).
std::vector<std::string> recent_reasons(Store& s, int n = 8);

// What the sample filters can take: splits, the runs that drew samples, the models that wrote them.
struct Facets {
  std::vector<std::string> splits;
  std::vector<std::pair<std::int64_t, std::string>> runs;     // id, "generate (2026-12-07T...)"
  std::vector<std::pair<std::int64_t, std::string>> models;   // id, "teacher /path"
};
Facets sample_facets(Store& s);

}  // namespace distill::dataset
