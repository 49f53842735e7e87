// dataset/curation.cpp: see curation.h.
#include "dataset/curation.h"

#include <set>

#include "common/config_text.h"
#include "common/errors.h"
#include "dataset/samples.h"

namespace distill::dataset {

const char* const kLiveDecisionsSql =
    "SELECT e.sample_id AS sample_id, e.decision AS decision, max(e.action_id) AS action_id "
    "FROM curation_effects e JOIN curation_actions a ON a.id = e.action_id "
    "WHERE a.undone_by IS NULL GROUP BY e.sample_id";

const char* status_name(Status s) {
  switch (s) {
    case Status::kept: return "kept";
    case Status::rejected: return "rejected";
    default: return "pending";
  }
}

std::optional<Status> parse_status(const std::string& s) {
  if (s == "pending") return Status::pending;
  if (s == "kept") return Status::kept;
  if (s == "rejected") return Status::rejected;
  return std::nullopt;
}

namespace {
bool sample_exists(Store& s, std::int64_t id) {
  auto q = s.db().prepare("SELECT 1 FROM samples WHERE id = ?");
  q.bind(1, id);
  return q.step();
}
}  // namespace

std::int64_t record_action(Store& s, const ActionSpec& a, std::vector<Decision>& decisions, std::int64_t decided_after) {
  if (a.kind != "review" && a.kind != "filter" && a.kind != "dedup" && a.kind != "decontaminate")
    throw InputError("curation action kind '" + a.kind + "' is not valid (expected review, filter, dedup or decontaminate)");
  Transaction tx(s.db());
  if (decided_after >= 0) {
    auto q = s.db().prepare("SELECT DISTINCT sample_id FROM curation_effects WHERE action_id > ?");
    q.bind(1, decided_after);
    std::set<std::int64_t> touched;
    while (q.step()) touched.insert(q.col_int(0));
    std::erase_if(decisions, [&](const Decision& d) { return touched.count(d.sample_id) > 0; });
    if (decisions.empty()) return 0;  // nothing left to record: no empty action in the log
  }
  if (a.kind == "review") {  // ids typed by a person: name a missing or repeated one (passes take theirs from queries)
    std::set<std::int64_t> seen;
    for (const auto& d : decisions) {
      if (!seen.insert(d.sample_id).second) throw InputError("sample " + std::to_string(d.sample_id) + " is named twice");
      if (!sample_exists(s, d.sample_id)) throw InputError("no sample with id " + std::to_string(d.sample_id));
    }
  }
  std::int64_t kept = 0;
  for (const auto& d : decisions) kept += d.keep;
  auto ins = s.db().prepare(
      "INSERT INTO curation_actions(kind, params_json, reason, actor, at, n_kept, n_rejected) VALUES (?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, a.kind).bind(2, a.params_json).bind(3, a.reason).bind(4, a.actor).bind(5, now_iso8601());
  ins.bind(6, kept).bind(7, std::int64_t(decisions.size()) - kept);
  ins.run();
  const auto id = s.db().last_insert_rowid();
  auto eff = s.db().prepare(
      "INSERT INTO curation_effects(sample_id, action_id, decision, reason, rule) VALUES (?, ?, ?, ?, nullif(?, ''))");
  for (const auto& d : decisions) {
    eff.bind(1, d.sample_id).bind(2, id).bind(3, d.keep ? "keep" : "reject").bind(4, d.reason).bind(5, d.rule);
    eff.run();
    eff.reset();
  }
  tx.commit();
  return id;
}

std::int64_t curate(Store& s, std::int64_t sample_id, const std::string& action, const std::string& reason,
                    const std::string& actor) {
  if (action != "keep" && action != "reject")
    throw InputError("curation action '" + action + "' is not valid (expected keep or reject)");
  std::vector<Decision> one{{sample_id, action == "keep", reason, ""}};
  return record_action(s, {"review", "{}", reason, actor}, one);
}

std::int64_t undo_action(Store& s, std::int64_t action_id, const std::string& actor) {
  Transaction tx(s.db());
  auto q = s.db().prepare("SELECT kind, undone_by FROM curation_actions WHERE id = ?");
  q.bind(1, action_id);
  if (!q.step()) throw InputError("no curation action with id " + std::to_string(action_id));
  const auto kind = q.col_text(0);
  if (kind == "undo")
    throw InputError("action " + std::to_string(action_id) + " is itself an undo; to restore, review the samples again");
  if (!q.col_null(1))
    throw InputError("action " + std::to_string(action_id) + " was already undone by action " +
                     std::to_string(q.col_int(1)));
  auto ins = s.db().prepare("INSERT INTO curation_actions(kind, reason, actor, at, undoes) VALUES ('undo', ?, ?, ?, ?)");
  ins.bind(1, "undo of " + kind + " action " + std::to_string(action_id)).bind(2, actor).bind(3, now_iso8601()).bind(4, action_id);
  ins.run();
  const auto undo_id = s.db().last_insert_rowid();
  auto upd = s.db().prepare("UPDATE curation_actions SET undone_by = ? WHERE id = ?");
  upd.bind(1, undo_id).bind(2, action_id);
  upd.run();
  tx.commit();
  return undo_id;
}

Status sample_status(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare(
      "SELECT e.decision FROM curation_effects e JOIN curation_actions a ON a.id = e.action_id "
      "WHERE e.sample_id = ? AND a.undone_by IS NULL ORDER BY e.action_id DESC LIMIT 1");
  q.bind(1, sample_id);
  if (!q.step()) return Status::pending;
  return q.col_text(0) == "keep" ? Status::kept : Status::rejected;
}

std::unordered_map<std::int64_t, Status> decided_statuses(Store& s) {
  std::unordered_map<std::int64_t, Status> out;
  auto q = s.db().prepare(std::string("SELECT sample_id, decision = 'keep' FROM (") + kLiveDecisionsSql + ")");
  while (q.step()) out.emplace(q.col_int(0), q.col_int(1) ? Status::kept : Status::rejected);
  return out;
}

std::vector<CurationRow> curation_history(Store& s, std::int64_t sample_id) {
  // The decisions on this sample, and the undos of the actions that made them, in order.
  auto q = s.db().prepare(
      "SELECT a.id, a.kind, coalesce(e.decision, ''), coalesce(e.reason, a.reason, ''), a.actor, a.at, a.params_json, "
      "a.undone_by, a.undoes FROM curation_actions a LEFT JOIN curation_effects e ON e.action_id = a.id AND e.sample_id = ?1 "
      "WHERE e.sample_id = ?1 OR a.undoes IN (SELECT action_id FROM curation_effects WHERE sample_id = ?1) ORDER BY a.id");
  q.bind(1, sample_id);
  std::vector<CurationRow> out;
  while (q.step()) {
    CurationRow r{q.col_int(0), q.col_text(1), q.col_text(2), q.col_text(3), q.col_text(4), q.col_text(5), q.col_text(6),
                  std::nullopt, std::nullopt};
    if (!q.col_null(7)) r.undone_by = q.col_int(7);
    if (!q.col_null(8)) r.undoes = q.col_int(8);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<ActionRow> list_actions(Store& s) {
  auto q = s.db().prepare(
      "SELECT id, kind, params_json, coalesce(reason, ''), actor, at, undone_by, undoes, n_kept, n_rejected "
      "FROM curation_actions ORDER BY id DESC");
  std::vector<ActionRow> out;
  while (q.step()) {
    ActionRow r{q.col_int(0), q.col_text(1), q.col_text(2), q.col_text(3), q.col_text(4), q.col_text(5),
                std::nullopt, std::nullopt, q.col_int(8), q.col_int(9)};
    if (!q.col_null(6)) r.undone_by = q.col_int(6);
    if (!q.col_null(7)) r.undoes = q.col_int(7);
    out.push_back(std::move(r));
  }
  return out;
}

SampleView sample_view(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare(
      "SELECT s.id, s.problem_id, s.sample_idx, s.seed, s.n_tokens, p.split, p.prompt, p.answer, s.completion, "
      "s.verdict, s.finish_reason, s.created_at, s.extracted_answer, s.temperature, s.top_p, s.model_id, s.run_id, "
      "m.path, m.role, m.sha256, p.difficulty "
      "FROM samples s JOIN problems p ON p.id = s.problem_id JOIN models m ON m.id = s.model_id WHERE s.id = ?");
  q.bind(1, sample_id);
  if (!q.step()) throw InputError("no sample with id " + std::to_string(sample_id));
  SampleView v;
  v.id = q.col_int(0);
  v.problem_id = q.col_int(1);
  v.sample_idx = q.col_int(2);
  v.seed = q.col_int(3);
  v.n_tokens = q.col_int(4);
  v.split = q.col_text(5);
  v.prompt = q.col_text(6);
  v.gold = q.col_text(7);
  v.completion = q.col_text(8);
  v.verdict = q.col_text(9);
  v.finish_reason = q.col_text(10);
  v.created_at = q.col_text(11);
  if (!q.col_null(12)) v.extracted_answer = q.col_text(12);
  v.temperature = q.col_double(13);
  v.top_p = q.col_double(14);
  v.model_id = q.col_int(15);
  v.run_id = q.col_int(16);
  v.model_path = q.col_text(17);
  v.model_role = q.col_text(18);
  v.model_sha256 = q.col_text(19);
  if (!q.col_null(20)) v.difficulty = int(q.col_int(20));
  {
    const auto run = config_values(run_config_toml(s, v.run_id));
    if (const auto f = run.find("prompt-format"); f != run.end() && f->second != "auto") v.prompt_format = f->second;
  }
  v.status = status_name(sample_status(s, sample_id));
  v.history = curation_history(s, sample_id);
  return v;
}

}  // namespace distill::dataset
