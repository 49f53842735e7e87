// cli/cmd_complete.cpp: `distill complete`: flags -> teacher::CompleteConfig -> run_complete; the text, or --json
// with the prompt ids, the generated ids and each step's logprobs for comparing with other tools.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "teacher/complete.h"

namespace distill::cli {

namespace {

nlohmann::json result_json(const teacher::CompleteResult& r) {
  nlohmann::json steps = nlohmann::json::array();
  for (std::size_t i = 0; i < r.ids.size(); ++i) {
    nlohmann::json s = {{"id", r.ids[i]}, {"logprob", r.token_logprobs[i]}};
    if (i < r.topk.size()) {
      s["top"] = nlohmann::json::array();
      for (const auto& [id, lp] : r.topk[i]) s["top"].push_back({{"id", id}, {"logprob", lp}});
    }
    steps.push_back(std::move(s));
  }
  return {{"prompt", r.prompt_text}, {"prompt_ids", r.prompt_ids}, {"ids", r.ids},      {"text", r.text},
          {"finish_reason", r.finish_reason}, {"steps", steps},    {"seconds", r.seconds},
          {"sampling", {{"temperature", r.sampling.temperature}, {"top_p", r.sampling.top_p}, {"top_k", r.sampling.top_k},
                        {"min_p", r.sampling.min_p}, {"max_tokens", r.sampling.max_tokens}, {"source", r.sampling_source}}}};
}

}  // namespace

void register_complete(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<teacher::CompleteConfig>();
  auto json = std::make_shared<bool>(false);
  auto greedy = std::make_shared<bool>(false);
  a->sampling.temperature = 0.6;
  a->sampling.top_p = 0.95;
  a->sampling.max_tokens = 128;
  CLI::App* c = root.add_subcommand("complete", torch_command_about("complete"));
  c->add_option("--model", a->model_dir, "model directory (config.json, safetensors, tokenizer.json or tokenizer.model)");
  c->add_option("--prompt", a->prompt, "the text to continue (with --chat: the user's message)");
  c->add_flag("--chat", a->chat, "render the prompt as one user turn with the model's chat template");
  c->add_option("--prompt-format", a->prompt_format, "with --chat: r1 uses distill's R1 format instead of the template");
  c->add_flag("--greedy", *greedy, "always take the most likely token (same as --temperature 0); sampling flags not "
              "given come from the model's generation_config.json as transformers takes them");
  add_sampling_filters(*c, a->sampling);
  c->add_option("--max-tokens", a->sampling.max_tokens, "new tokens at most");
  c->add_option("--topk-logprobs", a->sampling.topk_logprobs, "with --json: the k most likely tokens of every step");
  c->add_option("--seed", a->seed, "sampling seed");
  c->add_option("--device", a->device, "cpu or cuda");
  c->add_flag("--json", *json, "print JSON: prompt ids, generated ids, text, per-step logprobs");
  reg.add(c, [c, a, json, greedy] {
    require(*c, "--model");
    require(*c, "--prompt");
    if (*greedy) a->sampling.temperature = 0;
    for (const char* flag : {"greedy", "temperature", "top-p", "top-k", "min-p", "max-tokens"})
      if (c->count(std::string("--") + flag)) a->sampling_given.push_back(flag);
    const auto r = teacher::run_complete(*a);
    if (*json) {
      std::cout << result_json(r).dump(2) << "\n";
      return;
    }
    std::cout << r.text << "\n";
    std::cerr << "complete: " << r.ids.size() << " tokens (" << r.finish_reason << "), "
              << fmt_fixed(double(r.ids.size()) / std::max(r.seconds, 1e-9), 1) << " tok/s, sampling from "
              << r.sampling_source << "\n";
  });
}

}  // namespace distill::cli
