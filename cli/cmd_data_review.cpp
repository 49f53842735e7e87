// cli/cmd_data_review.cpp: reading and judging single samples: `data show ID`, `data review ID --accept|--reject`,
// `data undo ACTION_ID`, `data log`. Each read takes --json; writes go through dataset/curation.
#include <cstdlib>
#include <iostream>
#include <set>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"

#include <map>
#include "common/errors.h"
#include "dataset/curate_runs.h"
#include "dataset/curation.h"
#include "dataset/text_rules.h"

namespace distill::cli {

namespace {
std::string default_actor() {
  const char* u = std::getenv("USER");
  return u && *u ? u : "cli";
}

nlohmann::json history_json(const std::vector<dataset::CurationRow>& h) {
  auto arr = nlohmann::json::array();
  for (const auto& r : h)
    arr.push_back({{"action_id", r.id}, {"kind", r.kind}, {"decision", r.decision}, {"reason", r.reason},
                   {"actor", r.actor}, {"at", r.at}, {"params", nlohmann::json::parse(r.params_json)},
                   {"undone_by", r.undone_by ? nlohmann::json(*r.undone_by) : nlohmann::json(nullptr)},
                   {"undoes", r.undoes ? nlohmann::json(*r.undoes) : nlohmann::json(nullptr)}});
  return arr;
}

void indent(const std::string& text, const std::string& pad) {
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    std::cout << pad << text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos) << "\n";
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
}

struct ShowArgs {
  std::string db;
  std::int64_t id = 0;
  bool json = false;
};
struct ReviewArgs {
  std::string db, reason, actor = default_actor(), split;
  std::int64_t id = 0;
  std::vector<std::int64_t> ids;
  bool accept = false, reject = false, json = false, all_pending = false, query = false;
  std::map<std::string, std::string> filters;
};
}  // namespace

