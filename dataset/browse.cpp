// dataset/browse.cpp: see browse.h. Every filter value is a bound parameter; the statement's text is put together
// only from fixed fragments, one per filter in use.
#include "dataset/browse.h"

#include <algorithm>
#include <charconv>
#include <array>
#include <set>
#include <unordered_map>
#include <variant>

#include "common/config_text.h"
#include "common/errors.h"

namespace distill::dataset {

namespace {

// The statement for `q`: only the filters it uses appear (so SQLite can pick the index for each, e.g. the
// states' (status, id) index for a status filter), every value bound. `what(id)` is the column list, given the
// expression of the sample id. Only the tables needed are read: a count by status reads the narrow
// sample_states alone, a count by verdict samples alone. A search drives from the full-text index in its rowid
// order and a status filter from the status index in id order, so a first page never sorts every match;
// problems are looked up per row rather than joined.
struct Built {
  std::string sql;
  std::vector<std::variant<std::int64_t, std::string>> values;  // ?1, ?2, ... in order
};
struct Tables {
  bool samples = false, states = false;  // the columns selected need them
};
Built build_list(const ListQuery& q, const std::function<std::string(const std::string& id)>& what, bool page,
                 Tables need) {
  Built b;
  const bool fts = !q.search.empty(), by_tokens = page && q.sort == ListQuery::Sort::tokens;
  need.samples = need.samples || fts || by_tokens || !q.split.empty() || !q.verdict.empty() || q.problem_id || q.run_id ||
                 q.model_id || q.min_tokens || q.max_tokens;
  need.states = need.states || !q.statuses.empty();
  if (!need.samples && !need.states) need.samples = true;
  // The id in the order the driving index yields it: the status index's for a status filter (unless sorting by
  // length, which the length index on samples serves).
  const std::string id = fts ? "samples_fts.rowid"
                         : !need.samples || (need.states && !q.statuses.empty() && !by_tokens) ? "st.sample_id"
                                                                                                : "s.id";
  b.sql = "SELECT " + what(id) + " FROM ";
  if (fts) b.sql += "samples_fts JOIN samples s ON s.id = samples_fts.rowid";
  else if (need.samples) b.sql += "samples s";
  if (need.states) b.sql += need.samples ? " JOIN sample_states st ON st.sample_id = s.id" : "sample_states st";
  b.sql += " WHERE 1";
  auto add = [&](const std::string& cond, std::variant<std::int64_t, std::string> v) {  // cond has one '?'
    b.values.push_back(std::move(v));
    const auto at = cond.find('?');
    b.sql += " AND " + cond.substr(0, at + 1) + std::to_string(b.values.size()) + cond.substr(at + 1);
  };
  if (!q.split.empty()) add("EXISTS (SELECT 1 FROM problems WHERE id = s.problem_id AND split = ?)", q.split);
  if (!q.verdict.empty()) add("s.verdict = ?", q.verdict);
  if (!q.statuses.empty()) {
    std::string in = "st.status IN (";
    for (std::size_t i = 0; i < q.statuses.size(); ++i) {
      b.values.push_back(std::string(status_name(q.statuses[i])));
      in += (i ? ", ?" : "?") + std::to_string(b.values.size());
    }
    b.sql += " AND " + in + ")";
  }
  if (q.problem_id) add("s.problem_id = ?", *q.problem_id);
  if (q.run_id) add("s.run_id = ?", *q.run_id);
  if (q.model_id) add("s.model_id = ?", *q.model_id);
  if (q.min_tokens) add("s.n_tokens >= ?", *q.min_tokens);
  if (q.max_tokens) add("s.n_tokens <= ?", *q.max_tokens);
  if (fts) add("samples_fts MATCH ?", q.search);
  if (!page) return b;
  const std::string key = "coalesce(s.n_tokens, -1)";
  const std::string dir = q.descending ? " DESC" : "", op = q.descending ? " < " : " > ";
  if (q.after && by_tokens) {
    b.values.push_back(q.after->first);
    const auto k = std::to_string(b.values.size());
    b.values.push_back(q.after->second);
    b.sql += " AND (" + key + ", " + id + ")" + op + "(?" + k + ", ?" + std::to_string(b.values.size()) + ")";
  } else if (q.after) {
    add(id + op + "?", q.after->second);
  }
  b.sql += " ORDER BY " + (by_tokens ? key + dir + ", " : std::string()) + id + dir;
  b.values.push_back(q.limit);
  b.sql += " LIMIT ?" + std::to_string(b.values.size());
  b.values.push_back(q.offset);
  b.sql += " OFFSET ?" + std::to_string(b.values.size());
  return b;
}

Stmt prepare(Store& s, const Built& b) {
  auto st = s.db().prepare(b.sql);
  for (std::size_t i = 0; i < b.values.size(); ++i)
    std::visit([&](const auto& v) { st.bind(int(i + 1), v); }, b.values[i]);
  return st;
}
// SQLite reports a bad FTS5 query only when the statement runs.
template <class F>
void run_query(const ListQuery& q, F&& f) {
  try {
    f();
  } catch (const RuntimeFailure& e) {
    // SQLite's reasons for a bad full-text query, shown without the statement; other failures stay runtime ones.
    const std::string what = e.what();
    bool query = false;
    for (const char* m : {"fts5", "syntax error", "no such column", "unterminated", "malformed MATCH"})
      query = query || what.find(m) != std::string::npos;
    if (q.search.empty() || !query) throw;
    const auto at = what.rfind("`: ");
    throw InputError("--search '" + q.search + "': not a valid full-text query (" +
                     (at == std::string::npos ? what : what.substr(at + 3)) + "). FTS5 takes words, \"quoted "
                     "phrases\", prefix*, AND, OR, NOT between two terms (a NOT b, never AND NOT) and NEAR(a b); "
                     "put text with - : + ( ) or other punctuation inside double quotes, e.g. '\"x-y\"'");
  }
}

std::string answer_snippet(const std::string& completion) {
  auto close = completion.rfind("</think>");
  std::string tail = close == std::string::npos ? completion : completion.substr(close + 8);
  std::replace(tail.begin(), tail.end(), '\n', ' ');
  const auto a = tail.find_first_not_of(' ');
  tail = a == std::string::npos ? "" : tail.substr(a);
  if (tail.size() <= 80) return tail;
  std::size_t cut = 77;  // back to a character boundary: never split a UTF-8 sequence
  while (cut > 0 && (static_cast<unsigned char>(tail[cut]) & 0xC0) == 0x80) --cut;
  return tail.substr(0, cut) + "...";
}

}  // namespace

std::vector<ListRow> list_samples(Store& s, const ListQuery& q) {
  std::vector<ListRow> out;
  const auto cols = [&](const std::string&) {
    return std::string("s.id, s.problem_id, s.n_tokens, s.sample_idx, (SELECT split FROM problems WHERE id = "
                       "s.problem_id), st.status, s.verdict, ") +
           (q.search.empty() ? "s.completion" : "snippet(samples_fts, 0, '[', ']', '...', 12)") +
           ", s.model_id, s.run_id, st.action_id, (SELECT coalesce(e.reason, '') FROM curation_effects e "
           "WHERE e.sample_id = s.id AND e.action_id = st.action_id)";
  };
  run_query(q, [&] {
    auto st = prepare(s, build_list(q, cols, true, {true, true}));
    while (st.step()) {
      std::string snip = st.col_text(7);
      if (q.search.empty()) snip = answer_snippet(snip);
      std::replace(snip.begin(), snip.end(), '\n', ' ');
      ListRow r{st.col_int(0), st.col_int(1), st.col_opt_int(2), st.col_int(3), st.col_text(4),
                st.col_text(5), st.col_text(6), snip};
      r.model_id = st.col_int(8);
      r.run_id = st.col_int(9);
      r.status_action = st.col_opt_int(10);
      r.reason = st.col_null(11) ? "" : st.col_text(11);
      out.push_back(std::move(r));
    }
  });
  return out;
}

std::int64_t count_samples(Store& s, const ListQuery& q) {
  std::int64_t n = 0;
  run_query(q, [&] {
    auto st = prepare(s, build_list(q, [](const std::string&) { return std::string("count(*)"); }, false, {}));
    st.step();
    n = st.col_int(0);
  });
  return n;
}

namespace {
std::string stamp_text(std::int64_t count, std::int64_t id_sum, std::int64_t action_sum) {
  return std::to_string(count) + ":" + std::to_string(id_sum) + ":" + std::to_string(action_sum);
}
}  // namespace

std::string match_stamp(Store& s, const ListQuery& q) {
  std::string out;
  run_query(q, [&] {
    auto st = prepare(s, build_list(q, [](const std::string& id) {
      return "count(*), total(" + id + "), total(coalesce(st.action_id, 0))";
    }, false, {false, true}));
    st.step();  // totals of integers below 2^53 are exact
    out = stamp_text(st.col_int(0), std::int64_t(st.col_double(1)), std::int64_t(st.col_double(2)));
  });
  return out;
}

ReviewOutcome review_query(Store& s, const ListQuery& q, bool keep, const std::string& reason, const std::string& actor,
                           const std::string& stamp, const std::string& params_json) {
  Transaction tx(s.db());  // the check and the action in one: no other writer between them
  std::vector<std::int64_t> ids;  // the matches and their stamp, in one pass
  std::int64_t id_sum = 0, action_sum = 0;
  run_query(q, [&] {
    std::string id;
    auto b = build_list(q, [&](const std::string& i) { return (id = i) + ", coalesce(st.action_id, 0)"; }, false, {false, true});
    b.sql += " ORDER BY " + id;
    for (auto st = prepare(s, b); st.step();) {
      ids.push_back(st.col_int(0));
      id_sum += ids.back(), action_sum += st.col_int(1);
    }
  });
  if (const auto now = stamp_text(std::int64_t(ids.size()), id_sum, action_sum); now != stamp) {
    const auto counted = stamp.substr(0, stamp.find(':')), matches = now.substr(0, now.find(':'));
    throw StaleView("the filter now matches " + (matches == counted ? "other samples than the " + counted + " counted"
                                                                    : matches + " samples, not the " + counted + " counted") +
                    ": someone changed them meanwhile; count again");
  }
  auto out = review_samples_tx(s, ids, keep, reason, actor, params_json, {});
  if (out.action_id) tx.commit();
  return out;
}

std::vector<CuratedSample> curated_samples(Store& s, const std::vector<Status>& statuses, const std::string& split) {
  std::set<std::string> wanted;
  for (auto st : statuses) wanted.insert(status_name(st));
  auto q = s.db().prepare(
      "SELECT s.id, s.problem_id, s.model_id, p.prompt, p.answer, s.completion, s.finish_reason, m.path, p.difficulty, "
      "st.status, s.n_tokens, p.split FROM samples s JOIN problems p ON p.id = s.problem_id JOIN models m ON m.id = s.model_id "
      "JOIN sample_states st ON st.sample_id = s.id "
      "WHERE (?1 = '' OR p.split = ?1) ORDER BY s.id");
  q.bind(1, split);
  std::vector<CuratedSample> out;
  while (q.step()) {
    if (!wanted.count(q.col_text(9))) continue;
    CuratedSample c;
    c.id = q.col_int(0);
    c.problem_id = q.col_int(1);
    c.model_id = q.col_int(2);
    c.prompt = q.col_text(3);
    c.answer = q.col_text(4);
    c.completion = q.col_text(5);
    c.finish_reason = q.col_text(6);
    c.model_path = q.col_text(7);
    if (!q.col_null(8)) c.difficulty = int(q.col_int(8));
    c.n_tokens = q.col_opt_int(10);
    c.split = q.col_text(11);
    out.push_back(std::move(c));
  }
  return out;
}

CurationStats curation_stats(Store& s, int buckets) {
  // Three streaming passes, each over an index or a small table, so a million samples take about a second:
  // samples (problem, verdict, length) from their covering index, problems, and the live curation decisions.
  CurationStats st;
  struct PerProblem {
    std::int64_t correct = 0, total = 0;
    std::map<std::string, std::int64_t> by_verdict;
  };
  std::unordered_map<std::int64_t, PerProblem> per_problem;
  std::map<std::int64_t, std::int64_t> by_tokens;
  {
    auto q = s.db().prepare("SELECT problem_id, verdict, n_tokens FROM samples");
    while (q.step()) {
      auto& pp = per_problem[q.col_int(0)];
      const auto v = q.col_text(1);
      ++pp.total;
      if (v == "correct") ++pp.correct;
      ++pp.by_verdict[v];
      if (!q.col_null(2)) ++by_tokens[q.col_int(2)];  // an unknown length (imported) has no bar
    }
  }
  std::int64_t total = 0;
  {
    auto q = s.db().prepare("SELECT id, split, coalesce(CAST(difficulty AS TEXT), 'none') FROM problems");
    while (q.step()) {
      auto it = per_problem.find(q.col_int(0));
      if (it == per_problem.end()) continue;
      auto& bs = st.by_split_verdict[q.col_text(1)];
      for (const auto& [v, n] : it->second.by_verdict) bs[v] += n;
      auto& pr = st.by_difficulty[q.col_text(2)];
      pr.samples += it->second.total;
      pr.correct += it->second.correct;
      ++pr.problems;
      total += it->second.total;
    }
  }
  // Live decisions per sample, in (sample, action) order: the last one is the status; the earliest pass kind
  // that rejected it is its funnel stage.
  std::int64_t kept = 0, rejected = 0, by_stage[4] = {0, 0, 0, 0};  // verdict, other filters, dedup, decontaminate
  {
    auto q = s.db().prepare(
        "SELECT e.sample_id, e.decision, a.kind, coalesce(e.rule, '') FROM curation_effects e "
        "JOIN curation_actions a ON a.id = e.action_id WHERE a.undone_by IS NULL ORDER BY e.sample_id, e.action_id");
    std::int64_t cur = -1;
    std::string last;  // the latest decision: keep, reject, or pending (reopened by data verify)
    int stage = 4;
    auto flush = [&] {
      if (cur < 0 || last == "pending") return;
      (last == "keep" ? kept : rejected) += 1;
      if (last == "reject" && stage < 4) ++by_stage[stage];  // a sample kept after all leaves no gap in the funnel
    };
    while (q.step()) {
      const auto id = q.col_int(0);
      if (id != cur) flush(), cur = id, stage = 4;
      last = q.col_text(1);
      if (last == "pending") stage = 4;  // reopened: earlier rejections no longer stand
      if (last == "reject") {
        const auto kind = q.col_text(2);
        const int k = kind == "filter" ? (q.col_text(3) == "verdict" ? 0 : 1)
                      : kind == "dedup" ? 2 : kind == "decontaminate" ? 3 : 4;
        stage = std::min(stage, k);
      }
    }
    flush();
  }
  st.by_status = {{"pending", total - kept - rejected}, {"kept", kept}, {"rejected", rejected}};
  std::int64_t left = total;
  st.funnel = {{"generated", left}};
  for (int k = 0; k < 4; ++k) {
    left -= by_stage[k];
    st.funnel.emplace_back(std::array{"correct", "filtered", "deduplicated", "decontaminated"}[std::size_t(k)], left);
  }
  st.funnel.emplace_back("kept", kept);
  if (!by_tokens.empty()) {
    const auto mx = by_tokens.rbegin()->first;
    // A round bucket width: 1, 2, 5 x 10^k, so the edges read well.
    std::int64_t w = 1;
    for (std::int64_t base = 1;; base *= 10) {
      if ((mx + base) / base <= buckets) { w = base; break; }
      if ((mx + 2 * base) / (2 * base) <= buckets) { w = 2 * base; break; }
      if ((mx + 5 * base) / (5 * base) <= buckets) { w = 5 * base; break; }
    }
    st.length_bucket = w;
    for (const auto& [n, c] : by_tokens) {
      const auto lo = (n / w) * w;
      if (st.length_histogram.empty() || st.length_histogram.back().first != lo) st.length_histogram.emplace_back(lo, 0);
      st.length_histogram.back().second += c;
    }
  }
  return st;
}

std::vector<std::pair<std::string, std::int64_t>> curation_funnel(Store& s) { return curation_stats(s).funnel; }

}  // namespace distill::dataset

