// dataset/browse.cpp: see browse.h. Every filter is a bound parameter; the two statement shapes (with and
// without full-text search) are fixed strings.
#include "dataset/browse.h"

#include <algorithm>

#include "common/errors.h"

namespace distill::dataset {

namespace {

std::string list_sql(bool search, bool count) {
  std::string sql = count ? "SELECT count(*)"
                          : std::string("SELECT s.id, s.problem_id, s.n_tokens, s.sample_idx, p.split, coalesce(d.decision, ''), "
                                        "s.verdict, ") +
                                (search ? "snippet(samples_fts, 0, '[', ']', '...', 12)" : "s.completion");
  sql += std::string(" FROM samples s JOIN problems p ON p.id = s.problem_id LEFT JOIN (") + kLiveDecisionsSql +
         ") d ON d.sample_id = s.id";
  if (search) sql += " JOIN samples_fts ON samples_fts.rowid = s.id";
  sql +=
      " WHERE (?1 = '' OR p.split = ?1) AND (?2 = '' OR s.verdict = ?2) AND (?3 IS NULL OR s.problem_id = ?3) "
      "AND (?4 IS NULL OR s.n_tokens >= ?4) AND (?5 IS NULL OR s.n_tokens <= ?5) "
      "AND (?6 = 'any' OR coalesce(d.decision, 'pending') = ?6)";
  if (search) sql += " AND samples_fts MATCH ?9";
  if (!count) sql += " ORDER BY s.id LIMIT ?7 OFFSET ?8";
  return sql;
}

Stmt prepare_list(Store& s, const ListQuery& q, bool count) {
  auto st = s.db().prepare(list_sql(!q.search.empty(), count));
  const char* status = !q.status ? "any" : *q.status == Status::kept ? "keep" : *q.status == Status::rejected ? "reject" : "pending";
  st.bind(1, q.split).bind(2, q.verdict).bind(3, q.problem_id).bind(4, q.min_tokens).bind(5, q.max_tokens).bind(6, status);
  if (!count) st.bind(7, q.limit).bind(8, q.offset);
  if (!q.search.empty()) st.bind(9, q.search);
  return st;
}

// SQLite reports a bad FTS5 query only when the statement runs.
template <class F>
void run_query(const ListQuery& q, F&& f) {
  try {
    f();
  } catch (const RuntimeFailure& e) {
    if (q.search.empty()) throw;
    throw InputError("--search '" + q.search + "': not a valid full-text query (" + e.what() + ")");
  }
}

std::string answer_snippet(const std::string& completion) {
  auto close = completion.rfind("</think>");
  std::string tail = close == std::string::npos ? completion : completion.substr(close + 8);
  std::replace(tail.begin(), tail.end(), '\n', ' ');
  const auto a = tail.find_first_not_of(' ');
  tail = a == std::string::npos ? "" : tail.substr(a);
  return tail.size() > 80 ? tail.substr(0, 77) + "..." : tail;
}

}  // namespace

std::vector<ListRow> list_samples(Store& s, const ListQuery& q) {
  std::vector<ListRow> out;
  run_query(q, [&] {
    auto st = prepare_list(s, q, false);
    while (st.step()) {
      const auto d = st.col_text(5);
      std::string snip = st.col_text(7);
      if (q.search.empty()) snip = answer_snippet(snip);
      std::replace(snip.begin(), snip.end(), '\n', ' ');
      out.push_back({st.col_int(0), st.col_int(1), st.col_int(2), st.col_int(3), st.col_text(4),
                     d == "keep" ? "kept" : d == "reject" ? "rejected" : "pending", st.col_text(6), snip});
    }
  });
  return out;
}

std::int64_t count_samples(Store& s, const ListQuery& q) {
  std::int64_t n = 0;
  run_query(q, [&] {
    auto st = prepare_list(s, q, true);
    st.step();
    n = st.col_int(0);
  });
  return n;
}

CurationStats curation_stats(Store& s, int buckets) {
  CurationStats st;
  {  // one pass over samples for split x verdict x difficulty
    auto q = s.db().prepare(
        "SELECT p.split, s.verdict, coalesce(CAST(p.difficulty AS TEXT), 'none'), count(*) "
        "FROM samples s JOIN problems p ON p.id = s.problem_id GROUP BY 1, 2, 3");
    while (q.step()) {
      const auto n = q.col_int(3);
      st.by_split_verdict[q.col_text(0)][q.col_text(1)] += n;
      auto& pr = st.by_difficulty[q.col_text(2)];
      pr.samples += n;
      if (q.col_text(1) == "correct") pr.correct += n;
    }
  }
  {
    auto q = s.db().prepare(
        "SELECT coalesce(CAST(difficulty AS TEXT), 'none'), count(*) FROM problems p "
        "WHERE EXISTS (SELECT 1 FROM samples s WHERE s.problem_id = p.id) GROUP BY 1");
    while (q.step()) st.by_difficulty[q.col_text(0)].problems = q.col_int(1);
  }
  std::int64_t total = 0;
  for (const auto& [split, v] : st.by_split_verdict)
    for (const auto& [verdict, n] : v) total += n;
  st.by_status = {{"pending", total}, {"kept", 0}, {"rejected", 0}};
  {
    auto q = s.db().prepare(std::string("SELECT decision, count(*) FROM (") + kLiveDecisionsSql + ") GROUP BY 1");
    while (q.step()) {
      const auto name = q.col_text(0) == "keep" ? "kept" : "rejected";
      st.by_status[name] = q.col_int(1);
      st.by_status["pending"] -= q.col_int(1);
    }
  }
  if (total > 0) {
    auto q = s.db().prepare("SELECT max(n_tokens) FROM samples");
    q.step();
    const auto mx = q.col_int(0);
    // A round bucket width: 1, 2, 5 x 10^k, so the edges read well.
    std::int64_t w = 1;
    for (std::int64_t base = 1;; base *= 10) {
      if ((mx + 1 + base - 1) / base <= buckets) { w = base; break; }
      if ((mx + 1 + 2 * base - 1) / (2 * base) <= buckets) { w = 2 * base; break; }
      if ((mx + 1 + 5 * base - 1) / (5 * base) <= buckets) { w = 5 * base; break; }
    }
    st.length_bucket = w;
    auto h = s.db().prepare("SELECT n_tokens / ?1, count(*) FROM samples GROUP BY 1 ORDER BY 1");
    h.bind(1, w);
    while (h.step()) st.length_histogram.emplace_back(h.col_int(0) * w, h.col_int(1));
  }
  return st;
}

}  // namespace distill::dataset
