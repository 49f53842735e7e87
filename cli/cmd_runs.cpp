// cli/cmd_runs.cpp: `distill runs list|show|hide|unhide|rm`: every run the store records, what each made, hiding
// one from comparisons, deleting one nothing builds on (dataset/runs).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "dataset/runs.h"

namespace distill::cli {

namespace {
struct RunsArgs {
  std::string db;
  std::int64_t id = 0;
  bool json = false, all = false, yes = false;
};

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
  CLI::App* s = with_id(runs, "show", "one run: its resolved config and what it made", *sa);
  s->add_flag("--json", sa->json, "print JSON");
  reg.add(s, [s, sa] {
    require(*s, "--db");
    require(*s, "id");
    auto store = dataset::Store::open(sa->db, dataset::OpenMode::read);
    const auto r = dataset::run_row(*store, sa->id);
    if (sa->json) {
      std::cout << run_json(r, true).dump(2) << "\n";
      return;
    }
    std::cout << "run " << r.id << ": " << r.kind << ", " << r.status << (r.hidden ? " (hidden)" : "") << "\n  started "
              << r.started_at << (r.finished_at.empty() ? "" : ", finished " + r.finished_at) << " on " << r.host
              << " (distill " << r.version << ")\n  made: " << made_text(r) << "\n  config:\n";
    std::cout << r.config_toml << (r.config_toml.empty() || r.config_toml.back() == '\n' ? "" : "\n");
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