namespace distill::dataset {

ProblemView problem_view(Store& s, std::int64_t problem_id) {
  auto q = s.db().prepare("SELECT id, source, split, prompt, answer, solution, difficulty FROM problems WHERE id = ?");
  q.bind(1, problem_id);
  if (!q.step()) throw InputError("no problem with id " + std::to_string(problem_id));
  ProblemView v;
  v.id = q.col_int(0);
  v.source = q.col_text(1);
  v.split = q.col_text(2);
  v.prompt = q.col_text(3);
  v.answer = q.col_text(4);
  v.solution = q.col_opt_text(5);
  if (!q.col_null(6)) v.difficulty = int(q.col_int(6));
  ListQuery lq;
  lq.problem_id = problem_id;
  lq.limit = 200;
  v.samples = list_samples(s, lq);
  v.n_samples = count_samples(s, lq);
  auto e = s.db().prepare(
      "SELECT e.run_id, e.model_id, e.sample_idx, e.n_tokens, m.role, m.path, e.verdict, e.completion, r.status "
      "FROM eval_results e JOIN models m ON m.id = e.model_id JOIN runs r ON r.id = e.run_id WHERE e.problem_id = ? "
      "ORDER BY CASE m.role WHEN 'teacher' THEN 0 WHEN 'student' THEN 1 ELSE 2 END, e.run_id DESC, e.sample_idx");
  e.bind(1, problem_id);
  while (e.step())
    v.evals.push_back({e.col_int(0), e.col_int(1), e.col_int(2), e.col_int(3), e.col_text(4), e.col_text(5), e.col_text(6),
                       e.col_text(7), e.col_text(8)});
  return v;
}

std::vector<std::string> recent_reasons(Store& s, int n) {
  auto q = s.db().prepare(
      "SELECT reason FROM curation_actions WHERE kind = 'review' AND coalesce(reason, '') <> '' GROUP BY reason "
      "ORDER BY max(id) DESC LIMIT ?");
  q.bind(1, n);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.col_text(0));
  return out;
}

