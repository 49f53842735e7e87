// dataset/browse.h: the read side of a curation session: listing samples by status, verdict, problem, length
// and full text (SQLite FTS5 over completions), and the curation statistics (status counts, length histogram,
// pass rate by difficulty). Read-only queries.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataset/curation.h"

namespace distill::dataset {

struct ListQuery {
  std::vector<Status> statuses;  // any of these (empty = any)
  std::string verdict;  // "" = any
  std::string split;    // "" = any
  std::optional<std::int64_t> problem_id, min_tokens, max_tokens, run_id, model_id;  // model_id: the teacher
  std::string search;   // FTS5 query over completions ("" = none), e.g. 'carry AND "mod 10"'
  enum class Sort { id, tokens } sort = Sort::id;  // tokens: an unknown length sorts as -1 (first ascending), ties by id
  bool descending = false;
  // Page by key: the (sort key, id) of the last row shown; the page starts after it. For Sort::id the key is
  // the id. With a million samples this stays as fast on the last page as on the first, unlike an offset.
  std::optional<std::pair<std::int64_t, std::int64_t>> after;
  std::int64_t limit = 50, offset = 0;
};

struct ListRow {
  std::int64_t id, problem_id;
  std::optional<std::int64_t> n_tokens;  // nullopt: unknown
  std::int64_t sample_idx;
  std::string split, status, verdict, snippet;  // snippet: the search hit in context, or the answer line
  std::int64_t model_id = 0, run_id = 0;
  std::optional<std::int64_t> status_action;  // what the status comes from: a later write names it (stale views)
  std::string reason;                         // the reason the status action gave for this sample ("" for none)
};

// The filters from named text values, as `data list`, `data review --query` and the studio take them: status (a
// comma list), verdict, split, problem, run, model, min_tokens, max_tokens, search, sort (id, -id, tokens,
// -tokens), after (KEY:ID), limit. `get(name)` gives a value or nullopt; errors name `prefix` + the name with
// '_' as `prefix` wants it ("--min-tokens" for the CLI, "min_tokens" for the studio). InputError for a bad value.
ListQuery parse_list_query(const std::function<std::optional<std::string>(const std::string& name)>& get,
                           const std::string& prefix);
// A split no problem has is a typo, not an empty list: InputError naming the splits there are.
void check_split(Store& s, const std::string& split, const std::string& flag);

// Matching samples in the query's order, one page. InputError for an FTS5 query SQLite cannot parse (with its
// message). Each filter in use is a bound parameter; none is SQL text.
std::vector<ListRow> list_samples(Store& s, const ListQuery& q);
std::int64_t count_samples(Store& s, const ListQuery& q);  // ignores the page (sort, after, limit, offset)

// What the query matches, as "COUNT:IDSUM:ACTIONSUM": the count a person is shown, and enough more that a
// change to which samples match, or to the decision behind any of them, changes it too.
std::string match_stamp(Store& s, const ListQuery& q);

// A person's keep or reject of every sample the query matches (ignoring its page), as one logged action that one
// undo reverses: `stamp` is match_stamp's answer when they were shown the count; if the matches changed since
// (someone decided on one, or a sample came or went), StaleView and nothing is written. The check and the action
// are one transaction. Samples a review already decided so are left out, as review_samples does.
ReviewOutcome review_query(Store& s, const ListQuery& q, bool keep, const std::string& reason, const std::string& actor,
                           const std::string& stamp, const std::string& params_json);

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
