// cli/cmd_runs.cpp: `distill runs list|show|hide|unhide|rm`: every run the store records, what each made (a
// training run's loss curve as text, CSV or SVG), hiding one from comparisons, deleting one nothing builds on.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "common/fs.h"
#include "dataset/runs.h"
#include "eval/compare.h"

namespace distill::cli {

namespace {
struct RunsArgs {
  std::string db, svg;
  std::int64_t id = 0;
  bool json = false, all = false, yes = false, csv = false;
};

// A training run's curve: every step as CSV, or a summary (every tenth of the run, and the validation losses).
void print_steps(const std::vector<dataset::TrainStepRow>& steps, bool csv) {
  if (csv) {
    std::cout << "step,loss,lr,tokens,val_loss,at\n";
    for (const auto& r : steps)
      std::cout << r.step << "," << r.loss << "," << r.lr << "," << r.tokens << ","
                << (r.val_loss ? std::to_string(*r.val_loss) : std::string()) << "," << r.at << "\n";
    return;
  }
  std::cout << "  training: " << steps.size() << " steps\n  " << "    step        loss          lr   val_loss\n";
  const std::size_t every = std::max<std::size_t>(1, steps.size() / 10);
  char line[128];
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& r = steps[i];
    if (i % every != 0 && i + 1 != steps.size() && !r.val_loss) continue;
    std::snprintf(line, sizeof line, "%8lld  %10.4f  %10.3g  %9s", (long long)r.step, r.loss, r.lr,
                  r.val_loss ? std::to_string(*r.val_loss).substr(0, 8).c_str() : "");
    std::cout << "  " << line << "\n";
  }
}

nlohmann::json run_json(const dataset::RunRow& r, bool with_config) {
  nlohmann::json j = {{"id", r.id}, {"kind", r.kind}, {"status", r.status}, {"started_at", r.started_at},
                      {"finished_at", r.finished_at.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.finished_at)},
                      {"host", r.host}, {"version", r.version}, {"hidden", r.hidden}, {"made", r.made}};
  if (with_config) j["config_toml"] = r.config_toml;
  return j;
}

std::string made_text(const dataset::RunRow& r) {
  std::string out;
  for (const auto& [what, n] : r.made) out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  return out.empty() ? "nothing stored" : out;
}

CLI::App* with_id(CLI::App* parent, const char* name, const char* about, RunsArgs& a) {
  CLI::App* c = parent->add_subcommand(name, about);
  c->add_option("--db", a.db, "store file");
  c->add_option("id", a.id, "run id");
  return c;
}
}  // namespace

