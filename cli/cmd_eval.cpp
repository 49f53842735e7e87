// cli/cmd_eval.cpp: `distill eval --db F --model DIR --split eval --samples K`: the R1 evaluation protocol on
// any model (flags -> eval::EvalConfig); a table by difficulty with bootstrap intervals, or --json.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/interrupt.h"
#include "common/progress.h"
#include "eval/run_eval.h"

namespace distill::cli {

namespace {
struct Args {
  eval::EvalConfig cfg;
  std::string db;
  bool json = false;
};

nlohmann::json interval_json(const eval::Interval& i) { return {{"value", i.value}, {"lo", i.lo}, {"hi", i.hi}}; }

std::string pct(const eval::Interval& i) {
  return fmt_fixed(100 * i.value, 1) + " [" + fmt_fixed(100 * i.lo, 1) + ", " + fmt_fixed(100 * i.hi, 1) + "]";
}
}  // namespace

void register_eval(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<Args>();
  auto& c = a->cfg;
  CLI::App* e = root.add_subcommand("eval", torch_command_about("eval"));
  e->add_option("--db", a->db, "store file");
  e->add_option("--model", c.model_dir, "HF model directory with tokenizer.model");
  e->add_option("--split", c.split, "problems to answer");
  e->add_option("--samples", c.samples, "samples per problem (K)");
  e->add_option("--k", c.k, "k of pass@k and maj@k (default: K)");
  e->add_option("--limit", c.limit, "first N problems (0: all)");
  e->add_option("--temperature", c.temperature, "sampling temperature (R1 protocol: 0.6)");
  e->add_option("--top-p", c.top_p, "nucleus mass (R1 protocol: 0.95)");
  e->add_flag("--greedy", c.greedy, "greedy decoding instead of sampling");
  e->add_option("--max-tokens", c.max_tokens, "completion length cap");
  e->add_option("--batch", c.batch, "sequences decoded together");
  e->add_option("--seed", c.seed, "base seed (same seed: same draws for every model)");
  e->add_option("--role", c.role,
                "teacher | student | baseline, for the comparison (default: the model's role in the store, else student)");
  e->add_option("--device", c.device, "cpu or cuda");
  e->add_option("--prompt-format", c.prompt_format,
                "auto (the model's chat template if it has one, else r1), r1 or chat_template");
  e->add_flag("--resume", c.resume, "continue the newest unfinished eval of this model (killed or failed; same protocol)");
  e->add_flag("--json", a->json, "print JSON");
  reg.add(e, [e, a] {
    require(*e, "--db");
    require(*e, "--model");
    const std::string config = resolved_config_toml(*e);
    print_config(config);
    auto store = dataset::Store::open(a->db, dataset::OpenMode::read);
    std::unique_ptr<Progress> bar;
    std::int64_t shown = 0;
    auto rep = eval::run_eval(*store, a->cfg, config, [&](std::int64_t done, std::int64_t total) {
      if (!bar) bar = std::make_unique<Progress>("eval", std::uint64_t(total), "samples");
      bar->add(std::uint64_t(done - shown));
      shown = done;
    });
    if (bar) bar->finish();
    if (!rep.interrupted_by.empty())  // no metrics from part of the samples: the stored ones wait for --resume
      throw Interrupted("eval: stopped by " + rep.interrupted_by + " with " + std::to_string(rep.completed) + " of " +
                        std::to_string(rep.planned) + " completions stored (run " + std::to_string(rep.run_id) + "); " +
                        (rep.completed > 0 ? "continue it with the same command and --resume"
                                           : "nothing to continue: run the same command again"));
    if (a->json) {
      nlohmann::json by = nlohmann::json::object();
      for (const auto& [d, s] : rep.by_difficulty)
        by[d] = {{"problems", s.problems}, {"samples", s.samples}, {"k", s.k}, {"pass@1", interval_json(s.pass1)},
                 {"pass@k", interval_json(s.pass_k)}, {"maj@k", interval_json(s.maj_k)}, {"mean_tokens", s.mean_tokens},
                 {"sequence_tokens_per_s", s.tokens_per_s}, {"latency_s", s.latency_s}};
      std::cout << nlohmann::json{{"run_id", rep.run_id}, {"model_id", rep.model_id}, {"model", a->cfg.model_dir},
                                  {"n_params", rep.n_params}, {"n_active_params", rep.n_active_params},
                                  {"seconds", rep.seconds}, {"tokens_per_s", rep.tokens_per_s}, {"resumed", rep.resumed},
                                  {"prompt_format", rep.prompt_format}, {"by_difficulty", by}}
                       .dump(2)
                << "\n";
      return;
    }
    const auto& all = rep.by_difficulty.at("all");
    std::cout << "eval: " << a->cfg.model_dir << " (" << rep.n_params << " params), split " << a->cfg.split << ", "
              << all.problems << " problems x " << (all.problems ? all.samples / all.problems : 0) << " samples, "
              << fmt_fixed(rep.seconds, 1) << " s, " << fmt_fixed(rep.tokens_per_s, 0) << " tok/s in all (run " << rep.run_id
              << ", prompt format " << rep.prompt_format << ")\n";
    if (rep.resumed) std::cout << "  resumed: " << rep.resumed << " completions were stored by the interrupted run\n";
    char line[200];
    std::snprintf(line, sizeof line, "  %-6s %8s  %-22s %-22s %-22s %8s %9s %9s\n", "diff", "problems", "pass@1 % [95% CI]",
                  ("pass@" + std::to_string(all.k) + " %").c_str(), ("maj@" + std::to_string(all.k) + " %").c_str(),
                  "tokens", "seq tok/s", "latency");
    std::cout << line;
    for (const auto& [d, s] : rep.by_difficulty) {
      std::snprintf(line, sizeof line, "  %-6s %8lld  %-22s %-22s %-22s %8.1f %9.0f %8.3fs\n", d.c_str(), (long long)s.problems,
                    pct(s.pass1).c_str(), pct(s.pass_k).c_str(), pct(s.maj_k).c_str(), s.mean_tokens, s.tokens_per_s,
                    s.latency_s);
      std::cout << line;
    }
    std::cout << "  (tokens: per answer, EOS included; seq tok/s and latency: per answer, admission to last token)\n";
  });
}

}  // namespace distill::cli
