// teacher/complete.h: `distill complete`: one prompt through a model, the quick way to try it (as llama-cli and
// ollama run are). Without chat the prompt is tokenized as transformers' tokenizer(text) does (the model's own
// BOS rule); with chat it is one user turn rendered by the model's chat template. Ends at any of the model's EOS
// ids (config.json, generation_config.json, the tokenizer's).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "teacher/sampling.h"

namespace distill::model {
struct GenerationDefaults;
}

namespace distill::teacher {

struct CompleteConfig {
  std::string model_dir;
  std::string prompt;
  bool chat = false;           // render one user turn with the model's chat template
  std::string prompt_format;   // with chat: "" (the model's template) or "r1" (ours, for a model without one)
  SamplingParams sampling;     // temperature 0: greedy
  // The sampling flags the user set (temperature, top-p, top-k, min-p, max-tokens, greedy); the rest come from the
  // model's generation_config.json, as transformers' generate() takes them, when it names any sampling setting.
  std::vector<std::string> sampling_given;
  std::uint64_t seed = 0;
  std::string device = "cpu";
};

struct CompleteResult {
  std::string prompt_text;                 // what was tokenized (the rendered template with chat)
  std::vector<int> prompt_ids, ids;        // ids: the generated tokens, an ending EOS included
  std::string text;                        // the generated tokens decoded (the EOS left out)
  std::string finish_reason;               // eos | length
  std::vector<float> token_logprobs;
  std::vector<std::vector<std::pair<int, float>>> topk;  // per step, when sampling.topk_logprobs > 0
  SamplingParams sampling;                 // what was used
  std::string sampling_source;             // "flags and distill's defaults" or "generation_config.json (...)"
  double seconds = 0;
};

CompleteResult run_complete(const CompleteConfig& cfg);

// `flags` with every setting the user did not give (`given` holds flag names) taken from the model's
// generation_config.json as transformers reads it: do_sample false or absent is greedy, otherwise temperature,
// top_p, top_k and min_p with transformers' defaults (1, 1, 50, off) for those it lacks; max_new_tokens too. A file
// without any sampling key leaves `flags` as they are. `source` says which it was.
SamplingParams with_generation_defaults(SamplingParams flags, const std::vector<std::string>& given,
                                        const model::GenerationDefaults& g, std::string* source);

}  // namespace distill::teacher