void register_runs(CLI::App& root, Registry& reg) {
  CLI::App* runs = root.add_subcommand("runs", "every run the store records: list, show, hide from compare, remove");
  runs->require_subcommand(1, 1);

  auto la = std::make_shared<RunsArgs>();
  CLI::App* l = runs->add_subcommand("list", "the runs, newest first, with what each made");
  l->add_option("--db", la->db, "store file");
  l->add_flag("--all", la->all, "hidden runs too");
  l->add_flag("--json", la->json, "print JSON");
  reg.add(l, [l, la] {
    require(*l, "--db");
    auto store = dataset::Store::open(la->db, dataset::OpenMode::read);
    const auto rows = dataset::list_runs(*store, la->all);
    if (la->json) {
      auto arr = nlohmann::json::array();
      for (const auto& r : rows) arr.push_back(run_json(r, false));
      std::cout << arr.dump(2) << "\n";
      return;
    }
    for (const auto& r : rows)
      std::cout << "#" << r.id << "  " << r.kind << "  " << r.status << "  " << r.started_at << (r.hidden ? "  [hidden]" : "")
                << "  " << made_text(r) << "\n";
  });

  auto sa = std::make_shared<RunsArgs>();
  CLI::App* s = with_id(runs, "show", "one run: its resolved config, what it made, and a training run's loss curve", *sa);
  s->add_flag("--json", sa->json, "print JSON");
  s->add_flag("--csv", sa->csv, "a training run: every step as CSV (step, loss, lr, tokens, val_loss, at)");
  s->add_option("--svg", sa->svg, "a training run: also write its loss curve (validation loss as dots) to this SVG file");
  reg.add(s, [s, sa] {
    require(*s, "--db");
    require(*s, "id");
    if (!sa->svg.empty()) check_output_file(sa->svg, "--svg", {sa->db});
    auto store = dataset::Store::open(sa->db, dataset::OpenMode::read);
    const auto r = dataset::run_row(*store, sa->id);
    const auto steps = dataset::train_steps_of(*store, sa->id);
    if ((sa->csv || !sa->svg.empty()) && steps.empty())
      throw InputError("run " + std::to_string(sa->id) + " (" + r.kind + ") recorded no training steps");
    if (!sa->svg.empty()) {
      eval::TrainCurve c{r.kind + " run " + std::to_string(r.id), "#1b9e77", r.id, {}, {}, {}};
      for (const auto& st : steps) {
        c.steps.push_back(st.step);
        c.loss.push_back(st.loss);
        if (st.val_loss) c.val_loss.emplace_back(st.step, *st.val_loss);
      }
      write_file_atomic(sa->svg, eval::training_curves_svg({c}));
    }
    if (sa->csv) return print_steps(steps, true);
    if (sa->json) {
      auto j = run_json(r, true);
      j["train_steps"] = nlohmann::json::array();
      for (const auto& st : steps)
        j["train_steps"].push_back({{"step", st.step}, {"loss", st.loss}, {"lr", st.lr}, {"tokens", st.tokens},
                                    {"val_loss", st.val_loss ? nlohmann::json(*st.val_loss) : nlohmann::json(nullptr)}});
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "run " << r.id << ": " << r.kind << ", " << r.status << (r.hidden ? " (hidden)" : "") << "\n  started "
              << r.started_at << (r.finished_at.empty() ? "" : ", finished " + r.finished_at) << " on " << r.host
              << " (distill " << r.version << ")\n  made: " << made_text(r) << "\n  config:\n";
    std::cout << r.config_toml << (r.config_toml.empty() || r.config_toml.back() == '\n' ? "" : "\n");
    if (!steps.empty()) print_steps(steps, false);
    if (!sa->svg.empty()) std::cout << "  loss curve: " << sa->svg << "\n";
  });

  for (const bool hide : {true, false}) {
    auto ha = std::make_shared<RunsArgs>();
    CLI::App* h = with_id(runs, hide ? "hide" : "unhide",
                          hide ? "leave a run out of compare and of runs list (compare --runs still takes it)"
                               : "bring a hidden run back",
                          *ha);
    reg.add(h, [h, ha, hide] {
      require(*h, "--db");
      require(*h, "id");
      auto store = dataset::Store::open(ha->db, dataset::OpenMode::read);
      dataset::set_run_hidden(*store, ha->id, hide);
      std::cout << "run " << ha->id << (hide ? " is hidden" : " is shown again") << "\n";
    });
  }

  auto ra = std::make_shared<RunsArgs>();
  CLI::App* rm = with_id(runs, "rm", "remove a run nothing builds on (an eval run, with its answers); says what first", *ra);
  rm->add_flag("--yes", ra->yes, "remove it (without: say what would go)");
  reg.add(rm, [rm, ra] {
    require(*rm, "--db");
    require(*rm, "id");
    auto store = dataset::Store::open(ra->db, dataset::OpenMode::read);
    const auto plan = dataset::plan_run_removal(*store, ra->id);  // InputError naming what builds on it
    std::string takes;
    for (const auto& t : plan.takes) takes += (takes.empty() ? "" : ", ") + t;
    if (!ra->yes) {
      std::cout << "run " << ra->id << " (" << plan.run.kind << ") would go with " << (takes.empty() ? "nothing else" : takes)
                << "; rerun with --yes to remove it\n";
      return;
    }
    dataset::remove_run(*store, ra->id);
    std::cout << "removed run " << ra->id << (takes.empty() ? "" : " and its " + takes) << "\n";
  });
}

}  // namespace distill::cli