Facets sample_facets(Store& s) {
  Facets f;
  for (auto q = s.db().prepare("SELECT DISTINCT split FROM problems ORDER BY split"); q.step();) f.splits.push_back(q.col_text(0));
  // Runs that can hold samples; the samples table has no run index, and a million rows are not scanned for this.
  for (auto q = s.db().prepare("SELECT id, kind || ' (' || started_at || ')' FROM runs WHERE kind IN ('generate', 'data import') "
                               "ORDER BY id");
       q.step();)
    f.runs.emplace_back(q.col_int(0), q.col_text(1));
  for (auto q = s.db().prepare("SELECT id, role || ' ' || path FROM models ORDER BY id"); q.step();)
    f.models.emplace_back(q.col_int(0), q.col_text(1));
  return f;
}

}  // namespace distill::dataset

namespace distill::dataset {


ListQuery parse_list_query(const std::function<std::optional<std::string>(const std::string& name)>& get,
                           const std::string& prefix) {
  auto flag = [&](std::string n) {
    if (prefix == "--") std::replace(n.begin(), n.end(), '_', '-');
    return prefix + n;
  };
  auto value = [&](const char* n) -> std::optional<std::string> {
    auto v = get(n);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  ListQuery q;
  if (auto v = value("status")) q.statuses = parse_statuses(*v, flag("status"));
  if (auto v = value("verdict")) {
    if (*v != "correct" && *v != "incorrect" && *v != "unparsable" && *v != "unverified")
      throw InputError(flag("verdict") + " '" + *v + "': expected correct, incorrect, unparsable or unverified");
    q.verdict = *v;
  }
  if (auto v = value("split")) q.split = *v;
  if (auto v = value("search")) q.search = *v;
  for (auto [name, field] : {std::pair{"problem", &q.problem_id}, {"run", &q.run_id}, {"model", &q.model_id},
                             {"min_tokens", &q.min_tokens}, {"max_tokens", &q.max_tokens}})
    if (auto v = value(name)) *field = whole_number(flag(name), *v);
  if (auto v = value("sort")) {
    const bool desc = (*v)[0] == '-';
    const auto key = v->substr(desc ? 1 : 0);
    if (key != "id" && key != "tokens") throw InputError(flag("sort") + " '" + *v + "': expected id, -id, tokens or -tokens");
    q.sort = key == "tokens" ? ListQuery::Sort::tokens : ListQuery::Sort::id;
    q.descending = desc;
  }
  if (auto v = value("after")) {  // KEY:ID, the last row shown (KEY is -1 for an unknown length)
    const auto colon = v->find(':');
    if (colon == std::string::npos) throw InputError(flag("after") + " '" + *v + "': expected KEY:ID");
    const auto key = v->substr(0, colon);
    q.after = {key == "-1" ? -1 : whole_number(flag("after"), key), whole_number(flag("after"), v->substr(colon + 1))};
  }
  if (auto v = value("limit")) q.limit = whole_number(flag("limit"), *v);
  return q;
}

void check_split(Store& s, const std::string& split, const std::string& flag) {
  if (split.empty()) return;
  std::string have;
  for (auto q = s.db().prepare("SELECT DISTINCT split FROM problems ORDER BY split"); q.step();) {
    if (q.col_text(0) == split) return;
    have += (have.empty() ? "" : ", ") + q.col_text(0);
  }
  throw InputError(flag + " '" + split + "': no problem has that split (the store has: " + (have.empty() ? "none" : have) + ")");
}

}  // namespace distill::dataset
