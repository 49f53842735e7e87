// cli/cmd_demo.cpp: `distill demo [--workdir DIR]`: the embedded end-to-end pipeline, run as the exact
// commands a user would type (each is printed first). Today: synthesise -> train a tokenizer -> generate with
// the shipped teacher -> curate (R1 filters, dedup, decontaminate against eval, accept the rest) -> export ->
// stats, then the curation funnel. Later issues append train, eval and compare.
#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "dataset/browse.h"
#include "distill_version.h"

namespace distill::cli {

namespace {
struct Args {
  std::string workdir = "distill-demo";
  std::string teacher = std::string(DISTILL_SOURCE_TREE) + "/models/demo-teacher";
  std::int64_t train_n = 2000, eval_n = 400, gen_limit = 200, samples = 4, max_tokens = 96;
  std::uint64_t seed = 1;
  int vocab_size = 512;
};
}  // namespace

void register_demo(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<Args>();
  CLI::App* c = root.add_subcommand("demo", "run the embedded end-to-end pipeline in a work directory");
  c->add_option("--workdir", a->workdir, "directory for the store, tokenizer and reports");
  c->add_option("--train-n", a->train_n, "training problems to synthesise");
  c->add_option("--eval-n", a->eval_n, "held-out problems to synthesise");
  c->add_option("--seed", a->seed, "base seed");
  c->add_option("--vocab-size", a->vocab_size, "tokenizer vocabulary size");
  c->add_option("--teacher", a->teacher, "teacher model directory (default: the shipped demo teacher)");
  c->add_option("--gen-limit", a->gen_limit, "training problems the teacher samples");
  c->add_option("--samples", a->samples, "completions per problem");
  c->add_option("--max-tokens", a->max_tokens, "completion length cap");
  reg.add(c, [a] {
    std::filesystem::create_directories(a->workdir);
    const std::string db = a->workdir + "/store.db", tok = a->workdir + "/tokenizer";
    const std::vector<std::vector<std::string>> steps = {
        {"data", "synth", "--db", db, "--task", "chain", "--split", "train", "--difficulty", "1-3", "--n",
         std::to_string(a->train_n), "--seed", std::to_string(a->seed)},
        {"data", "synth", "--db", db, "--task", "chain", "--split", "eval", "--difficulty", "1-4", "--n",
         std::to_string(a->eval_n), "--seed", std::to_string(a->seed + 1)},
        {"data", "synth", "--db", db, "--task", "all", "--split", "train", "--difficulty", "1-5", "--n", "500",
         "--seed", std::to_string(a->seed + 2)},
        {"tokenizer", "train", "--db", db, "--out", tok, "--vocab-size", std::to_string(a->vocab_size)},
        {"tokenizer", "encode", "--dir", tok, "3+5=8\n8-2=6\n</think>\n\\boxed{6}"},
        {"generate", "--db", db, "--teacher", a->teacher, "--split", "train", "--samples", std::to_string(a->samples),
         "--limit", std::to_string(a->gen_limit), "--max-tokens", std::to_string(a->max_tokens), "--seed",
         std::to_string(a->seed)},
        {"data", "filter", "--db", db, "--r1", "--apply"},
        {"data", "dedup", "--db", db, "--apply"},
        {"data", "decontaminate", "--db", db, "--against", "eval", "--apply"},
        {"data", "review", "--db", db, "--all-pending", "--accept", "--reason", "survived the demo's curation"},
        {"data", "export", "--db", db, "--format", "jsonl", "--out", a->workdir + "/curated.jsonl"},
        {"data", "stats", "--db", db, "--svg", a->workdir + "/lengths.svg"},
    };
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& step : steps) {
      std::cout << "\n$ distill";
      for (const auto& s : step) std::cout << " " << (s.find_first_of(" \n") == std::string::npos ? s : "'...'");
      std::cout << std::endl;
      std::vector<std::string> argv = {"distill"};
      argv.insert(argv.end(), step.begin(), step.end());
      if (int rc = run_cli(argv); rc != 0)
        throw RuntimeFailure("demo step `" + step[0] + " " + step[1] + "` failed with exit code " + std::to_string(rc));
    }
    {  // the curation funnel, from the log
      auto store = dataset::Store::open(db, dataset::OpenMode::read);
      std::cout << "\ncuration funnel:";
      const char* sep = " ";
      for (const auto& [stage, n] : dataset::curation_funnel(*store)) std::cout << sep << stage << " " << n, sep = " -> ";
      std::cout << "\n";
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "\ndemo: done in " << fmt_fixed(s, 1) << " s; everything is in " << a->workdir << "/\n";
  });
}

}  // namespace distill::cli
