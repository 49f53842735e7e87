// cli/cmd_data_review.cpp: reading and judging single samples: `data show ID`, `data review ID --accept|--reject`,
// `data undo ACTION_ID`. Each read takes --json; writes go through dataset/curation.
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "common/errors.h"
#include "dataset/curation.h"

namespace distill::cli {

namespace {
std::string default_actor() {
  const char* u = std::getenv("USER");
  return u && *u ? u : "cli";
}

nlohmann::json history_json(const std::vector<dataset::CurationRow>& h) {
  auto arr = nlohmann::json::array();
  for (const auto& r : h)
    arr.push_back({{"id", r.id}, {"action", r.action}, {"reason", r.reason}, {"actor", r.actor}, {"at", r.at},
                   {"undone_by", r.undone_by ? nlohmann::json(*r.undone_by) : nlohmann::json(nullptr)}});
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
  std::string db, reason, actor = default_actor();
  std::int64_t id = 0;
  bool accept = false, reject = false, json = false;
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
                          {"status", v.status}, {"n_tokens", v.n_tokens}, {"finish_reason", v.finish_reason},
                          {"sample_idx", v.sample_idx}, {"seed", v.seed}, {"temperature", v.temperature},
                          {"top_p", v.top_p}, {"model", {{"id", v.model_id}, {"path", v.model_path}, {"role", v.model_role}, {"sha256", v.model_sha256}}},
                          {"run_id", v.run_id}, {"created_at", v.created_at},
                          {"difficulty", v.difficulty ? nlohmann::json(*v.difficulty) : nlohmann::json(nullptr)},
                          {"history", history_json(v.history)}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "sample " << v.id << "  (problem " << v.problem_id << ", split " << v.split
              << (v.difficulty ? ", difficulty " + std::to_string(*v.difficulty) : "") << ")  status: " << v.status << "\n\n";
    std::cout << "prompt:\n";
    indent(v.prompt, "  ");
    std::string think = v.completion, answer;
    if (auto open = think.find("<think>"); open != std::string::npos) think = think.substr(open + 7);
    if (auto close = think.find("</think>"); close != std::string::npos) {
      answer = think.substr(close + 8);
      think = think.substr(0, close);
    } else {
      answer = "(the think block never closes)";
    }
    while (!think.empty() && think.front() == '\n') think.erase(0, 1);
    while (!think.empty() && think.back() == '\n') think.pop_back();
    while (!answer.empty() && answer.front() == '\n') answer.erase(0, 1);
    while (!answer.empty() && answer.back() == '\n') answer.pop_back();
    std::cout << "\nreasoning:\n";
    indent(think, "  | ");
    std::cout << "\nanswer:\n";
    indent(answer.empty() ? "(none)" : answer, "  ");
    std::cout << "\nverdict: " << v.verdict << "  (extracted " << (v.extracted_answer ? *v.extracted_answer : "nothing")
              << ", gold " << v.gold << ")\n";
    std::cout << "lineage: " << v.model_role << " " << v.model_path << " (sha256 " << v.model_sha256.substr(0, 12)
              << "...), run " << v.run_id << ", sample " << v.sample_idx << ", seed " << v.seed << ", temperature "
              << fmt_fixed(v.temperature, 2) << ", top-p " << fmt_fixed(v.top_p, 2) << ", " << v.n_tokens
              << " tokens, finish " << v.finish_reason << ", " << v.created_at << "\n";
    if (!v.history.empty()) {
      std::cout << "history:\n";
      for (const auto& r : v.history)
        std::cout << "  #" << r.id << " " << r.action << " by " << r.actor << " at " << r.at
                  << (r.reason.empty() ? "" : ": " + r.reason)
                  << (r.undone_by ? "  (undone by #" + std::to_string(*r.undone_by) + ")" : "") << "\n";
    }
  });

  auto ra = std::make_shared<ReviewArgs>();
  CLI::App* rev = data.add_subcommand("review", "accept or reject one sample (an entry in the curation log)");
  rev->add_option("--db", ra->db, "store file");
  rev->add_option("id", ra->id, "sample id");
  rev->add_flag("--accept", ra->accept, "keep the sample");
  rev->add_flag("--reject", ra->reject, "reject the sample");
  rev->add_option("--reason", ra->reason, "why (stored with the action)");
  rev->add_option("--actor", ra->actor, "who (default: $USER)");
  rev->add_flag("--json", ra->json, "print JSON");
  reg.add(rev, [rev, ra] {
    require(*rev, "--db");
    require(*rev, "id");
    if (ra->accept == ra->reject) throw InputError("`distill data review` needs exactly one of --accept and --reject");
    auto store = dataset::Store::open(ra->db, dataset::OpenMode::read);
    const auto action = dataset::curate(*store, ra->id, ra->accept ? "keep" : "reject", ra->reason, ra->actor);
    const auto status = dataset::sample_status(*store, ra->id);
    if (ra->json) {
      std::cout << nlohmann::json{{"action_id", action}, {"sample_id", ra->id}, {"status", status}}.dump() << "\n";
      return;
    }
    std::cout << "action " << action << ": sample " << ra->id << " is now " << status << "\n";
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
}

}  // namespace distill::cli
