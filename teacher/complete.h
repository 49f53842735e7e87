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

namespace distill::teacher {

struct CompleteConfig {
  std::string model_dir;
  std::string prompt;
  bool chat = false;           // render one user turn with the model's chat template
  std::string prompt_format;   // with chat: "" (the model's template) or "r1" (ours, for a model without one)
  SamplingParams sampling;     // temperature 0: greedy
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
  double seconds = 0;
};

CompleteResult run_complete(const CompleteConfig& cfg);

}  // namespace distill::teacher
