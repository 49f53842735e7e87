// dataset/evals.cpp: see evals.h.
#include "dataset/evals.h"

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

std::vector<EvalRunInfo> latest_eval_runs(Store& s) {
  auto q = s.db().prepare(
      "SELECT max(e.run_id), m.id, m.n_params, m.n_active_params, m.role, m.path, m.arch, m.sha256 "
      "FROM eval_results e JOIN models m ON m.id = e.model_id JOIN runs r ON r.id = e.run_id WHERE r.status = 'ok' "
      "GROUP BY m.id ORDER BY CASE m.role WHEN 'teacher' THEN 0 WHEN 'student' THEN 1 ELSE 2 END, m.id");
  std::vector<EvalRunInfo> out;
  while (q.step()) {
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

}  // namespace distill::dataset
