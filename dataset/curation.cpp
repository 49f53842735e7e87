// dataset/curation.cpp: see curation.h.
#include "dataset/curation.h"

#include "common/errors.h"

namespace distill::dataset {

namespace {
bool sample_exists(Store& s, std::int64_t id) {
  auto q = s.db().prepare("SELECT 1 FROM samples WHERE id = ?");
  q.bind(1, id);
  return q.step();
}
}  // namespace

std::int64_t curate(Store& s, std::int64_t sample_id, const std::string& action, const std::string& reason,
                    const std::string& actor) {
  if (action != "keep" && action != "reject")
    throw InputError("curation action '" + action + "' is not valid (expected keep or reject)");
  Transaction tx(s.db());
  if (!sample_exists(s, sample_id)) throw InputError("no sample with id " + std::to_string(sample_id));
  auto ins = s.db().prepare("INSERT INTO curation(sample_id, action, reason, actor, at) VALUES (?, ?, ?, ?, ?)");
  ins.bind(1, sample_id).bind(2, action).bind(3, reason).bind(4, actor).bind(5, now_iso8601());
  ins.run();
  const auto id = s.db().last_insert_rowid();
  tx.commit();
  return id;
}

std::int64_t undo_action(Store& s, std::int64_t action_id, const std::string& actor) {
  Transaction tx(s.db());
  auto q = s.db().prepare("SELECT sample_id, action, undone_by FROM curation WHERE id = ?");
  q.bind(1, action_id);
  if (!q.step()) throw InputError("no curation action with id " + std::to_string(action_id));
  const auto sample_id = q.col_int(0);
  const auto action = q.col_text(1);
  if (action == "undo")
    throw InputError("action " + std::to_string(action_id) + " is itself an undo; to restore, review the sample again");
  if (!q.col_null(2))
    throw InputError("action " + std::to_string(action_id) + " was already undone by action " +
                     std::to_string(q.col_int(2)));
  auto ins = s.db().prepare("INSERT INTO curation(sample_id, action, reason, actor, at) VALUES (?, 'undo', ?, ?, ?)");
  ins.bind(1, sample_id).bind(2, "undo of action " + std::to_string(action_id)).bind(3, actor).bind(4, now_iso8601());
  ins.run();
  const auto undo_id = s.db().last_insert_rowid();
  auto upd = s.db().prepare("UPDATE curation SET undone_by = ? WHERE id = ?");
  upd.bind(1, undo_id).bind(2, action_id);
  upd.run();
  tx.commit();
  return undo_id;
}

std::string sample_status(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare(
      "SELECT action FROM curation WHERE sample_id = ? AND undone_by IS NULL AND action IN ('keep', 'reject') "
      "ORDER BY id DESC LIMIT 1");
  q.bind(1, sample_id);
  if (!q.step()) return "pending";
  return q.col_text(0) == "keep" ? "kept" : "rejected";
}

std::vector<CurationRow> curation_history(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare(
      "SELECT id, sample_id, action, coalesce(reason, ''), actor, at, undone_by FROM curation WHERE sample_id = ? "
      "ORDER BY id");
  q.bind(1, sample_id);
  std::vector<CurationRow> out;
  while (q.step()) {
    CurationRow r{q.col_int(0), q.col_int(1), q.col_text(2), q.col_text(3), q.col_text(4), q.col_text(5), std::nullopt};
    if (!q.col_null(6)) r.undone_by = q.col_int(6);
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
  v.status = sample_status(s, sample_id);
  v.history = curation_history(s, sample_id);
  return v;
}

}  // namespace distill::dataset
