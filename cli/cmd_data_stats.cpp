// cli/cmd_data_stats.cpp: `distill data stats`: counts by split, source, difficulty and verdict (text or --json).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "dataset/store.h"

namespace distill::cli {

namespace {
struct Args {
  std::string db;
  bool json = false;
};

void print_text(const std::string& path, const dataset::StoreStats& s) {
  std::cout << "store " << path << " (schema v" << s.schema_version << ", " << fmt_fixed(double(s.file_bytes) / 1e6, 2)
            << " MB)\n";
  std::cout << "  problems " << s.problems << "   samples " << s.samples << "   models " << s.models << "   runs "
            << s.runs << "\n";
  if (!s.problems_by_split.empty()) {
    std::cout << "\nproblems by split and difficulty\n";
    std::cout << "  split        total   d1     d2     d3     d4     d5     other\n";
    for (const auto& [split, n] : s.problems_by_split) {
      char line[160];
      const auto& by = s.problems_by_split_difficulty.at(split);
      auto get = [&](const char* d) {
        auto it = by.find(d);
        return it == by.end() ? 0LL : (long long)it->second;
      };
      long long other = n;
      for (const char* d : {"1", "2", "3", "4", "5"}) other -= get(d);
      std::snprintf(line, sizeof line, "  %-10s %7lld %6lld %6lld %6lld %6lld %6lld %6lld\n", split.c_str(),
                    (long long)n, get("1"), get("2"), get("3"), get("4"), get("5"), other);
      std::cout << line;
    }
    std::cout << "\nproblems by source\n";
    for (const auto& [src, n] : s.problems_by_source) std::cout << "  " << src << ": " << n << "\n";
  }
  if (!s.samples_by_verdict.empty()) {
    std::cout << "\nsamples by verdict\n";
    for (const auto& [v, n] : s.samples_by_verdict) std::cout << "  " << v << ": " << n << "\n";
  }
  if (!s.runs_by_kind.empty()) {
    std::cout << "\nruns by kind\n";
    for (const auto& [k, n] : s.runs_by_kind) std::cout << "  " << k << ": " << n << "\n";
  }
}
}  // namespace

void register_data_stats(CLI::App& data, Registry& reg) {
  auto a = std::make_shared<Args>();
  CLI::App* c = data.add_subcommand("stats", "summarise a store: problems by split/source/difficulty, samples, runs");
  c->add_option("--db", a->db, "store file");
  c->add_flag("--json", a->json, "print JSON instead of text");
  reg.add(c, [c, a] {
    require(*c, "--db");
    auto store = dataset::Store::open(a->db, dataset::OpenMode::read);
    auto s = store->stats();
    if (!a->json) return print_text(a->db, s);
    nlohmann::json j = {{"store", a->db},
                        {"schema_version", s.schema_version},
                        {"file_bytes", s.file_bytes},
                        {"problems", s.problems},
                        {"samples", s.samples},
                        {"models", s.models},
                        {"runs", s.runs},
                        {"problems_by_split", s.problems_by_split},
                        {"problems_by_source", s.problems_by_source},
                        {"problems_by_split_difficulty", s.problems_by_split_difficulty},
                        {"samples_by_verdict", s.samples_by_verdict},
                        {"runs_by_kind", s.runs_by_kind}};
    std::cout << j.dump(2) << "\n";
  });
}

}  // namespace distill::cli
