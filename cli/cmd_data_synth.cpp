// cli/cmd_data_synth.cpp: `distill data synth`: flags -> dataset::SynthOptions -> store.
#include <chrono>
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "dataset/synth.h"

namespace distill::cli {

namespace {
struct Args {
  std::string db, task = "chain", split = "train", difficulty = "1";
  std::int64_t n = 1000;
  std::uint64_t seed = 0;
};
}  // namespace

void register_data_synth(CLI::App& data, Registry& reg) {
  auto a = std::make_shared<Args>();
  std::string tasks;
  for (const auto& t : dataset::synth_tasks()) tasks += "\n  " + t.name + ": " + t.summary;
  CLI::App* c = data.add_subcommand("synth", "generate synthetic reasoning problems with gold step-by-step solutions");
  c->footer("Tasks:" + tasks + "\n  all: an even mix of the above");
  c->add_option("--db", a->db, "store file (created if missing)");
  c->add_option("--task", a->task, "task family, or 'all'");
  c->add_option("--n", a->n, "number of problems to draw");
  c->add_option("--split", a->split, "train or eval (disjoint by content)");
  c->add_option("--difficulty", a->difficulty, "level 1..5, or a range like 1-3");
  c->add_option("--seed", a->seed, "random seed; same seed, same problems");
  reg.add(c, [c, a] {
    require(*c, "--db");
    dataset::SynthOptions o;
    o.task = a->task;
    o.n = a->n;
    o.split = a->split;
    o.seed = a->seed;
    std::tie(o.difficulty_min, o.difficulty_max) = parse_int_range(a->difficulty, "--difficulty");
    const std::string config = resolved_config_toml(*c);
    print_config(config);
    auto t0 = std::chrono::steady_clock::now();
    auto rows = dataset::synthesize(o);
    auto store = dataset::Store::open(a->db, dataset::OpenMode::create);
    auto res = store_problems(*store, rows, "data synth", config);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "synth: " << rows.size() << " problems drawn, " << res.inserted << " new, " << res.duplicates
              << " already present (" << o.task << ", split " << o.split << ", difficulty " << a->difficulty
              << ", seed " << o.seed << ") in " << fmt_fixed(s, 2) << " s\n";
  });
}

}  // namespace distill::cli
