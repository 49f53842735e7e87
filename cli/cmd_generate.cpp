// cli/cmd_generate.cpp: `distill generate`: flags -> teacher::GenerateConfig -> run_generate, with a progress bar.
#include <chrono>
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/interrupt.h"
#include "common/progress.h"
#include "teacher/generate.h"

namespace distill::cli {

void register_generate(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<teacher::GenerateConfig>();
  auto db = std::make_shared<std::string>();
  a->sampling.temperature = 0.6;
  a->sampling.top_p = 0.95;
  CLI::App* c = root.add_subcommand("generate", "sample chain-of-thought completions from a teacher into the store");
  c->add_option("--db", *db, "store file");
  c->add_option("--teacher", a->teacher_dir, "teacher model directory (config.json, model.safetensors, tokenizer.model)");
  c->add_option("--split", a->split, "problems to sample");
  c->add_option("--samples", a->samples, "completions per problem (K)");
  c->add_option("--limit", a->limit, "only the first N problems of the split (0: all)");
  add_sampling_filters(*c, a->sampling);
  c->add_option("--max-tokens", a->sampling.max_tokens, "completion length cap");
  c->add_option("--topk-logprobs", a->sampling.topk_logprobs, "store the teacher's top-k logprobs per token (for KD)");
  c->add_option("--batch", a->batch, "sequences decoded together");
  c->add_option("--seed", a->seed, "base seed (each sample's seed derives from it, the problem and the index)");
  c->add_option("--commit-every", a->commit_every, "samples per transaction");
  c->add_option("--device", a->device, "cpu or cuda");
  c->add_option("--prompt-format", a->prompt_format,
                "auto (the teacher's chat template if it has one, else r1), r1 or chat_template");
  c->add_option("--stop", a->stop, "stop string (repeatable); generation ends when it appears");
  reg.add(c, [c, a, db] {
    require(*c, "--db");
    require(*c, "--teacher");
    const std::string config = resolved_config_toml(*c);
    print_config(config);
    auto store = dataset::Store::open(*db, dataset::OpenMode::read);
    std::unique_ptr<Progress> bar;
    std::int64_t last = 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto s = teacher::run_generate(*store, *a, config, [&](std::int64_t done, std::int64_t total, std::int64_t tokens) {
      if (!bar) bar = std::make_unique<Progress>("generate", std::uint64_t(total), "samples");
      bar->add(std::uint64_t(done - last));
      last = done;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bar->set_suffix(fmt_fixed(el > 0 ? double(tokens) / el : 0, 0) + " tok/s");
    });
    if (bar) bar->finish();
    std::cout << "generate: " << s.generated << " new samples (" << s.skipped << " of " << s.planned
              << " already stored)";
    if (s.generated) {
      std::cout << ", accept rate " << fmt_fixed(100.0 * double(s.correct) / double(s.generated), 1) << "%, mean "
                << fmt_fixed(double(s.tokens) / double(s.generated), 1) << " tokens, "
                << fmt_fixed(double(s.tokens) / std::max(s.seconds, 1e-9), 0) << " tok/s, "
                << fmt_fixed(s.seconds, 1) << " s";
    }
    if (!s.prompt_format.empty()) std::cout << " (prompt format " << s.prompt_format << ")";
    std::cout << "\n";
    if (!s.interrupted_by.empty())
      throw Interrupted("generate: stopped by " + s.interrupted_by + " after " + std::to_string(s.generated) + " of " +
                        std::to_string(s.planned - s.skipped) + " new samples" +
                        (s.generated > 0 ? ", which are stored" : "") + "; run the same command again to draw the rest");
  });
}

}  // namespace distill::cli
