// dataset/reverify.cpp: see reverify.h. Samples stream through in id order; only the changes stay in memory.
#include "dataset/reverify.h"

#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "dataset/answer.h"
#include "dataset/curation.h"
#include "dataset/samples.h"

namespace distill::dataset {

namespace {

struct Stored {  // a sample's verification as stored, or as the verifier gives it now
  std::string verdict;
  std::optional<std::string> extracted, rule, verifier;
  bool operator==(const Stored&) const = default;
};

struct Change {
  std::int64_t id;
  Stored before, after;
};

// The live decision on a sample and the action that made it.
struct Live {
  std::string decision, kind, rule, params;
  std::int64_t action_id = 0;
};

std::optional<Live> live_decision(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare(
      "SELECT e.decision, a.kind, coalesce(e.rule, ''), a.params_json, a.id FROM curation_effects e "
      "JOIN curation_actions a ON a.id = e.action_id WHERE e.sample_id = ? AND a.undone_by IS NULL "
      "ORDER BY e.action_id DESC LIMIT 1");
  q.bind(1, sample_id);
  if (!q.step() || q.col_text(0) == "pending") return std::nullopt;
  return Live{q.col_text(0), q.col_text(1), q.col_text(2), q.col_text(3), q.col_int(4)};
}

// Whether a rejection rested only on the old verdict: a filter rejected it under its verdict rule, and that
// filter's other per-sample rules pass. A filter with a pass-rate window or a per-problem cap judged the sample
// among others, which one sample cannot be judged again without: those rejections stand.
bool rested_on_verdict(const Live& l, const std::string& verdict, std::optional<std::int64_t> n_tokens,
                       const std::string& completion) {
  if (l.kind != "filter" || (l.rule != "verdict" && l.rule != "unverified")) return false;
  const auto rules = FilterRules::from_json(l.params);
  if (rules.pass_rate || rules.max_per_problem) return false;
  return !failed_rule(rules, verdict, n_tokens, completion, std::nullopt);
}

void write_changes(Store& s, std::int64_t action_id, const std::vector<Change>& changes) {
  auto log = s.db().prepare(
      "INSERT INTO verdict_changes(action_id, sample_id, old_verdict, old_extracted, old_rule, old_verifier, "
      "new_verdict, new_extracted, new_rule, new_verifier) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  auto upd = s.db().prepare(
      "UPDATE samples SET verdict = ?, extracted_answer = ?, extract_rule = ?, verifier = ? WHERE id = ?");
  for (const auto& c : changes) {
    log.bind(1, action_id).bind(2, c.id).bind(3, c.before.verdict).bind(4, c.before.extracted).bind(5, c.before.rule);
    log.bind(6, c.before.verifier).bind(7, c.after.verdict).bind(8, c.after.extracted).bind(9, c.after.rule);
    log.bind(10, c.after.verifier);
    log.run();
    log.reset();
    upd.bind(1, c.after.verdict).bind(2, c.after.extracted).bind(3, c.after.rule).bind(4, c.after.verifier).bind(5, c.id);
    upd.run();
    upd.reset();
  }
}

std::int64_t count_of(Store& s, const VerifyOptions& o) {
  auto q = s.db().prepare("SELECT count(*) FROM samples WHERE ?1 IS NULL OR run_id = ?1");
  q.bind(1, o.run_id);
  q.step();
  return q.col_int(0);
}

}  // namespace

VerifyReport reverify(Store& s, const VerifyOptions& o, bool apply, const Who& who, const ProgressFn& progress) {
  if (o.run_id) {
    auto q = s.db().prepare("SELECT 1 FROM runs WHERE id = ?");
    q.bind(1, *o.run_id);
    if (!q.step()) throw InputError("--run " + std::to_string(*o.run_id) + ": the store has no run with that id");
  }
  const auto since = last_action_id(s);
  const auto total = progress ? count_of(s, o) : 0;
  VerifyReport r;
  std::vector<Change> changes;
  std::vector<Decision> reopen;
  auto q = s.db().prepare(
      "SELECT s.id, s.completion, p.answer, s.verdict, s.extracted_answer, s.extract_rule, s.verifier, s.n_tokens "
      "FROM samples s JOIN problems p ON p.id = s.problem_id WHERE ?1 IS NULL OR s.run_id = ?1 ORDER BY s.id");
  q.bind(1, o.run_id);
  while (q.step()) {
    ++r.considered;
    if (progress && r.considered % 4096 == 0) progress(r.considered, total);
    const auto id = q.col_int(0);
    const auto completion = q.col_text(1);
    const Stored before{q.col_text(3), q.col_opt_text(4), q.col_opt_text(5), q.col_opt_text(6)};
    SampleRow now;
    set_verification(now, verify_completion(completion, q.col_text(2)));
    const Stored after{now.verdict, now.extracted_answer, now.extract_rule, now.verifier};
    if (after == before) continue;
    changes.push_back({id, before, after});
    ++r.changed;
    if (after.verdict == before.verdict) {
      ++r.restamped;
      continue;
    }
    ++r.transitions[before.verdict + " -> " + after.verdict];
    if (r.examples.size() < 10)
      r.examples.emplace_back(id, before.verdict + " -> " + after.verdict + " (answer " + after.extracted.value_or("none") + ")");
    const auto live = live_decision(s, id);
    if (!live) continue;
    if (after.verdict == "correct" && live->decision == "reject") {
      if (!rested_on_verdict(*live, after.verdict, q.col_opt_int(7), completion)) {
        ++r.still_rejected;
        continue;
      }
      ++r.reopened;
      reopen.push_back({id, false,
                        "verdict now " + after.verdict + " (" + std::string(kVerifierVersion) + "); filter action #" +
                            std::to_string(live->action_id) + " rejected it only for verdict " + before.verdict,
                        "verify", true});
    } else if (before.verdict == "correct" && live->decision == "keep") {
      ++r.kept_not_correct;
    }
  }
  if (progress) progress(total, total);
  if (!apply || changes.empty()) return r;
  nlohmann::json params = {{"verifier", kVerifierVersion}, {"changed", r.changed}};
  params["run"] = o.run_id ? nlohmann::json(*o.run_id) : nlohmann::json(nullptr);
  const auto id = record_action(s, {"verify", params.dump(), who.reason, who.actor}, reopen, since,
                                [&](std::int64_t action) { write_changes(s, action, changes); });
  if (id) r.action_id = id;
  r.reopened = std::int64_t(reopen.size());  // a person may have decided on some meanwhile: theirs stands
  return r;
}

}  // namespace distill::dataset
