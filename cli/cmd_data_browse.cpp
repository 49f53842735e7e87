// cli/cmd_data_browse.cpp: `data list` (filters and full-text search over samples) and `data export` (curated
// samples as jsonl / sharegpt / openai-chat, with a stats sidecar).
#include <algorithm>
#include <filesystem>
#include <map>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "common/config_text.h"
#include "common/errors.h"
#include "common/fs.h"
#include "dataset/browse.h"
#include "dataset/curate_runs.h"
#include "dataset/evals.h"
#include "dataset/export.h"
#include "dataset/text_rules.h"
#include "distill_version.h"
#include "teacher/prompt_format.h"

namespace distill::cli {

namespace {
struct ListArgs {
  std::string db;
  std::map<std::string, std::string> filters;
  std::int64_t limit = 50, offset = 0;
  bool json = false, eval = false;
};

// `data list --eval`: eval runs' answers, for error analysis, with the filters that apply to them.
void list_eval(const dataset::ListQuery& q, dataset::Store& store, bool json) {
  if (!q.statuses.empty() || !q.search.empty() || q.min_tokens || q.max_tokens || q.after ||
      q.sort != dataset::ListQuery::Sort::id || q.descending)
    throw InputError("--eval lists eval answers by --run, --model, --problem, --verdict and --split only");
  dataset::EvalAnswerQuery e;
  e.run_id = q.run_id, e.model_id = q.model_id, e.problem_id = q.problem_id, e.verdict = q.verdict, e.split = q.split;
  e.limit = q.limit, e.offset = q.offset;
  const auto total = dataset::count_eval_answers(store, e);
  const auto rows = dataset::list_eval_answers(store, e);
  auto answer = [](const std::string& c) {
    auto a = dataset::split_completion(c).answer;
    std::replace(a.begin(), a.end(), '\n', ' ');
    return a;
  };
  if (json) {
    auto arr = nlohmann::json::array();
    for (const auto& r : rows)
      arr.push_back({{"run_id", r.run_id}, {"model_id", r.model_id}, {"role", r.role}, {"model", r.model_path},
                     {"problem_id", r.problem_id}, {"split", r.split}, {"sample_idx", r.sample_idx}, {"verdict", r.verdict},
                     {"n_tokens", r.n_tokens}, {"completion", r.completion}});
    std::cout << nlohmann::json{{"total", total}, {"offset", e.offset}, {"answers", arr}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  for (const auto& r : rows)
    std::cout << "run " << r.run_id << "  " << r.role << " " << r.model_path << "  problem " << r.problem_id << "#" << r.sample_idx
              << "  " << r.verdict << "  " << r.n_tokens << " tokens  " << answer(r.completion) << "\n";
  std::cout << rows.size() << " of " << total << " eval answers";
  if (e.offset + std::int64_t(rows.size()) < total) std::cout << " (next: --offset " << e.offset + std::int64_t(rows.size()) << ")";
  std::cout << "\n";
}

struct ExportArgs {
  std::string db, format = "jsonl", status = "kept", split, out;
  bool json = false, force = false;
};

void list_samples(const CLI::App& l, ListArgs& la) {
  require(l, "--db");
  if (la.limit < 0 || la.offset < 0) throw InputError("--limit and --offset must not be negative");
  auto store = dataset::Store::open(la.db, dataset::OpenMode::read);
  auto q = list_filters(l, la.filters, *store);
  q.limit = la.limit;
  q.offset = la.offset;
  if (la.eval) return list_eval(q, *store, la.json);
  const auto total = dataset::count_samples(*store, q);
  const auto rows = dataset::list_samples(*store, q);
  // --verdict correct leaves out the unverified samples that might be correct too: say how many.
  std::int64_t unverified = 0;
  if (q.verdict == "correct") {
    auto u = q;
    u.verdict = "unverified";
    unverified = dataset::count_samples(*store, u);
  }
  std::string next;  // the key of the last row, when more may follow
  if (!rows.empty() && std::int64_t(rows.size()) == q.limit) {
    const auto& last = rows.back();
    next = std::to_string(q.sort == dataset::ListQuery::Sort::tokens ? last.n_tokens.value_or(-1) : last.id) + ":" +
           std::to_string(last.id);
  }
  if (la.json) {
    auto arr = nlohmann::json::array();
    for (const auto& r : rows)
      arr.push_back({{"id", r.id}, {"problem_id", r.problem_id}, {"split", r.split}, {"sample_idx", r.sample_idx},
                     {"status", r.status}, {"reason", r.reason}, {"verdict", r.verdict},
                     {"n_tokens", r.n_tokens ? nlohmann::json(*r.n_tokens) : nlohmann::json(nullptr)},
                     {"run_id", r.run_id}, {"model_id", r.model_id}, {"snippet", r.snippet}});
    nlohmann::json out = {{"total", total}, {"offset", q.offset}, {"samples", arr},
                          {"next", next.empty() ? nlohmann::json(nullptr) : nlohmann::json(next)}};
    if (q.verdict == "correct") out["unverified_left_out"] = unverified;
    std::cout << out.dump(2) << "\n";
    return;
  }
  char line[320];
  std::snprintf(line, sizeof line, "%8s %8s %-6s %-9s %-10s %6s  %-24s  %s\n", "id", "problem", "split", "status", "verdict",
                "tokens", "reason", q.search.empty() ? "answer" : "match");
  std::cout << line;
  for (const auto& r : rows) {
    const auto tokens = r.n_tokens ? std::to_string(*r.n_tokens) : std::string("?");
    std::string reason = r.reason;
    if (reason.size() > 24) {  // cut on a character boundary
      std::size_t cut = 21;
      while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
      reason = reason.substr(0, cut) + "...";
    }
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    std::snprintf(line, sizeof line, "%8lld %8lld %-6s %-9s %-10s %6s  %-24s  ", (long long)r.id, (long long)r.problem_id,
                  r.split.c_str(), r.status.c_str(), r.verdict.c_str(), tokens.c_str(), reason.c_str());
    std::cout << line << r.snippet << "\n";
  }
  std::cout << rows.size() << " of " << total << " matching samples";
  if (!next.empty()) std::cout << " (next page: --after " << next << ")";
  std::cout << "\n";
  if (unverified > 0)
    std::cout << unverified << " unverified samples (no gold answer to check them) are left out; --verdict unverified lists them\n";
}

void show_problem(const dataset::ProblemView& v, bool json) {
  auto answer = [](const std::string& c) { return dataset::split_completion(c).answer; };
  if (json) {
    nlohmann::json j = {{"id", v.id}, {"source", v.source}, {"split", v.split}, {"prompt", v.prompt}, {"gold", v.answer},
                        {"solution", v.solution ? nlohmann::json(*v.solution) : nlohmann::json(nullptr)},
                        {"difficulty", v.difficulty ? nlohmann::json(*v.difficulty) : nlohmann::json(nullptr)},
                        {"n_samples", v.n_samples}, {"samples", nlohmann::json::array()}, {"evals", nlohmann::json::array()}};
    for (const auto& r : v.samples)
      j["samples"].push_back({{"id", r.id}, {"sample_idx", r.sample_idx}, {"status", r.status}, {"verdict", r.verdict},
                              {"n_tokens", r.n_tokens ? nlohmann::json(*r.n_tokens) : nlohmann::json(nullptr)},
                              {"reason", r.reason}, {"snippet", r.snippet}});
    for (const auto& e : v.evals)
      j["evals"].push_back({{"run_id", e.run_id}, {"model_id", e.model_id}, {"role", e.role}, {"model", e.model_path},
                            {"sample_idx", e.sample_idx}, {"verdict", e.verdict}, {"n_tokens", e.n_tokens},
                            {"completion", e.completion}});
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "problem " << v.id << "  (" << v.source << ", split " << v.split
            << (v.difficulty ? ", difficulty " + std::to_string(*v.difficulty) : std::string()) << ")\n\n"
            << v.prompt << "\n\ngold answer: " << v.answer << "\n";
  if (v.solution) std::cout << "gold solution:\n" << *v.solution << "\n";
  std::cout << "\nsamples: " << v.n_samples << (v.n_samples > std::int64_t(v.samples.size()) ? " (the first " + std::to_string(v.samples.size()) + " below)" : "") << "\n";
  for (const auto& r : v.samples)
    std::cout << "  #" << r.id << "  " << r.status << "  " << r.verdict << "  "
              << (r.n_tokens ? std::to_string(*r.n_tokens) : std::string("?")) << " tokens  " << r.snippet
              << (r.reason.empty() ? "" : "  [" + r.reason + "]") << "\n";
  std::cout << "\neval answers: " << (v.evals.empty() ? "none" : std::to_string(v.evals.size())) << "\n";
  for (const auto& e : v.evals) {
    auto a = answer(e.completion);
    std::replace(a.begin(), a.end(), '\n', ' ');
    std::cout << "  " << e.role << " " << e.model_path << " (eval run " << e.run_id << ", sample " << e.sample_idx
              << "): " << e.verdict << ", " << e.n_tokens << " tokens: " << a << "\n";
  }
}

}  // namespace

void register_data_browse(CLI::App& data, Registry& reg) {
  auto la = std::make_shared<ListArgs>();
  CLI::App* l = data.add_subcommand("list", "list samples by status, verdict, problem, run, length or full-text search");
  l->add_option("--db", la->db, "store file");
  add_list_filters(*l, la->filters, true);
  l->add_option("--limit", la->limit, "rows to print");
  l->add_option("--offset", la->offset, "rows to skip (--after pages faster on large stores)");
  l->add_flag("--eval", la->eval, "list eval runs' answers instead (error analysis): --run, --model, --problem, --verdict, --split");
  l->add_flag("--json", la->json, "print JSON");
  reg.add(l, [l, la] { list_samples(*l, *la); });

  auto pa = std::make_shared<ListArgs>();
  auto problem_id = std::make_shared<std::int64_t>(-1);
  CLI::App* prob = data.add_subcommand("problem", "look at one problem");
  prob->require_subcommand(1, 1);
  CLI::App* ps = prob->add_subcommand("show", "a problem: prompt, gold, difficulty, its samples and every eval answer to it");
  ps->add_option("--db", pa->db, "store file");
  ps->add_option("id", *problem_id, "problem id");
  ps->add_flag("--json", pa->json, "print JSON");
  reg.add(ps, [ps, pa, problem_id] {
    require(*ps, "--db");
    require(*ps, "id");
    auto store = dataset::Store::open(pa->db, dataset::OpenMode::read);
    show_problem(dataset::problem_view(*store, *problem_id), pa->json);
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
    o.statuses = dataset::parse_statuses(ea->status, "--status");
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
      dataset::ListQuery pq;
      pq.statuses = {dataset::Status::pending};
      pq.split = ea->split;
      const auto pending = dataset::count_samples(*store, pq);
      if (pending > 0 && ea->status == "kept")
        std::cerr << "note: nothing is kept yet, " << pending << " samples are pending; accept what survived curation with "
                  << "`distill data review --db " << ea->db << " --all-pending --accept`\n";
    }
  });
}

}  // namespace distill::cli