void register_data_review(CLI::App& data, Registry& reg) {
  auto sa = std::make_shared<ShowArgs>();
  CLI::App* show = data.add_subcommand("show", "render one sample: reasoning, answer, verdict, lineage, curation history");
  show->add_option("--db", sa->db, "store file");
  show->add_option("id", sa->id, "sample id");
  show->add_flag("--json", sa->json, "print JSON");
  reg.add(show, [show, sa] {
    require(*show, "--db");
    require(*show, "id");
    auto store = dataset::Store::open(sa->db, dataset::OpenMode::read);
    auto v = dataset::sample_view(*store, sa->id);
    if (sa->json) {
      nlohmann::json j = {{"id", v.id}, {"problem_id", v.problem_id}, {"split", v.split}, {"prompt", v.prompt},
                          {"gold", v.gold}, {"completion", v.completion}, {"verdict", v.verdict},
                          {"extracted_answer", v.extracted_answer ? nlohmann::json(*v.extracted_answer) : nlohmann::json(nullptr)},
                          {"extract_rule", v.extract_rule ? nlohmann::json(*v.extract_rule) : nlohmann::json(nullptr)},
                          {"verifier", v.verifier ? nlohmann::json(*v.verifier) : nlohmann::json(nullptr)},
                          {"imported_from", v.imported_from.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.imported_from)},
                          {"status", v.status}, {"n_tokens", v.n_tokens ? nlohmann::json(*v.n_tokens) : nlohmann::json(nullptr)},
                          {"finish_reason", v.finish_reason},
                          {"sample_idx", v.sample_idx}, {"seed", v.seed}, {"temperature", v.temperature},
                          {"top_p", v.top_p}, {"model", {{"id", v.model_id}, {"path", v.model_path}, {"role", v.model_role}, {"sha256", v.model_sha256}}},
                          {"run_id", v.run_id}, {"created_at", v.created_at},
                          {"prompt_format", v.prompt_format.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.prompt_format)},
                          {"difficulty", v.difficulty ? nlohmann::json(*v.difficulty) : nlohmann::json(nullptr)},
                          {"history", history_json(v.history)}};
      if (!v.sampled_here) j["temperature"] = j["top_p"] = j["seed"] = nullptr;  // not known for chat imports
      auto changes = nlohmann::json::array();
      for (const auto& c : v.verdict_changes)
        changes.push_back({{"action_id", c.action_id}, {"old", c.old_verdict}, {"new", c.new_verdict},
                           {"old_verifier", c.old_verifier}, {"new_verifier", c.new_verifier}, {"undone", c.undone}});
      j["verdict_changes"] = changes;
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "sample " << v.id << "  (problem " << v.problem_id << ", split " << v.split
              << (v.difficulty ? ", difficulty " + std::to_string(*v.difficulty) : "") << ")  status: " << v.status << "\n\n";
    std::cout << "prompt:\n";
    indent(v.prompt, "  ");
    auto [think, answer, unclosed] = dataset::split_completion(v.completion);
    if (unclosed) answer = "(the think block never closes)";
    std::cout << "\nreasoning:\n";
    indent(think, "  | ");
    std::cout << "\nanswer:\n";
    indent(answer.empty() ? "(none)" : answer, "  ");
    std::cout << "\nverdict: " << v.verdict << "  (extracted " << (v.extracted_answer ? *v.extracted_answer : "nothing")
              << (v.extract_rule ? " by rule " + *v.extract_rule : "") << ", gold "
              << (v.gold.empty() ? "none" : v.gold) << "; " << (v.verifier ? *v.verifier : "verifier unrecorded") << ")\n";
    for (const auto& c : v.verdict_changes)
      std::cout << "  re-verified by action #" << c.action_id << ": " << c.old_verdict << " -> " << c.new_verdict << " ("
                << (c.old_verifier.empty() ? "unrecorded" : c.old_verifier) << " -> " << c.new_verifier << ")"
                << (c.undone ? ", undone" : "") << "\n";
    const std::string tokens = v.n_tokens ? std::to_string(*v.n_tokens) + " tokens" : "token count unknown";
    if (!v.sampled_here)
      std::cout << "lineage: imported from " << v.imported_from << ", run " << v.run_id
                << " (no sampling parameters are known), " << tokens << ", " << v.created_at << "\n";
    else
      std::cout << "lineage: " << v.model_role << " " << v.model_path << " (sha256 " << v.model_sha256.substr(0, 12)
                << "...), run " << v.run_id << (v.imported_from.empty() ? "" : " (imported from " + v.imported_from + ")")
                << (v.prompt_format.empty() ? "" : ", prompt format " + v.prompt_format) << ", sample " << v.sample_idx
                << ", seed " << v.seed << ", temperature " << fmt_fixed(v.temperature, 2) << ", top-p "
                << fmt_fixed(v.top_p, 2) << ", " << tokens << ", finish " << v.finish_reason << ", " << v.created_at << "\n";
    if (!v.history.empty()) {
      std::cout << "history:\n";
      for (const auto& r : v.history)
        std::cout << "  #" << r.id << " " << r.kind << (r.decision.empty() ? "" : " " + r.decision) << " by " << r.actor
                  << " at " << r.at << (r.reason.empty() ? "" : ": " + r.reason)
                  << (r.undone_by ? "  (undone by #" + std::to_string(*r.undone_by) + ")" : "") << "\n";
    }
  });

  auto ra = std::make_shared<ReviewArgs>();
  CLI::App* rev = data.add_subcommand("review", "accept or reject samples (one action in the curation log)");
  rev->add_option("--db", ra->db, "store file");
  rev->add_option("ids", ra->ids, "sample ids");
  rev->add_flag("--all-pending", ra->all_pending, "every pending sample (e.g. what survived the filters); --split narrows it");
  rev->add_flag("--query", ra->query, "every sample the filters below match, as `data list` shows them with the same flags");
  add_list_filters(*rev, ra->filters, false);
  rev->add_flag("--accept", ra->accept, "keep the samples");
  rev->add_flag("--reject", ra->reject, "reject the samples");
  rev->add_option("--reason", ra->reason, "why (stored with the action)");
  rev->add_option("--actor", ra->actor, "who (default: $USER)");
  rev->add_flag("--json", ra->json, "print JSON");
  reg.add(rev, [rev, ra] {
    require(*rev, "--db");
    if (ra->accept == ra->reject) throw InputError("`distill data review` needs exactly one of --accept and --reject");
    if (int(!ra->ids.empty()) + int(ra->all_pending) + int(ra->query) != 1)
      throw InputError("`distill data review` needs one of: sample ids, --all-pending, --query with filters");
    const auto given = given_list_filters(*rev, ra->filters);
    const bool filtered = !given.empty();
    if (filtered && !ra->ids.empty()) throw InputError("the filters (--status, --search, ...) go with --query or --all-pending, not ids");
    if (ra->query && !filtered) throw InputError("--query needs at least one filter (--status, --verdict, --search, ...)");
    auto store = dataset::Store::open(ra->db, dataset::OpenMode::read);
    nlohmann::json params = {{"decision", ra->accept ? "keep" : "reject"}};
    dataset::ReviewOutcome r;
    if (ra->ids.empty()) {  // by query: counted, then applied to exactly what was counted (refused if it changed)
      auto q = list_filters(*rev, ra->filters, *store);
      if (ra->all_pending) {
        if (!q.statuses.empty()) throw InputError("--all-pending takes no --status");
        q.statuses = {dataset::Status::pending};
        params["all_pending"] = true;
      }
      params["query"] = given;
      const auto stamp = dataset::match_stamp(*store, q);
      if (stamp.rfind("0:", 0) == 0) {
        std::cout << (ra->json ? "{\"action_id\": null, \"n_samples\": 0}" : "no sample matches: no action recorded") << "\n";
        return;
      }
      r = dataset::review_query(*store, q, ra->accept, ra->reason, ra->actor, stamp, params.dump());
    } else {
      r = dataset::review_samples(*store, ra->ids, ra->accept, ra->reason, ra->actor, params.dump());
    }
    const char* done = ra->accept ? "kept" : "rejected";
    if (ra->json) {
      nlohmann::json j = {{"action_id", r.action_id ? nlohmann::json(r.action_id) : nlohmann::json(nullptr)},
                          {"n_samples", r.changed.size()}, {"unchanged", r.unchanged},
                          {"decision", ra->accept ? "keep" : "reject"}};
      if (r.changed.size() == 1)
        j["sample_id"] = r.changed[0], j["status"] = dataset::status_name(dataset::sample_status(*store, r.changed[0]));
      std::cout << j.dump() << "\n";
      return;
    }
    if (!r.action_id) {
      std::cout << "nothing changed: " << (r.unchanged.size() == 1 ? "sample " + std::to_string(r.unchanged[0]) + " is"
                                                                   : std::to_string(r.unchanged.size()) + " samples are")
                << " " << done << " by a review already; no action recorded\n";
      return;
    }
    if (r.changed.size() == 1)
      std::cout << "action " << r.action_id << ": sample " << r.changed[0] << " is now "
                << dataset::status_name(dataset::sample_status(*store, r.changed[0]));
    else
      std::cout << "action " << r.action_id << ": " << r.changed.size() << " samples " << done;
    if (!r.unchanged.empty()) std::cout << " (" << r.unchanged.size() << " " << done << " by a review already, left out)";
    std::cout << "\n";
  });

  auto ua = std::make_shared<ReviewArgs>();
  CLI::App* undo = data.add_subcommand("undo", "reverse one curation action exactly");
  undo->add_option("--db", ua->db, "store file");
  undo->add_option("id", ua->id, "curation action id");
  undo->add_option("--actor", ua->actor, "who (default: $USER)");
  undo->add_flag("--json", ua->json, "print JSON");
  reg.add(undo, [undo, ua] {
    require(*undo, "--db");
    require(*undo, "id");
    auto store = dataset::Store::open(ua->db, dataset::OpenMode::read);
    const auto undo_id = dataset::undo_action(*store, ua->id, ua->actor);
    if (ua->json) {
      std::cout << nlohmann::json{{"undo_id", undo_id}, {"undone", ua->id}}.dump() << "\n";
      return;
    }
    std::cout << "action " << undo_id << ": undid action " << ua->id << "\n";
  });

  auto la = std::make_shared<ShowArgs>();
  auto log_sample = std::make_shared<std::int64_t>(0);
  auto log_limit = std::make_shared<std::int64_t>(0);
  CLI::App* log = data.add_subcommand("log", "the curation log: every action, newest first, with its parameters and counts");
  log->add_option("--db", la->db, "store file");
  log->add_option("--sample", *log_sample, "only the actions that decided on this sample (and their undos)");
  log->add_option("--limit", *log_limit, "only the newest N actions (0: all)");
  log->add_flag("--json", la->json, "print JSON");
  reg.add(log, [log, la, log_sample, log_limit] {
    require(*log, "--db");
    if (*log_limit < 0) throw InputError("--limit " + std::to_string(*log_limit) + ": expected >= 0 (0: all)");
    auto store = dataset::Store::open(la->db, dataset::OpenMode::read);
    auto rows = dataset::list_actions(*store);
    if (log->count("--sample")) {
      std::set<std::int64_t> ids;
      (void)dataset::sample_view(*store, *log_sample);  // InputError naming an unknown id
      for (const auto& h : dataset::curation_history(*store, *log_sample)) ids.insert(h.id);
      std::erase_if(rows, [&](const auto& r) { return !ids.count(r.id); });
    }
    if (*log_limit > 0 && std::int64_t(rows.size()) > *log_limit) rows.resize(std::size_t(*log_limit));
    if (la->json) {
      auto arr = nlohmann::json::array();
      for (const auto& r : rows)
        arr.push_back({{"action_id", r.id}, {"kind", r.kind}, {"params", nlohmann::json::parse(r.params_json)},
                       {"reason", r.reason}, {"actor", r.actor}, {"at", r.at}, {"n_kept", r.n_kept},
                       {"n_rejected", r.n_rejected},
                       {"undone_by", r.undone_by ? nlohmann::json(*r.undone_by) : nlohmann::json(nullptr)},
                       {"undoes", r.undoes ? nlohmann::json(*r.undoes) : nlohmann::json(nullptr)}});
      std::cout << arr.dump(2) << "\n";
      return;
    }
    for (const auto& r : rows) {
      std::cout << "#" << r.id << "  " << r.kind << "  " << r.at << "  by " << r.actor;
      if (r.kind != "undo") std::cout << "  kept " << r.n_kept << ", rejected " << r.n_rejected;
      if (r.undoes) std::cout << "  (undoes #" << *r.undoes << ")";
      if (r.undone_by) std::cout << "  [undone by #" << *r.undone_by << "]";
      std::cout << "\n";
      if (r.params_json != "{}") std::cout << "     params " << r.params_json << "\n";
      if (!r.reason.empty()) std::cout << "     reason " << r.reason << "\n";
    }
  });
}

}  // namespace distill::cli
