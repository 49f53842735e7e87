// cli/cmd_compare.cpp: `distill compare --db F [--html report.html] [--json]`: teacher vs student(s) vs baselines
// from their newest eval runs (eval/compare).
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/config_text.h"
#include "common/errors.h"
#include "common/fs.h"
#include "eval/compare.h"

namespace distill::cli {

namespace {
struct Args {
  std::string db, html;
  std::uint64_t seed = 0;
  bool json = false;
  std::string runs, models;  // comma lists of ids
};

std::vector<std::int64_t> ids_of(const std::string& list, const std::string& flag) {
  std::vector<std::int64_t> out;
  for (const auto& item : split_list(list)) out.push_back(whole_number(flag + " (ids separated by commas, e.g. 3,5)", item));
  return out;
}
}  // namespace

void register_compare(CLI::App& root, Registry& reg) {
  auto a = std::make_shared<Args>();
  CLI::App* c = root.add_subcommand("compare", "teacher vs student(s) vs baselines on the same problems: table, JSON, HTML");
  c->add_option("--db", a->db, "store file (with eval runs)");
  c->add_option("--html", a->html, "also write a self-contained HTML report with SVG charts");
  auto* seed = c->add_option("--seed", a->seed, "seed of the bootstrap intervals (default: each run's own, as eval printed them)");
  c->add_option("--runs", a->runs, "compare exactly these eval runs (ids, comma-separated; `distill runs list` shows them)");
  c->add_option("--models", a->models, "only these models (ids), each with its newest eval run");
  c->add_flag("--json", a->json, "print JSON");
  reg.add(c, [c, a, seed] {
    require(*c, "--db");
    if (!a->html.empty()) check_output_file(a->html, "--html", {a->db});
    auto store = dataset::Store::open(a->db, dataset::OpenMode::read);
    dataset::EvalRunSelection sel{ids_of(a->runs, "--runs"), ids_of(a->models, "--models")};
    if (!sel.runs.empty() && !sel.models.empty()) throw InputError("--runs and --models: give one of them");
    auto cmp = eval::compare_models(*store, seed->count() ? std::optional<std::uint64_t>(a->seed) : std::nullopt, sel);
    if (!a->html.empty()) write_file_atomic(a->html, eval::comparison_html(cmp));
    std::cout << (a->json ? eval::comparison_json(cmp) : eval::comparison_table(cmp));
    if (!a->html.empty() && !a->json) std::cout << "report: " << a->html << "\n";
  });
}

}  // namespace distill::cli
