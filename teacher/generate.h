// teacher/generate.h: the `generate` stage: sample K chain-of-thought completions per problem from a teacher,
// verify each, and store them with lineage. Resumable: samples already stored (same problem, teacher, sample
// index, seed) are skipped, and writes are committed in batches, so a kill loses at most one batch.
#pragma once

#include "teacher/prompt_format.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/store.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "teacher/sampling.h"

namespace distill::teacher {

struct EngineOptions;

struct GenerateConfig {
  std::string teacher_dir;         // HF directory with config.json, model.safetensors, tokenizer.model
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
};

struct GenerateSummary {
  std::int64_t planned = 0, skipped = 0, generated = 0, correct = 0, tokens = 0;
  double seconds = 0;
  std::string prompt_format;       // the one used: r1 or chat_template
  // "SIGINT" / "SIGTERM" when a signal ended the run early: the samples finished by then are stored (the run is
  // recorded as failed), and rerunning the same command draws the rest, as it would after a kill.
  std::string interrupted_by;
};

// progress(done, total, tokens) is called as samples finish.
GenerateSummary run_generate(dataset::Store& store, const GenerateConfig& cfg, const std::string& config_toml,
                             const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& progress = {});

// The stored completion for generated `tokens`: a trailing EOS (the tokenizer's, or one of `more_eos`) dropped,
// decoded, cut before the first of `stop` that occurs, and prefixed with the part of the response the prompt held
// (PromptFormat::response_prefix: "<think>\n" for R1; R1 distills keep the think block).
std::string completion_text(const model::Tokenizer& tok, std::vector<int> tokens,
                            const std::vector<std::string>& stop = {}, std::string_view prefix = "<think>\n",
                            const std::vector<std::int64_t>& more_eos = {});

// Every id that ends a model's sequence: the tokenizer's EOS, config.json's and generation_config.json's (which
// may list several, as Llama 3's does). Sorted, without duplicates.
std::vector<std::int64_t> model_eos_ids(const model::Tokenizer& tok, const model::ModelConfig& c, const std::string& dir);
// Sets the engine's EOS ids to `ids` (none: -1, only length ends a sequence).
void set_eos(EngineOptions& eo, const std::vector<std::int64_t>& ids);

// InputError unless the longest prompt plus max_tokens fits the model's context (config max_position_embeddings):
// past it the model runs on positions it never trained on (vLLM refuses such requests). Names the flag and the
// largest --max-tokens that fits.
void check_context(const model::ModelConfig& c, const std::string& model_dir, std::int64_t longest_prompt,
                   std::int64_t max_tokens);

// The seed of sample `idx` of problem `problem_id` under base seed `base` (stable across runs and batches).
std::uint64_t sample_seed(std::uint64_t base, std::int64_t problem_id, std::int64_t idx);

}  // namespace distill::teacher
