// teacher/complete.cpp: see complete.h.
#include "teacher/complete.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <deque>

#include "common/errors.h"
#include "model/device.h"
#include "model/hf_checkpoint.h"
#include "model/tokenizer.h"
#include "teacher/engine.h"
#include "teacher/generate.h"
#include "teacher/prompt_format.h"

namespace distill::teacher {

SamplingParams with_generation_defaults(SamplingParams flags, const std::vector<std::string>& given,
                                        const model::GenerationDefaults& g, std::string* source) {
  auto set = [&](const char* flag) { return std::find(given.begin(), given.end(), flag) != given.end(); };
  const bool names_sampling = g.do_sample || g.temperature || g.top_p || g.top_k || g.min_p;
  if (!names_sampling && !g.max_new_tokens) {
    if (source) *source = "flags and distill's defaults";
    return flags;
  }
  std::string took;
  auto note = [&](const std::string& what) { took += (took.empty() ? "" : ", ") + what; };
  if (names_sampling && !set("greedy") && !set("temperature")) {
    flags.temperature = g.do_sample.value_or(false) ? g.temperature.value_or(1.0) : 0.0;
    note(flags.temperature == 0 ? "greedy" : "temperature " + number_text(flags.temperature));
  }
  if (names_sampling && !set("top-p")) flags.top_p = g.top_p.value_or(1.0), note("top-p " + number_text(flags.top_p));
  if (names_sampling && !set("top-k")) flags.top_k = g.top_k.value_or(50), note("top-k " + std::to_string(flags.top_k));
  if (names_sampling && !set("min-p") && g.min_p) flags.min_p = *g.min_p, note("min-p " + number_text(flags.min_p));
  if (g.max_new_tokens && !set("max-tokens"))
    flags.max_tokens = *g.max_new_tokens, note("max-tokens " + std::to_string(flags.max_tokens));
  if (source) *source = took.empty() ? "flags and distill's defaults" : "generation_config.json (" + took + ")";
  return flags;
}

CompleteResult run_complete(const CompleteConfig& cfg_in) {
  if (cfg_in.prompt.empty()) throw InputError("--prompt: expected a non-empty text");
  CompleteConfig cfg = cfg_in;
  CompleteResult r;
  cfg.sampling = with_generation_defaults(cfg.sampling, cfg.sampling_given, model::read_generation_config(cfg.model_dir),
                                          &r.sampling_source);
  r.sampling = cfg.sampling;
  const auto device = model::parse_device(cfg.device);
  auto tok = model::load_tokenizer(cfg.model_dir);
  auto model = model::load_hf_dir(cfg.model_dir, device);
  model->config().check_tokenizer_ids(tok->vocab_size(), model::tokenizer_file(cfg.model_dir));
  check_sampling(cfg.sampling, model->config().vocab_size);
  if (cfg.chat) {
    auto p = chat_prompt(cfg.model_dir, *tok, cfg.prompt, cfg.prompt_format);
    r.prompt_text = std::move(p.text);
    r.prompt_ids = std::move(p.ids);
  } else {
    r.prompt_text = cfg.prompt;
    r.prompt_ids = tok->encode_with_specials(cfg.prompt);
  }
  if (r.prompt_ids.empty()) throw InputError("--prompt: the prompt encodes to no tokens");
  const auto limit = model->config().max_position_embeddings;
  if (std::int64_t(r.prompt_ids.size()) + cfg.sampling.max_tokens > limit)
    throw InputError("--max-tokens " + std::to_string(cfg.sampling.max_tokens) + ": the prompt (" +
                     std::to_string(r.prompt_ids.size()) + " tokens) plus the completion would pass " + cfg.model_dir +
                     "'s context of " + std::to_string(limit) + " positions (max_position_embeddings)");
  torch::NoGradGuard g;
  model->eval();
  model->prepare_inference();
  EngineOptions eo;
  eo.max_batch = 1;
  eo.max_seq_len = std::int64_t(r.prompt_ids.size()) + cfg.sampling.max_tokens;
  set_eos(eo, model_eos_ids(*tok, model->config(), cfg.model_dir));
  Engine engine(model, eo);
  std::deque<GenRequest> q(1);
  q.front().prompt = r.prompt_ids;
  q.front().seed = cfg.seed;
  const auto t0 = std::chrono::steady_clock::now();
  engine.run(q, cfg.sampling, [&](GenResult&& res) {
    r.ids = res.tokens;
    r.finish_reason = res.finish_reason;
    r.token_logprobs = std::move(res.token_logprobs);
    r.topk = std::move(res.topk);
  });
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto shown = r.ids;
  if (r.finish_reason == "eos" && !shown.empty()) shown.pop_back();
  r.text = tok->decode(shown);
  return r;
}

}  // namespace distill::teacher
