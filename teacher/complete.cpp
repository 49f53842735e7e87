// teacher/complete.cpp: see complete.h.
#include "teacher/complete.h"

#include <torch/torch.h>

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

CompleteResult run_complete(const CompleteConfig& cfg) {
  if (cfg.prompt.empty()) throw InputError("--prompt: expected a non-empty text");
  const auto device = model::parse_device(cfg.device);
  auto tok = model::load_tokenizer(cfg.model_dir);
  auto model = model::load_hf_dir(cfg.model_dir, device);
  check_sampling(cfg.sampling, model->config().vocab_size);
  CompleteResult r;
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
