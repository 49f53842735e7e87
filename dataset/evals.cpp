// dataset/evals.cpp: see evals.h.
#include "dataset/evals.h"

#include <set>

#include "common/errors.h"

#include "dataset/answer.h"

namespace distill::dataset {

void insert_eval_results(Store& s, std::int64_t run_id, std::int64_t model_id, const std::vector<EvalRow>& rows) {
  Transaction tx(s.db());
  auto ins = s.db().prepare(
      "INSERT INTO eval_results(run_id, model_id, problem_id, sample_idx, completion, verdict, n_tokens, latency_ms, "
      "verifier) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& r : rows) {
    ins.bind(1, run_id).bind(2, model_id).bind(3, r.problem_id).bind(4, r.sample_idx).bind(5, r.completion);
    ins.bind(6, r.verdict).bind(7, r.n_tokens).bind(8, r.latency_ms).bind(9, kVerifierVersion);  // it gave the verdict
    ins.run();
    ins.reset();
  }
  tx.commit();
}

std::vector<std::pair<std::int64_t, std::string>> unfinished_eval_runs(Store& s, const std::string& sha256) {
  auto q = s.db().prepare(
      "SELECT r.id, r.config_toml FROM runs r WHERE r.kind = 'eval' AND r.status != 'ok' AND EXISTS (SELECT 1 FROM "
      "eval_results e JOIN models m ON m.id = e.model_id WHERE e.run_id = r.id AND m.sha256 = ?) ORDER BY r.id DESC");
  q.bind(1, sha256);
  std::vector<std::pair<std::int64_t, std::string>> out;
  while (q.step()) out.emplace_back(q.col_int(0), q.col_text(1));
  return out;
}

std::int64_t newest_finished_eval_run(Store& s, const std::string& sha256) {
  auto q = s.db().prepare(
      "SELECT max(e.run_id) FROM eval_results e JOIN models m ON m.id = e.model_id JOIN runs r ON r.id = e.run_id "
      "WHERE r.status = 'ok' AND m.sha256 = ?");
  q.bind(1, sha256);
  return q.step() && !q.col_null(0) ? q.col_int(0) : 0;
}

std::vector<EvalRunInfo> latest_eval_runs(Store& s, const EvalRunSelection& sel) {
  for (auto id : sel.runs) {
    auto r = s.db().prepare("SELECT kind, status FROM runs WHERE id = ?");
    r.bind(1, id);
    if (!r.step()) throw InputError("--runs: no run with id " + std::to_string(id));
    if (r.col_text(0) != "eval" || r.col_text(1) != "ok")
      throw InputError("--runs: run " + std::to_string(id) + " is a " + r.col_text(1) + " '" + r.col_text(0) +
                       "' run, not a finished eval run (`distill runs list` shows them)");
  }
  std::string in_runs, in_models;
  for (auto id : sel.runs) in_runs += (in_runs.empty() ? "" : ", ") + std::to_string(id);  // integers, not text
  for (auto id : sel.models) in_models += (in_models.empty() ? "" : ", ") + std::to_string(id);
  const std::string where = !sel.runs.empty() ? "r.id IN (" + in_runs + ")"
                            : "r.status = 'ok' AND r.hidden = 0" + (sel.models.empty() ? "" : " AND m.id IN (" + in_models + ")");
  // One row per run when runs are named (two runs of one model may be compared), else per model.
  auto q = s.db().prepare(
      std::string(sel.runs.empty() ? "SELECT max(e.run_id)" : "SELECT e.run_id") +
      ", m.id, m.n_params, m.n_active_params, m.role, m.path, m.arch, m.sha256 "
      "FROM eval_results e JOIN models m ON m.id = e.model_id JOIN runs r ON r.id = e.run_id WHERE " + where +
      (sel.runs.empty() ? " GROUP BY m.id" : " GROUP BY e.run_id") +
      " ORDER BY CASE m.role WHEN 'teacher' THEN 0 WHEN 'student' THEN 1 ELSE 2 END, m.id, 1");
  std::vector<EvalRunInfo> out;
  std::set<std::int64_t> models_found;
  while (q.step()) {
    models_found.insert(q.col_int(1));
    EvalRunInfo i;
    i.run_id = q.col_int(0);
    i.model_id = q.col_int(1);
    i.n_params = q.col_int(2);
    i.n_active_params = q.col_int(3);
    i.role = q.col_text(4);
    i.path = q.col_text(5);
    i.arch = q.col_text(6);
    i.sha256 = q.col_text(7);
    out.push_back(std::move(i));
  }
  for (auto id : sel.runs.empty() ? sel.models : std::vector<std::int64_t>{})
    if (!models_found.count(id))
      throw InputError("--models: model " + std::to_string(id) + " has no finished eval run that is not hidden");
  for (auto& i : out) {
    auto r = s.db().prepare("SELECT started_at, config_toml FROM runs WHERE id = ?");
    r.bind(1, i.run_id);
    if (r.step()) i.started_at = r.col_text(0), i.config_toml = r.col_text(1);
  }
  return out;
}

std::vector<EvalResult> eval_results_of(Store& s, std::int64_t run_id) {
  auto q = s.db().prepare(
      "SELECT e.problem_id, e.sample_idx, e.n_tokens, e.completion, e.verdict, p.answer, p.prompt, p.difficulty, "
      "e.latency_ms FROM eval_results e JOIN problems p ON p.id = e.problem_id WHERE e.run_id = ? "
      "ORDER BY e.problem_id, e.sample_idx");
  q.bind(1, run_id);
  std::vector<EvalResult> out;
  while (q.step()) {
    EvalResult r;
    r.problem_id = q.col_int(0);
    r.sample_idx = q.col_int(1);
    r.n_tokens = q.col_int(2);
    r.completion = q.col_text(3);
    r.verdict = q.col_text(4);
    r.gold = q.col_text(5);
    r.prompt = q.col_text(6);
    if (!q.col_null(7)) r.difficulty = int(q.col_int(7));
    r.latency_ms = q.col_double(8);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<EvalRunRow> eval_runs(Store& s) {
  std::vector<EvalRunRow> out;
  for (auto q = s.db().prepare("SELECT r.id, (SELECT count(*) FROM eval_results WHERE run_id = r.id), r.status, r.started_at, "
                               "r.hidden FROM runs r WHERE r.kind = 'eval' ORDER BY r.id DESC");
       q.step();)
    out.push_back({q.col_int(0), q.col_int(1), q.col_text(2), q.col_text(3), q.col_int(4) != 0});
  return out;
}

namespace {
// Every filter bound; the statement's text only says which are in use.
Stmt eval_answer_stmt(Store& s, const EvalAnswerQuery& q, bool count) {
  std::string sql = count ? "SELECT count(*)"
                          : "SELECT e.run_id, e.model_id, e.problem_id, e.sample_idx, e.n_tokens, m.role, m.path, p.split, "
                            "e.verdict, e.completion";
  sql += " FROM eval_results e JOIN models m ON m.id = e.model_id JOIN problems p ON p.id = e.problem_id WHERE 1";
  if (q.run_id) sql += " AND e.run_id = ?1";
  if (q.model_id) sql += " AND e.model_id = ?2";
  if (q.problem_id) sql += " AND e.problem_id = ?3";
  if (!q.verdict.empty()) sql += " AND e.verdict = ?4";
  if (!q.split.empty()) sql += " AND p.split = ?5";
  if (!count) sql += " ORDER BY e.run_id DESC, e.problem_id, e.sample_idx LIMIT ?6 OFFSET ?7";
  auto st = s.db().prepare(sql);
  if (q.run_id) st.bind(1, *q.run_id);
  if (q.model_id) st.bind(2, *q.model_id);
  if (q.problem_id) st.bind(3, *q.problem_id);
  if (!q.verdict.empty()) st.bind(4, q.verdict);
  if (!q.split.empty()) st.bind(5, q.split);
  if (!count) st.bind(6, q.limit).bind(7, q.offset);
  return st;
}
}  // namespace

std::vector<EvalAnswerRow> list_eval_answers(Store& s, const EvalAnswerQuery& q) {
  std::vector<EvalAnswerRow> out;
  for (auto st = eval_answer_stmt(s, q, false); st.step();)
    out.push_back({st.col_int(0), st.col_int(1), st.col_int(2), st.col_int(3), st.col_int(4), st.col_text(5), st.col_text(6),
                   st.col_text(7), st.col_text(8), st.col_text(9)});
  return out;
}

std::int64_t count_eval_answers(Store& s, const EvalAnswerQuery& q) {
  auto st = eval_answer_stmt(s, q, true);
  st.step();
  return st.col_int(0);
}

}  // namespace distill::dataset
