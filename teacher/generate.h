// teacher/generate.h: the `generate` stage: sample K chain-of-thought completions per problem from a teacher,
// verify each, and store them with lineage. Resumable: samples already stored (same problem, teacher, sample
// index, seed) are skipped, and writes are committed in batches, so a kill loses at most one batch.
#pragma once

#include "teacher/prompt_format.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/samples.h"
#include "dataset/store.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "teacher/sampling.h"

namespace distill::teacher {

struct EngineOptions;

// generate --shard I/N: worker I of N takes the problems whose content hash falls in its share (a fixed
// function of the problem, so N workers over copies of one store split it exactly).
struct Shard {
  std::int64_t index = 0, count = 1;
};
Shard parse_shard(std::string_view text);  // "I/N" with 0 <= I < N; InputError naming --shard otherwise
bool in_shard(const Shard& s, std::string_view content_hash);

// A teacher behind an OpenAI-compatible endpoint (generate --teacher http(s)://...): vLLM, SGLang, llama.cpp's
// server, DeepSeek's API, or `distill serve`.
struct RemoteTeacherConfig {
  std::string model;                         // --teacher-model: the name the server knows it by
  std::string endpoint = "chat";             // chat (the server's chat template) | completions (distill's prompt)
  std::string api_key_env = "OPENAI_API_KEY";  // the variable holding the key; unset or empty: no key sent
  std::string tokenizer_dir;                 // --teacher-tokenizer: maps logprob token texts to ids
  std::int64_t concurrency = 8;              // requests in flight
  double request_timeout_s = 600;            // the longest wait for the next bytes of a response
  std::int64_t retries = 6;                  // further attempts for a retryable failure
  double backoff_base_s = 1.0;               // the first retry's wait (doubling, full jitter, at most 60 s)
  double max_requests_per_minute = 0;        // 0: no limit
  std::int64_t max_total_tokens = 0;         // prompt + completion tokens the server reports; 0: no limit
  std::int64_t max_failures = 20;            // requests that may fail for good before the run stops
  bool stream = true;                        // SSE: a long reasoning trace keeps the connection busy
  bool token_ids = true;                     // ask for vLLM's return_tokens_as_token_ids with logprobs
};

struct GenerateConfig {
  std::string teacher_dir;         // HF directory with config.json, model.safetensors, tokenizer.model, or a URL
  std::string split = "train";     // problems to sample
  std::int64_t samples = 4;        // K completions per problem
  std::int64_t limit = 0;          // first N problems of the split (0: all)
  SamplingParams sampling;         // temperature, top-p, ..., max_tokens, topk_logprobs
  std::int64_t batch = 32;         // sequences decoded together
  std::uint64_t seed = 0;          // base seed; each sample's seed derives from (seed, problem, index)
  std::int64_t commit_every = 64;  // samples per transaction
  std::string device = "cpu";      // "cpu" or "cuda[:N]"
  std::string role = "teacher";    // models.role of the generating model
  std::vector<std::string> stop;   // stop strings: generation ends when one appears (it is not stored)
  std::string prompt_format = "auto";  // auto (the model's chat template if any, else r1) | r1 | chat_template
  RemoteTeacherConfig remote;      // when teacher_dir is a URL
  Shard shard;                     // this worker's share of the problems (--shard I/N)
};

struct GenerateSummary {
  std::int64_t planned = 0, skipped = 0, generated = 0, correct = 0, tokens = 0;
  double seconds = 0;
  std::string prompt_format;       // the one used: r1 or chat_template
  // "SIGINT" / "SIGTERM" when a signal ended the run early: the samples finished by then are stored (the run is
  // recorded as failed), and rerunning the same command draws the rest, as it would after a kill.
  std::string interrupted_by;
  // A remote teacher's run: requests that failed for good (recorded, drawn again by the next run), tokens the
  // server billed, and why it stopped before the end ("" when it did not; "--max-total-tokens", ...).
  std::int64_t failed = 0, billed_tokens = 0, requests = 0, logprobs_dropped = 0;
  std::string stopped_by;
};

// progress(done, total, tokens) is called as samples finish.
using ProgressFn = std::function<void(std::int64_t, std::int64_t, std::int64_t)>;
GenerateSummary run_generate(dataset::Store& store, const GenerateConfig& cfg, const std::string& config_toml,
                             const ProgressFn& progress = {});

// ---- shared by the local and the remote teacher ------------------------------------------------------------

struct PlannedSample {
  std::size_t problem;  // index into GeneratePlan::problems
  std::int64_t idx;     // sample index
  std::uint64_t seed;
};
struct GeneratePlan {
  std::vector<dataset::ProblemRef> problems;
  std::vector<PlannedSample> work;  // the samples still to draw, problem by problem
  GenerateSummary sum;              // planned and skipped filled in
};
// The samples of cfg still missing for the model whose identity is `model_sha256`. Refuses (InputError) a run
// whose keys are stored already with other settings: it would keep them and draw nothing new.
GeneratePlan plan_generate(dataset::Store& store, const GenerateConfig& cfg, const std::string& model_sha256,
                           const std::string& config_toml);
// A sample row for planned sample `w` with its completion, verified against the problem's answer.
dataset::SampleRow planned_row(const GeneratePlan& plan, const PlannedSample& w, const GenerateConfig& cfg,
                               std::int64_t model_id, std::int64_t run_id, std::string completion);

// Buffers finished samples (and remote requests' records) and commits them every `commit_every`, counting into
// the summary and reporting progress.
class SampleSink {
 public:
  SampleSink(dataset::Store& store, std::int64_t commit_every, const ProgressFn& progress, GenerateSummary& sum)
      : store_(store), commit_every_(commit_every), progress_(progress), sum_(sum) {}
  void add(dataset::SampleRow&& row);
  void add(dataset::SampleRow&& row, dataset::RemoteRequestRow&& lineage);  // committed together
  void add_request(dataset::RemoteRequestRow&& r);
  void flush();

