// cli/cmd_data_browse.cpp: `data list` (filters and full-text search over samples) and `data export` (curated
// samples as jsonl / sharegpt / openai-chat, with a stats sidecar).
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "common/fs.h"
#include "dataset/browse.h"
#include "dataset/curate_runs.h"
#include "dataset/export.h"
#include "distill_version.h"
#include "teacher/prompt_format.h"

namespace distill::cli {

namespace {
struct ListArgs {
  std::string db, status, verdict, split, search;
  std::int64_t problem = -1, min_tokens = -1, max_tokens = -1, limit = 50, offset = 0;
  bool json = false;
};

struct ExportArgs {
  std::string db, format = "jsonl", status = "kept", split, out;
  bool json = false, force = false;
};

std::vector<dataset::Status> parse_statuses(const std::string& list) {
  std::vector<dataset::Status> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto st = dataset::parse_status(item);
    if (!st) throw InputError("--status '" + item + "' is not a status (expected pending, kept or rejected, comma-separated)");
    out.push_back(*st);
  }
  if (out.empty()) throw InputError("--status needs at least one of pending, kept, rejected");
  return out;
}
}  // namespace

void register_data_browse(CLI::App& data, Registry& reg) {
  auto la = std::make_shared<ListArgs>();
  CLI::App* l = data.add_subcommand("list", "list samples by status, verdict, problem, length or full-text search");
  l->add_option("--db", la->db, "store file");
  l->add_option("--status", la->status, "pending | kept | rejected");
  l->add_option("--verdict", la->verdict, "correct | incorrect | unparsable | unverified");
  l->add_option("--split", la->split, "problems of this split only");
  l->add_option("--problem", la->problem, "samples of this problem id");
  l->add_option("--min-tokens", la->min_tokens, "completions at least this long");
  l->add_option("--max-tokens", la->max_tokens, "completions at most this long");
  l->add_option("--search", la->search, "SQLite FTS5 query over completions, e.g. 'carry' or '\"mod 10\" NOT subtract'");
  l->add_option("--limit", la->limit, "rows to print");
  l->add_option("--offset", la->offset, "rows to skip");
  l->add_flag("--json", la->json, "print JSON");
  reg.add(l, [l, la] {
    require(*l, "--db");
    dataset::ListQuery q;
    if (!la->status.empty()) {
      q.status = dataset::parse_status(la->status);
      if (!q.status) throw InputError("--status '" + la->status + "' is not pending, kept or rejected");
    }
    if (!la->verdict.empty() && la->verdict != "correct" && la->verdict != "incorrect" && la->verdict != "unparsable" &&
        la->verdict != "unverified")
      throw InputError("--verdict '" + la->verdict + "' is not correct, incorrect, unparsable or unverified");
    if (la->limit < 0 || la->offset < 0) throw InputError("--limit and --offset must not be negative");
    for (const char* opt : {"--problem", "--min-tokens", "--max-tokens"})
      if (l->count(opt) && l->get_option(opt)->as<std::int64_t>() < 0)
        throw InputError(std::string(opt) + " " + l->get_option(opt)->as<std::string>() + ": expected >= 0");
    if (l->count("--status") && la->status.empty()) throw InputError("--status is empty: expected pending, kept or rejected");
    q.verdict = la->verdict;
    q.split = la->split;
    q.search = la->search;
    if (la->problem >= 0) q.problem_id = la->problem;
    if (la->min_tokens >= 0) q.min_tokens = la->min_tokens;
    if (la->max_tokens >= 0) q.max_tokens = la->max_tokens;
    q.limit = la->limit;
    q.offset = la->offset;
    auto store = dataset::Store::open(la->db, dataset::OpenMode::read);
    const auto total = dataset::count_samples(*store, q);
    const auto rows = dataset::list_samples(*store, q);
    // --verdict correct leaves out the unverified samples that might be correct too: say how many.
    std::int64_t unverified = 0;
    if (q.verdict == "correct") {
      auto u = q;
      u.verdict = "unverified";
      unverified = dataset::count_samples(*store, u);
    }
    if (la->json) {
      auto arr = nlohmann::json::array();
      for (const auto& r : rows)
        arr.push_back({{"id", r.id}, {"problem_id", r.problem_id}, {"split", r.split}, {"sample_idx", r.sample_idx},
                       {"status", r.status}, {"verdict", r.verdict}, {"n_tokens", r.n_tokens ? nlohmann::json(*r.n_tokens) : nlohmann::json(nullptr)}, {"snippet", r.snippet}});
      nlohmann::json out = {{"total", total}, {"offset", q.offset}, {"samples", arr}};
      if (q.verdict == "correct") out["unverified_left_out"] = unverified;
      std::cout << out.dump(2) << "\n";
      return;
    }
    char line[256];
    std::snprintf(line, sizeof line, "%8s %8s %-6s %-9s %-10s %6s  %s\n", "id", "problem", "split", "status", "verdict",
                  "tokens", q.search.empty() ? "answer" : "match");
    std::cout << line;
    for (const auto& r : rows) {
      const auto tokens = r.n_tokens ? std::to_string(*r.n_tokens) : std::string("?");
      std::snprintf(line, sizeof line, "%8lld %8lld %-6s %-9s %-10s %6s  ", (long long)r.id, (long long)r.problem_id,
                    r.split.c_str(), r.status.c_str(), r.verdict.c_str(), tokens.c_str());
      std::cout << line << r.snippet << "\n";
    }
    std::cout << rows.size() << " of " << total << " matching samples";
    if (q.offset + std::int64_t(rows.size()) < total) std::cout << " (next: --offset " << q.offset + std::int64_t(rows.size()) << ")";
    std::cout << "\n";
    if (unverified > 0)
      std::cout << unverified << " unverified samples (no gold answer to check them) are left out; --verdict unverified lists them\n";
  });

  auto ea = std::make_shared<ExportArgs>();
  CLI::App* e = data.add_subcommand("export", "write curated samples as training data (jsonl, sharegpt, openai-chat)");
  e->add_option("--db", ea->db, "store file");
  e->add_option("--format", ea->format, "jsonl (distill's, lossless) | sharegpt | openai-chat");
  e->add_option("--status", ea->status, "statuses to export, comma-separated (default: kept)");
  e->add_option("--split", ea->split, "problems of this split only");
  e->add_option("--out", ea->out, "output file; FILE.stats.json is written beside it");
  e->add_flag("--json", ea->json, "print the stats as JSON");
  e->add_flag("--force", ea->force, "replace an existing --out file (and its .stats.json)");
  reg.add(e, [e, ea] {
    require(*e, "--db");
    require(*e, "--out");
    check_output_file(ea->out, "--out", {ea->db});
    check_output_file(ea->out + ".stats.json", "--out (its .stats.json)", {ea->db});
    if (std::filesystem::exists(ea->out) && !ea->force)  // an earlier export may be the only copy of a curation
      throw InputError("--out " + ea->out + " exists; name a new file, or pass --force to replace it");
    dataset::ExportOptions o;
    o.format = dataset::parse_export_format(ea->format);
    o.statuses = parse_statuses(ea->status);
    o.split = ea->split;
    o.instruction = std::string(teacher::kR1Instruction);
    auto store = dataset::Store::open(ea->db, dataset::OpenMode::read);
    auto st = dataset::export_samples(*store, o, ea->out);
    nlohmann::ordered_json side = {{"file", ea->out},
                                   {"sha256", st.sha256},
                                   {"format", dataset::export_format_name(o.format)},
                                   {"statuses", ea->status},
                                   {"split", ea->split},
                                   {"samples", st.samples},
                                   {"problems", st.problems},
                                   {"tokens", st.tokens},
                                   {"by_split", st.by_split},
                                   {"by_verdict", st.by_verdict},
                                   {"store", ea->db},
                                   {"distill_version", DISTILL_VERSION}};
    write_file_atomic(ea->out + ".stats.json", side.dump(2) + "\n");
    if (ea->json) {
      std::cout << side.dump(2) << "\n";
    } else {
      std::cout << "export: " << st.samples << " samples of " << st.problems << " problems (" << st.tokens
                << " completion tokens) -> " << ea->out << " (" << dataset::export_format_name(o.format)
                << "), stats in " << ea->out << ".stats.json\n";
    }
    if (st.samples == 0) {
      const auto pending = dataset::pending_samples(*store, ea->split).size();
      if (pending > 0 && ea->status == "kept")
        std::cerr << "note: nothing is kept yet, " << pending << " samples are pending; accept what survived curation with "
                  << "`distill data review --db " << ea->db << " --all-pending --accept`\n";
    }
  });
}

}  // namespace distill::cli
