// dataset/curation.cpp: see curation.h.
#include "dataset/curation.h"

#include <algorithm>
#include <set>

#include "common/config_text.h"
#include "common/errors.h"
#include "dataset/samples.h"

namespace distill::dataset {

// The latest live decision per sample; a 'pending' one (data verify reopening a sample) leaves it undecided.
const char* const kLiveDecisionsSql =
    "SELECT sample_id, decision, action_id FROM ("
    "SELECT e.sample_id AS sample_id, e.decision AS decision, max(e.action_id) AS action_id "
    "FROM curation_effects e JOIN curation_actions a ON a.id = e.action_id "
    "WHERE a.undone_by IS NULL GROUP BY e.sample_id) WHERE decision <> 'pending'";

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

std::vector<Status> parse_statuses(const std::string& list, const std::string& flag) {
  std::vector<Status> out;
  for (const auto& item : split_list(list)) {
    const auto st = parse_status(item);
    if (!st) throw InputError(flag + " '" + item + "': expected pending, kept or rejected (or a comma list of them)");
    if (std::find(out.begin(), out.end(), *st) == out.end()) out.push_back(*st);
  }
  if (out.empty()) throw InputError(flag + " needs at least one of pending, kept, rejected");
  return out;
}

namespace {
// The verdicts a 'verify' action changed go back to what they were, inside the caller's transaction. A later
// live 'verify' action that changed the same samples would have its verdicts overwritten: refused.
void restore_verdicts(Store& s, std::int64_t action_id) {
  auto later = s.db().prepare(
      "SELECT min(c2.action_id) FROM verdict_changes c1 JOIN verdict_changes c2 ON c2.sample_id = c1.sample_id "
      "JOIN curation_actions a ON a.id = c2.action_id WHERE c1.action_id = ?1 AND c2.action_id > ?1 AND a.undone_by IS NULL");
  later.bind(1, action_id);
  if (later.step() && !later.col_null(0))
    throw InputError("verify action " + std::to_string(action_id) + " changed verdicts that verify action " +
                     std::to_string(later.col_int(0)) + " changed again; undo that one first");
  s.db().prepare(
          "UPDATE samples SET verdict = c.old_verdict, extracted_answer = c.old_extracted, extract_rule = c.old_rule, "
          "verifier = c.old_verifier FROM verdict_changes c WHERE c.action_id = ? AND c.sample_id = samples.id")
      .bind(1, action_id)
      .run();
}

bool sample_exists(Store& s, std::int64_t id) {
  auto q = s.db().prepare("SELECT 1 FROM samples WHERE id = ?");
  q.bind(1, id);
  return q.step();
}
}  // namespace

namespace {
// record_action's body, inside the caller's transaction.
std::int64_t record_in_tx(Store& s, const ActionSpec& a, std::vector<Decision>& decisions, std::int64_t decided_after,
                          const std::function<void(std::int64_t)>& also) {
  if (a.kind != "review" && a.kind != "filter" && a.kind != "dedup" && a.kind != "decontaminate" && a.kind != "verify")
    throw InputError("curation action kind '" + a.kind +
                     "' is not valid (expected review, filter, dedup, decontaminate or verify)");
  if (decided_after >= 0) {
    auto q = s.db().prepare("SELECT DISTINCT sample_id FROM curation_effects WHERE action_id > ?");
    q.bind(1, decided_after);
    std::set<std::int64_t> touched;
    while (q.step()) touched.insert(q.col_int(0));
    std::erase_if(decisions, [&](const Decision& d) { return touched.count(d.sample_id) > 0; });
    if (decisions.empty() && !also) return 0;  // nothing left to record: no empty action in the log
  }
  if (a.kind == "review") {  // ids typed by a person: name a missing or repeated one (passes take theirs from queries)
    std::set<std::int64_t> seen;
    for (const auto& d : decisions) {
      if (!seen.insert(d.sample_id).second) throw InputError("sample " + std::to_string(d.sample_id) + " is named twice");
      if (!sample_exists(s, d.sample_id)) throw InputError("no sample with id " + std::to_string(d.sample_id));
    }
  }
  std::int64_t kept = 0, reopened = 0;
  for (const auto& d : decisions) kept += d.keep && !d.reopen, reopened += d.reopen;
  auto ins = s.db().prepare(
      "INSERT INTO curation_actions(kind, params_json, reason, actor, at, n_kept, n_rejected) VALUES (?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, a.kind).bind(2, a.params_json).bind(3, a.reason).bind(4, a.actor).bind(5, now_iso8601());
  ins.bind(6, kept).bind(7, std::int64_t(decisions.size()) - kept - reopened);
  ins.run();
  const auto id = s.db().last_insert_rowid();
  auto eff = s.db().prepare(
      "INSERT INTO curation_effects(sample_id, action_id, decision, reason, rule) VALUES (?, ?, ?, ?, nullif(?, ''))");
  for (const auto& d : decisions) {
    eff.bind(1, d.sample_id).bind(2, id).bind(3, d.reopen ? "pending" : d.keep ? "keep" : "reject").bind(4, d.reason);
    eff.bind(5, d.rule);
    eff.run();
    eff.reset();
  }
  // The newest action is the latest on each of its samples: their status is its decision.
  s.db().prepare(
          "UPDATE sample_states SET action_id = e.action_id, status = CASE e.decision WHEN 'keep' THEN 'kept' "
          "WHEN 'reject' THEN 'rejected' ELSE 'pending' END FROM curation_effects e "
          "WHERE e.action_id = ?1 AND e.sample_id = sample_states.sample_id")
      .bind(1, id)
      .run();
  if (also) also(id);
  return id;
}
}  // namespace

std::int64_t record_action(Store& s, const ActionSpec& a, std::vector<Decision>& decisions, std::int64_t decided_after,
                           const std::function<void(std::int64_t)>& also) {
  Transaction tx(s.db());
  const auto id = record_in_tx(s, a, decisions, decided_after, also);
  if (id != 0 || also) tx.commit();
  return id;
}

void refresh_status(Db& db, const std::string& where, std::int64_t param) {
  // One statement: both columns are computed from the row as it was, and `where` is read before either changes.
  auto q = db.prepare(
      "UPDATE sample_states SET action_id = (SELECT max(e.action_id) FROM curation_effects e JOIN curation_actions a "
      "ON a.id = e.action_id WHERE e.sample_id = sample_states.sample_id AND a.undone_by IS NULL), "
      "status = coalesce((SELECT CASE e.decision WHEN 'keep' THEN 'kept' WHEN 'reject' THEN 'rejected' ELSE 'pending' END "
      "FROM curation_effects e JOIN curation_actions a ON a.id = e.action_id WHERE e.sample_id = sample_states.sample_id "
      "AND a.undone_by IS NULL ORDER BY e.action_id DESC LIMIT 1), 'pending')" + (where.empty() ? "" : " WHERE " + where));
  if (where.find("?1") != std::string::npos) q.bind(1, param);
  q.run();
}

std::int64_t last_action_id(Store& s) {
  auto q = s.db().prepare("SELECT coalesce(max(id), 0) FROM curation_actions");
  q.step();
  return q.col_int(0);
}

std::optional<std::int64_t> status_action(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare("SELECT action_id FROM sample_states WHERE sample_id = ?");
  q.bind(1, sample_id);
  if (!q.step()) throw InputError("no sample with id " + std::to_string(sample_id));
  return q.col_opt_int(0);
}

namespace {
// The stale-view refusal: the sample's latest live action is not the one the writer was shown.
void check_seen(Store& s, std::int64_t id, std::optional<std::int64_t> seen) {
  auto q = s.db().prepare(
      "SELECT st.status, st.action_id, a.kind, a.actor, a.at FROM sample_states st "
      "LEFT JOIN curation_actions a ON a.id = st.action_id WHERE st.sample_id = ?");
  q.bind(1, id);
  if (!q.step()) throw InputError("no sample with id " + std::to_string(id));
  const auto now = q.col_opt_int(1);
  if (now == seen) return;
  const std::string what = now ? q.col_text(2) + " action " + std::to_string(*now) + " by " + q.col_text(3) + " at " +
                                     q.col_text(4)
                               : "its last decision was undone";
  throw StaleView("sample " + std::to_string(id) + " changed since it was shown: it is now " + q.col_text(0) + " (" +
                  what + "); reload it and decide again");
}
}  // namespace

ReviewOutcome review_samples(Store& s, const std::vector<std::int64_t>& ids, bool keep, const std::string& reason,
                             const std::string& actor, const std::string& params_json,
                             const std::map<std::int64_t, std::optional<std::int64_t>>& seen) {
  Transaction tx(s.db());
  auto out = review_samples_tx(s, ids, keep, reason, actor, params_json, seen);
  if (out.action_id) tx.commit();
  return out;
}

ReviewOutcome review_samples_tx(Store& s, const std::vector<std::int64_t>& ids, bool keep, const std::string& reason,
                                const std::string& actor, const std::string& params_json,
                                const std::map<std::int64_t, std::optional<std::int64_t>>& seen) {
  ReviewOutcome out;
  for (const auto& [id, head] : seen) check_seen(s, id, head);
  std::set<std::int64_t> named;
  std::vector<Decision> ds;
  // Unchanged only when a person's review already decided so: a person confirming a filter's decision changes
  // who stands behind it (data verify reopens a rejection that rested on a filter's verdict rule alone).
  auto live = s.db().prepare(
      "SELECT a.kind, e.decision FROM sample_states st JOIN curation_effects e ON e.sample_id = st.sample_id AND "
      "e.action_id = st.action_id JOIN curation_actions a ON a.id = e.action_id WHERE st.sample_id = ?");
  const std::string want = keep ? "keep" : "reject";
  for (auto id : ids) {
    if (!named.insert(id).second) continue;
    if (!sample_exists(s, id)) throw InputError("no sample with id " + std::to_string(id));
    live.bind(1, id);
    const bool same = live.step() && live.col_text(0) == "review" && live.col_text(1) == want;
    live.reset();
    if (same) {
      out.unchanged.push_back(id);
      continue;
    }
    ds.push_back({id, keep, reason, ""});
  }
  if (ds.empty()) return out;
  out.action_id = record_in_tx(s, {"review", params_json, reason, actor}, ds, -1, {});
  for (const auto& d : ds) out.changed.push_back(d.sample_id);
  return out;
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
  if (kind == "verify") restore_verdicts(s, action_id);
  // Only samples whose status this action set can change: a later live action still stands over the others.
  refresh_status(s.db(), "sample_id IN (SELECT sample_id FROM curation_effects WHERE action_id = ?1) AND action_id = ?1",
                 action_id);
  tx.commit();
  return undo_id;
}

Status sample_status(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare("SELECT status FROM sample_states WHERE sample_id = ?");
  q.bind(1, sample_id);
  if (!q.step()) return Status::pending;
  return parse_status(q.col_text(0)).value_or(Status::pending);
}

std::unordered_map<std::int64_t, Status> decided_statuses(Store& s) {
  std::unordered_map<std::int64_t, Status> out;
  auto q = s.db().prepare("SELECT sample_id, status = 'kept' FROM sample_states WHERE status <> 'pending'");
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
      "m.path, m.role, m.sha256, p.difficulty, s.extract_rule, s.verifier, (SELECT kind FROM runs WHERE id = s.run_id) "
      "FROM samples s JOIN problems p ON p.id = s.problem_id JOIN models m ON m.id = s.model_id WHERE s.id = ?");
  q.bind(1, sample_id);
  if (!q.step()) throw InputError("no sample with id " + std::to_string(sample_id));
  SampleView v;
  v.id = q.col_int(0);
  v.problem_id = q.col_int(1);
  v.sample_idx = q.col_int(2);
  v.seed = q.col_int(3);
  v.n_tokens = q.col_opt_int(4);
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
  v.extract_rule = q.col_opt_text(21);
  v.verifier = q.col_opt_text(22);
  {
    const auto run = config_values(run_config_toml(s, v.run_id));
    if (const auto f = run.find("prompt-format"); f != run.end() && f->second != "auto") v.prompt_format = f->second;
    if (q.col_text(23) == "data import") {
      const auto file = run.find("file"), format = run.find("format");
      v.imported_from = (file != run.end() ? file->second : std::string("?")) + " (" +
                        (format != run.end() ? format->second : std::string("?")) + ")";
    }
  }
  v.sampled_here = v.model_sha256.rfind("import:", 0) != 0;  // chat imports name their teacher "import:FORMAT:FILE"
  auto c = s.db().prepare(
      "SELECT c.action_id, c.old_verdict, c.new_verdict, coalesce(c.old_verifier, ''), coalesce(c.new_verifier, ''), "
      "a.undone_by IS NOT NULL FROM verdict_changes c JOIN curation_actions a ON a.id = c.action_id "
      "WHERE c.sample_id = ? ORDER BY c.action_id");
  c.bind(1, sample_id);
  while (c.step())
    v.verdict_changes.push_back({c.col_int(0), c.col_text(1), c.col_text(2), c.col_text(3), c.col_text(4), c.col_int(5) != 0});
  v.status = status_name(sample_status(s, sample_id));
  v.status_action = status_action(s, sample_id);
  v.history = curation_history(s, sample_id);
  return v;
}

}  // namespace distill::dataset
