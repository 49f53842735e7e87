// dataset/samples.h: the rows `generate` writes (models, samples, teacher top-k logprobs) and the reads it
// needs to resume. Resume key: (problem, model, sample index, seed) is UNIQUE, so re-inserting is a no-op.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "dataset/answer.h"
#include "dataset/store.h"
#include "dataset/topk.h"

namespace distill::dataset {

struct ModelRow {
  std::string role;  // teacher | student | baseline
  std::string path;
  std::string arch;
  std::int64_t n_params = 0, n_active_params = 0;
  std::string sha256;  // of the weights file: the model's identity
};

struct ProblemRef {
  std::int64_t id;
  std::string prompt, answer;
  std::optional<int> difficulty;
  std::string content_hash;  // the problem's identity in any store (sha256 hex of the normalised prompt)
};

struct SampleRow {
  std::int64_t problem_id = 0, model_id = 0, run_id = 0, sample_idx = 0;
  std::int64_t seed = 0;
  double temperature = 0, top_p = 1;
  std::int64_t max_tokens = 0;
  std::string completion;
  std::optional<std::string> extracted_answer;
  std::string verdict;        // correct | incorrect | unparsable | unverified
  std::optional<std::string> extract_rule;  // the rule that extracted the answer (answer.h's ExtractRule names)
  std::optional<std::string> verifier;      // the verifier version that gave the verdict
  std::optional<std::int64_t> n_tokens = 0;  // nullopt: unknown (imported without a tokenizer)
  std::string finish_reason;  // eos | stop | length
  std::int64_t topk = 0;      // logprobs per position in `logprobs` (0: none)
  std::string logprobs;       // encode_topk's blob (dataset/topk.h): topk per generated token
};

// Sets the verdict, extracted answer, extraction rule and verifier version from a verification.
void set_verification(SampleRow& r, const Verification& v);

// Returns the id of the model with this sha256, inserting the row if new.
std::int64_t upsert_model(Store& s, const ModelRow& m);

// The id of the model with this sha256, if it is in the store (read only: checks that must pass before any write).
std::optional<std::int64_t> model_id_of(Store& s, const std::string& sha256);

// The role the model with this sha256 was stored with, if it is in the store.
std::optional<std::string> model_role(Store& s, const std::string& sha256);

// Problems of `split` in id order (all when limit <= 0).
std::vector<ProblemRef> problems_of_split(Store& s, const std::string& split, std::int64_t limit);

struct GoldExample {
  std::string prompt, solution, answer;
  std::optional<int> difficulty;
};
// Problems of `split` that have a gold solution, in id order.
std::vector<GoldExample> gold_examples(Store& s, const std::string& split);

// How a stored sample was drawn, for a resumed `generate` to tell its own samples from another run's.
struct StoredSampleSettings {
  double temperature = 0, top_p = 0;
  std::int64_t max_tokens = 0;
  bool has_logprobs = false;  // top-k logprobs stored beside it
  std::int64_t run_id = 0;    // the run that drew it (its config holds the rest: top-k, min-p, stop strings, K)
};

// The resolved config a run stored ("" for an unknown id).
std::string run_config_toml(Store& s, std::int64_t run_id);

// (problem_id, sample_idx, seed) already stored for this model, with the settings each was drawn with.
using StoredSampleKeys = std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, StoredSampleSettings>;
StoredSampleKeys stored_sample_keys(Store& s, std::int64_t model_id);

struct TrainStepRow {
  std::int64_t step;
  double loss, lr;
  std::int64_t tokens;
  std::optional<double> val_loss = std::nullopt;  // validation loss, when measured at this step
};
void insert_train_steps(Store& s, std::int64_t run_id, const std::vector<TrainStepRow>& rows);

// The teacher top-k stored with a sample, decoded (dataset/topk.h), or nullopt when it was generated without
// --topk-logprobs. A damaged blob is an InputError naming the store and the sample.
std::optional<TopK> sample_logprobs(Store& s, std::int64_t sample_id);

// One request a remote teacher was sent for a sample (the remote_requests table): its lineage, or its failure.
struct RemoteRequestRow {
  std::int64_t run_id = 0, model_id = 0, problem_id = 0, sample_idx = 0, seed = 0;
  bool ok = false;
  std::int64_t attempts = 0;
  std::optional<std::int64_t> http_status;
  std::optional<std::string> error, server_model, system_fingerprint, response_id;
  std::optional<std::int64_t> prompt_tokens, completion_tokens;
  std::optional<double> latency_ms;
  std::string params_json;
};

// One transaction; rows whose key exists are skipped. Returns the number inserted. `requests` are written in the
// same transaction, so a sample and its lineage land together.
std::int64_t insert_samples(Store& s, const std::vector<SampleRow>& rows, const std::vector<RemoteRequestRow>& requests = {});

// The remote requests recorded for samples of `model_id` that failed and have no sample since, one per key.
std::int64_t count_unresolved_failures(Store& s, std::int64_t model_id);

}  // namespace distill::dataset
