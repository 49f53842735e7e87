// dataset/samples.cpp: see samples.h.
#include "dataset/samples.h"

namespace distill::dataset {

std::int64_t upsert_model(Store& s, const ModelRow& m) {
  Transaction tx(s.db());
  auto ins = s.db().prepare(
      "INSERT INTO models(role, path, arch, n_params, n_active_params, sha256) VALUES (?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(sha256) DO NOTHING");
  ins.bind(1, m.role).bind(2, m.path).bind(3, m.arch).bind(4, m.n_params).bind(5, m.n_active_params).bind(6, m.sha256);
  ins.run();
  auto q = s.db().prepare("SELECT id FROM models WHERE sha256 = ?");
  q.bind(1, m.sha256);
  q.step();
  const auto id = q.col_int(0);
  tx.commit();
  return id;
}

std::optional<std::int64_t> model_id_of(Store& s, const std::string& sha256) {
  auto q = s.db().prepare("SELECT id FROM models WHERE sha256 = ?");
  q.bind(1, sha256);
  if (!q.step()) return std::nullopt;
  return q.col_int(0);
}

std::optional<std::string> model_role(Store& s, const std::string& sha256) {
  auto q = s.db().prepare("SELECT role FROM models WHERE sha256 = ?");
  q.bind(1, sha256);
  if (!q.step()) return std::nullopt;
  return q.col_text(0);
}

std::vector<ProblemRef> problems_of_split(Store& s, const std::string& split, std::int64_t limit) {
  auto q = s.db().prepare(
      "SELECT id, prompt, answer, difficulty, content_hash FROM problems WHERE split = ? ORDER BY id LIMIT ?");
  q.bind(1, split).bind(2, limit > 0 ? limit : std::int64_t(-1));
  std::vector<ProblemRef> out;
  while (q.step()) {
    ProblemRef p{q.col_int(0), q.col_text(1), q.col_text(2), std::nullopt, q.col_text(4)};
    if (!q.col_null(3)) p.difficulty = int(q.col_int(3));
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<GoldExample> gold_examples(Store& s, const std::string& split) {
  auto q = s.db().prepare(
      "SELECT prompt, solution, answer, difficulty FROM problems WHERE split = ? AND solution IS NOT NULL ORDER BY id");
  q.bind(1, split);
  std::vector<GoldExample> out;
  while (q.step()) {
    GoldExample g{q.col_text(0), q.col_text(1), q.col_text(2), std::nullopt};
    if (!q.col_null(3)) g.difficulty = int(q.col_int(3));
    out.push_back(std::move(g));
  }
  return out;
}

StoredSampleKeys stored_sample_keys(Store& s, std::int64_t model_id) {
  auto q = s.db().prepare(
      "SELECT s.problem_id, s.sample_idx, s.seed, s.temperature, s.top_p, s.max_tokens, l.sample_id IS NOT NULL, "
      "s.run_id FROM samples s LEFT JOIN sample_logprobs l ON l.sample_id = s.id WHERE s.model_id = ?");
  q.bind(1, model_id);
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, StoredSampleSettings> out;
  while (q.step())
    out[{q.col_int(0), q.col_int(1), q.col_int(2)}] = {q.col_double(3), q.col_double(4), q.col_int(5), q.col_int(6) != 0,
                                                       q.col_int(7)};
  return out;
}

std::string run_config_toml(Store& s, std::int64_t run_id) {
  auto q = s.db().prepare("SELECT config_toml FROM runs WHERE id = ?");
  q.bind(1, run_id);
  return q.step() ? q.col_text(0) : std::string();
}

void insert_train_steps(Store& s, std::int64_t run_id, const std::vector<TrainStepRow>& rows) {
  Transaction tx(s.db());
  auto ins = s.db().prepare(
      "INSERT OR REPLACE INTO train_steps(run_id, step, loss, lr, tokens, at, val_loss) VALUES (?, ?, ?, ?, ?, ?, ?)");
  const auto now = now_iso8601();
  for (const auto& r : rows) {
    ins.bind(1, run_id).bind(2, r.step).bind(3, r.loss).bind(4, r.lr).bind(5, r.tokens).bind(6, now).bind(7, r.val_loss);
    ins.run();
    ins.reset();
  }
  tx.commit();
}

std::optional<TopK> sample_logprobs(Store& s, std::int64_t sample_id) {
  auto q = s.db().prepare("SELECT k, blob FROM sample_logprobs WHERE sample_id = ?");
  q.bind(1, sample_id);
  if (!q.step()) return std::nullopt;
  const auto* p = static_cast<const char*>(sqlite3_column_blob(q.raw(), 1));
  const auto n = std::size_t(sqlite3_column_bytes(q.raw(), 1));
  return decode_topk(std::string_view(p ? p : "", n), q.col_int(0),
                     s.path() + ": sample " + std::to_string(sample_id));
}

void set_verification(SampleRow& r, const Verification& v) {
  r.verdict = to_string(v.verdict);
  r.extracted_answer = v.extracted;
  r.extract_rule = v.rule ? std::optional<std::string>(v.rule) : std::nullopt;
  r.verifier = kVerifierVersion;
}

std::int64_t insert_samples(Store& s, const std::vector<SampleRow>& rows, const std::vector<RemoteRequestRow>& requests) {
  std::int64_t n = 0;
  Transaction tx(s.db());
  auto ins = s.db().prepare(
      // Only the resume key may make a row a no-op; any other constraint (a NULL from a NaN, say) must fail.
      "INSERT INTO samples(problem_id, model_id, run_id, sample_idx, seed, temperature, top_p, max_tokens, "
      "completion, extracted_answer, verdict, n_tokens, finish_reason, created_at, extract_rule, verifier) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(problem_id, model_id, sample_idx, seed) DO NOTHING");
  auto lp = s.db().prepare("INSERT INTO sample_logprobs(sample_id, k, blob) VALUES (?, ?, ?)");
  const auto now = now_iso8601();
  for (const auto& r : rows) {
    ins.bind(1, r.problem_id).bind(2, r.model_id).bind(3, r.run_id).bind(4, r.sample_idx).bind(5, r.seed);
    ins.bind(6, r.temperature).bind(7, r.top_p).bind(8, r.max_tokens).bind(9, r.completion);
    ins.bind(10, r.extracted_answer).bind(11, r.verdict).bind(12, r.n_tokens).bind(13, r.finish_reason).bind(14, now);
    ins.bind(15, r.extract_rule).bind(16, r.verifier);
    ins.run();
    const bool inserted = s.db().changes() > 0;
    ins.reset();
    if (!inserted) continue;
    ++n;
    if (r.topk > 0) {
      lp.bind(1, s.db().last_insert_rowid()).bind(2, r.topk).bind_blob(3, r.logprobs.data(), r.logprobs.size());
      lp.run();
      lp.reset();
    }
  }
  if (!requests.empty()) {
    auto rq = s.db().prepare(
        "INSERT INTO remote_requests(run_id, model_id, problem_id, sample_idx, seed, status, attempts, http_status, "
        "error, server_model, system_fingerprint, response_id, prompt_tokens, completion_tokens, latency_ms, "
        "params_json, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& r : requests) {
      rq.bind(1, r.run_id).bind(2, r.model_id).bind(3, r.problem_id).bind(4, r.sample_idx).bind(5, r.seed);
      rq.bind(6, std::string(r.ok ? "ok" : "failed")).bind(7, r.attempts).bind(8, r.http_status).bind(9, r.error);
      rq.bind(10, r.server_model).bind(11, r.system_fingerprint).bind(12, r.response_id).bind(13, r.prompt_tokens);
      rq.bind(14, r.completion_tokens).bind(15, r.latency_ms).bind(16, r.params_json).bind(17, now);
      rq.run();
      rq.reset();
    }
  }
  tx.commit();
  return n;
}

std::int64_t count_unresolved_failures(Store& s, std::int64_t model_id) {
  auto q = s.db().prepare(
      "SELECT COUNT(*) FROM (SELECT DISTINCT r.problem_id, r.sample_idx, r.seed FROM remote_requests r "
      "WHERE r.model_id = ? AND r.status = 'failed' AND NOT EXISTS (SELECT 1 FROM samples x WHERE "
      "x.problem_id = r.problem_id AND x.model_id = r.model_id AND x.sample_idx = r.sample_idx AND x.seed = r.seed))");
  q.bind(1, model_id);
  q.step();
  return q.col_int(0);
}

}  // namespace distill::dataset
