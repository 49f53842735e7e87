// cli/cmd_data_merge.cpp: `distill data merge --db OUT IN1.db IN2.db ...`: generation workers' stores joined
// into one (dataset/merge.h), recorded as a run; --json prints the counts per store and table.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "dataset/merge.h"

namespace distill::cli {

void register_data_merge(CLI::App& data, Registry& reg) {
  auto db = std::make_shared<std::string>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  CLI::App* c = data.add_subcommand("merge", "merge stores (generate --shard workers' files) into one, idempotently");
  c->add_option("--db", *db, "the store merged into (created if missing)");
  c->add_option("inputs", *inputs, "stores to merge in");
  c->add_flag("--json", *json, "counts as JSON");
  reg.add(c, [c, db, inputs, json] {
    require(*c, "--db");
    if (inputs->empty()) throw InputError("data merge: name the stores to merge in (IN1.db IN2.db ...)");
    const std::string config = resolved_config_toml(*c);
    auto out = dataset::Store::open(*db, dataset::OpenMode::create);
    const auto run = out->begin_run("data merge", config);
    dataset::MergeReport rep;
    try {
      rep = dataset::merge_stores(*out, *inputs);
    } catch (...) {
      out->fail_run(run);
      throw;
    }
    out->finish_run(run, true);
    nlohmann::json j = nlohmann::json::array();
    for (const auto& s : rep.stores) j.push_back({{"store", s.path}, {"added", s.added}, {"present", s.present}});
    if (*json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    for (const auto& s : rep.stores) {
      auto count = [&](const char* t, const std::map<std::string, std::int64_t>& m) {
        auto it = m.find(t);
        return it == m.end() ? std::int64_t(0) : it->second;
      };
      std::cout << "data merge: " << s.path << ": " << count("problems", s.added) << " problems, "
                << count("samples", s.added) << " samples, " << count("runs", s.added) << " runs, "
                << count("curation_actions", s.added) << " curation actions added (" << count("samples", s.present)
                << " samples already there)\n";
    }
  });
}

}  // namespace distill::cli