 private:
  dataset::Store& store_;
  std::int64_t commit_every_;
  const ProgressFn& progress_;
  GenerateSummary& sum_;
  std::vector<dataset::SampleRow> rows_;
  std::vector<dataset::RemoteRequestRow> requests_;
};

// The stored completion for generated `tokens`: a trailing EOS (the tokenizer's, or one of `more_eos`) dropped,
// decoded, cut before the first of `stop` that occurs, and prefixed with the part of the response the prompt held
// (PromptFormat::response_prefix: "<think>\n" for R1; R1 distills keep the think block).
std::string completion_text(const model::Tokenizer& tok, std::vector<int> tokens,
                            const std::vector<std::string>& stop = {}, std::string_view prefix = "<think>\n",
                            const std::vector<std::int64_t>& more_eos = {});

// Cuts `text` before the earliest of `stops` that occurs and returns that stop string (nullopt: none occurs).
std::optional<std::string> cut_at_stop(std::string& text, const std::vector<std::string>& stops);
// The engine's stop rule for stop strings: true once the decoded tokens hold one of them (empty `stops`: none).
std::function<bool(const std::vector<int>&)> stop_rule(const model::Tokenizer& tok, std::vector<std::string> stops);

// Every id that ends a model's sequence: the tokenizer's EOS, config.json's and generation_config.json's (which
// may list several, as Llama 3's does). Sorted, without duplicates.
std::vector<std::int64_t> model_eos_ids(const model::Tokenizer& tok, const model::ModelConfig& c, const std::string& dir);
// A teacher directory loaded for generation: the model on `device`, its tokenizer (checked against the
// embedding's rows) and every id that ends a sequence.
struct LoadedTeacher {
  model::Transformer model;
  std::unique_ptr<model::Tokenizer> tok;
  std::vector<std::int64_t> eos;
};
LoadedTeacher load_teacher(const std::string& dir, const std::string& device);

// Sets the engine's EOS ids to `ids` (none: -1, only length ends a sequence).
void set_eos(EngineOptions& eo, const std::vector<std::int64_t>& ids);

// InputError unless the longest prompt plus max_tokens fits the model's context (config max_position_embeddings):
// past it the model runs on positions it never trained on (vLLM refuses such requests). Names the flag and the
// largest --max-tokens that fits.
void check_context(const model::ModelConfig& c, const std::string& model_dir, std::int64_t longest_prompt,
                   std::int64_t max_tokens);

// The seed of sample `idx` of the problem with `content_hash` under base seed `base`: stable across runs and
// batches, and the same in any store that holds the problem (shards, merged stores).
std::uint64_t sample_seed(std::uint64_t base, std::string_view content_hash, std::int64_t idx);
// The seed distill drew with before the content hash (from the store's row id): stores drawn then still resume.
std::uint64_t legacy_sample_seed(std::uint64_t base, std::int64_t problem_id, std::int64_t idx);


}  // namespace distill::teacher
