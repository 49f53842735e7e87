// dataset/curate_runs.cpp: see curate_runs.h. Samples stream through in id order; only decisions (and, for
// dedup, fingerprints) stay in memory. Rules run in a fixed order and a sample is charged to the first it fails.
#include "dataset/curate_runs.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <set>
#include <unordered_set>

#include "common/errors.h"
#include "common/sha256.h"
#include "dataset/curation.h"
#include "dataset/minhash.h"
#include "dataset/text_rules.h"

namespace distill::dataset {

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Samples in scope with the given status (pending, kept or rejected), in id order:
// fn(id, problem_id, sample_idx, n_tokens, verdict, text); `text` is the completion when with_text, else empty;
// n_tokens is nullopt where the count is unknown (imported samples).
using SampleFn = std::function<void(std::int64_t, std::int64_t, std::int64_t, std::optional<std::int64_t>,
                                    const std::string&, const std::string&)>;
void for_each_sample(Store& s, const Scope& scope, const char* status, bool with_text, const SampleFn& fn) {
  const std::string sql = std::string("SELECT s.id, s.problem_id, s.sample_idx, s.n_tokens, s.verdict") +
                          (with_text ? ", s.completion" : "") +
                          " FROM samples s JOIN problems p ON p.id = s.problem_id JOIN sample_states st ON st.sample_id = s.id "
                          "WHERE st.status = ?2 "
                          "AND (?1 = '' OR p.split = ?1) ORDER BY s.id";
  auto q = s.db().prepare(sql);
  q.bind(1, scope.split).bind(2, status);
  const std::string empty;
  while (q.step()) {
    const auto text = with_text ? q.col_text(5) : empty;
    fn(q.col_int(0), q.col_int(1), q.col_int(2), q.col_opt_int(3), q.col_text(4), text);
  }
}

// Passes decide only on pending samples: a person's keep or reject stands.
template <class F>
void for_each_candidate(Store& s, const Scope& scope, bool with_text, F&& fn) {
  for_each_sample(s, scope, "pending", with_text, fn);
}

// A split that names no problem at all is a typo, not an empty pass: refused, naming the splits there are.
void check_scope(Store& s, const Scope& scope) {
  if (scope.split.empty()) return;
  auto q = s.db().prepare("SELECT count(*) FROM problems WHERE split = ?1");
  q.bind(1, scope.split);
  q.step();
  if (q.col_int(0) > 0) return;
  std::string known;
  auto all = s.db().prepare("SELECT DISTINCT split FROM problems ORDER BY split");
  while (all.step()) known += (known.empty() ? "" : ", ") + all.col_text(0);
  throw InputError("--split '" + scope.split + "': the store has no problems in that split (" +
                   (known.empty() ? std::string("it has no problems yet") : "its splits: " + known) + ")");
}

std::int64_t count_in_scope(Store& s, const Scope& scope) {
  auto q = s.db().prepare(
      "SELECT count(*) FROM samples s JOIN problems p ON p.id = s.problem_id WHERE ?1 = '' OR p.split = ?1");
  q.bind(1, scope.split);
  q.step();
  return q.col_int(0);
}

void reject(PassReport& r, std::vector<Decision>& out, std::int64_t id, const std::string& rule, std::string reason) {
  ++r.rejected;
  ++r.by_rule[rule];
  if (r.examples.size() < 10) r.examples.emplace_back(id, reason);
  out.push_back({id, false, std::move(reason), rule});
}

// Records the rejects (when applying and there are any). Samples someone decided on while the pass was reading
// (actions after `since`) are left to that decision, checked in the writing transaction; the report's counts
// then describe what was recorded.
void finish(Store& s, PassReport& r, const std::string& kind, const std::string& params, bool apply, const Who& who,
            std::vector<Decision>& decisions, std::int64_t since) {
  if (!apply || decisions.empty()) return;
  std::sort(decisions.begin(), decisions.end(), [](const Decision& a, const Decision& b) { return a.sample_id < b.sample_id; });
  const auto before = decisions.size();
  if (auto id = record_action(s, {kind, params, who.reason, who.actor}, decisions, since)) r.action_id = id;
  if (decisions.size() == before) return;
  r.rejected = std::int64_t(decisions.size());
  r.by_rule.clear();
  for (const auto& d : decisions) ++r.by_rule[d.rule];
  std::set<std::int64_t> recorded;
  for (const auto& d : decisions) recorded.insert(d.sample_id);
  std::erase_if(r.examples, [&](const auto& e) { return recorded.count(e.first) == 0; });
}

}  // namespace

std::vector<std::int64_t> pending_samples(Store& s, const std::string& split) {
  auto q = s.db().prepare("SELECT s.id FROM samples s JOIN problems p ON p.id = s.problem_id JOIN sample_states st ON "
                          "st.sample_id = s.id WHERE st.status = 'pending' "
                          "AND (?1 = '' OR p.split = ?1) ORDER BY s.id");
  q.bind(1, split);
  std::vector<std::int64_t> out;
  while (q.step()) out.push_back(q.col_int(0));
  return out;
}

// ---- filter ---------------------------------------------------------------------------------------------
std::string FilterRules::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (correct_only) j["correct_only"] = true;
  if (min_tokens) j["min_tokens"] = *min_tokens;
  if (max_tokens) j["max_tokens"] = *max_tokens;
  if (format) j["format"] = true;
  if (single_script) j["single_script"] = true, j["max_foreign_letters"] = max_foreign_letters;
  if (max_paragraph_chars) j["max_paragraph_chars"] = *max_paragraph_chars;
  if (no_code_blocks) j["no_code_blocks"] = true;
  if (max_repetition) j["max_repetition"] = *max_repetition, j["repetition_n"] = repetition_n;
  if (pass_rate) j["pass_rate"] = {pass_rate->first, pass_rate->second};
  if (max_per_problem) j["max_per_problem"] = *max_per_problem;
  return j.dump();
}

FilterRules FilterRules::from_json(const std::string& params) {
  const auto j = nlohmann::json::parse(params);
  FilterRules r;
  r.correct_only = j.value("correct_only", false);
  if (j.contains("min_tokens")) r.min_tokens = j["min_tokens"].get<std::int64_t>();
  if (j.contains("max_tokens")) r.max_tokens = j["max_tokens"].get<std::int64_t>();
  r.format = j.value("format", false);
  r.single_script = j.value("single_script", false);
  r.max_foreign_letters = j.value("max_foreign_letters", std::int64_t(0));
  if (j.contains("max_paragraph_chars")) r.max_paragraph_chars = j["max_paragraph_chars"].get<std::int64_t>();
  r.no_code_blocks = j.value("no_code_blocks", false);
  if (j.contains("max_repetition")) r.max_repetition = j["max_repetition"].get<double>();
  r.repetition_n = j.value("repetition_n", 8);
  if (j.contains("pass_rate")) r.pass_rate = std::make_pair(j["pass_rate"][0].get<double>(), j["pass_rate"][1].get<double>());
  if (j.contains("max_per_problem")) r.max_per_problem = j["max_per_problem"].get<std::int64_t>();
  return r;
}

std::optional<std::pair<std::string, std::string>> failed_rule(const FilterRules& rules, const std::string& verdict,
                                                              std::optional<std::int64_t> n_tokens,
                                                              const std::string& completion,
                                                              std::optional<std::pair<std::int64_t, std::int64_t>> pass) {
  using R = std::pair<std::string, std::string>;
  if (rules.correct_only && verdict == "unverified")  // counted apart: nothing says these are wrong
    return R{"unverified", "verdict unverified (no gold answer to check it against)"};
  if (rules.correct_only && verdict != "correct") return R{"verdict", "verdict " + verdict};
  if (rules.min_tokens && n_tokens && *n_tokens < *rules.min_tokens)
    return R{"length", std::to_string(*n_tokens) + " tokens < " + std::to_string(*rules.min_tokens)};
  if (rules.max_tokens && n_tokens && *n_tokens > *rules.max_tokens)
    return R{"length", std::to_string(*n_tokens) + " tokens > " + std::to_string(*rules.max_tokens)};
  if (rules.pass_rate && pass) {
    const auto [correct, n] = *pass;
    const double pr = n ? double(correct) / double(n) : 0.0;
    if (pr < rules.pass_rate->first || pr > rules.pass_rate->second)
      return R{"pass-rate", "problem pass rate " + std::to_string(correct) + "/" + std::to_string(n) + " outside [" +
                                fixed(rules.pass_rate->first, 3) + ", " + fixed(rules.pass_rate->second, 3) + "]"};
  }
  if (rules.format)
    if (auto bad = format_problem(completion); !bad.empty()) return R{"format", "format: " + bad};
  const auto reasoning = reasoning_of(completion);
  if (rules.single_script) {
    auto letters = script_letters(reasoning);
    if (auto foreign = foreign_script_letters(letters); foreign > rules.max_foreign_letters) {
      std::string names;
      for (const auto& [name, n] : letters) names += (names.empty() ? "" : ", ") + name + " " + std::to_string(n);
      return R{"mixed-scripts", "mixed scripts (" + names + ")"};
    }
  }
  if (rules.max_paragraph_chars)
    if (auto len = longest_paragraph(reasoning); len > *rules.max_paragraph_chars)
      return R{"long-paragraph",
               "paragraph of " + std::to_string(len) + " chars > " + std::to_string(*rules.max_paragraph_chars)};
  if (rules.no_code_blocks && has_code_block(completion)) return R{"code-block", "code block"};
  if (rules.max_repetition)
    if (auto rep = repetition_ratio(reasoning, rules.repetition_n); rep > *rules.max_repetition)
      return R{"repetition", "repetition " + fixed(rep, 2) + " > " + fixed(*rules.max_repetition, 2) + " (" +
                                 std::to_string(rules.repetition_n) + "-grams)"};
  return std::nullopt;
}

PassReport run_filter(Store& s, const FilterRules& rules, const Scope& scope, bool apply, const Who& who,
                      const ProgressFn& progress) {
  check_scope(s, scope);
  if (rules.to_json() == "{}") throw InputError("`distill data filter` needs at least one rule (see --help)");
  if (rules.min_tokens && rules.max_tokens && *rules.min_tokens > *rules.max_tokens)
    throw InputError("--min-tokens " + std::to_string(*rules.min_tokens) + " is above --max-tokens " +
                     std::to_string(*rules.max_tokens));
  if (rules.pass_rate && !(0 <= rules.pass_rate->first && rules.pass_rate->first <= rules.pass_rate->second &&
                           rules.pass_rate->second <= 1))
    throw InputError("--pass-rate must be LO:HI with 0 <= LO <= HI <= 1");
  if (rules.max_repetition && (rules.repetition_n < 1 || *rules.max_repetition < 0 || *rules.max_repetition > 1))
    throw InputError("--max-repetition must lie in [0, 1] and --repetition-n be at least 1");
  const bool text = rules.format || rules.single_script || rules.max_paragraph_chars || rules.no_code_blocks ||
                    rules.max_repetition;
  // Pass rate of every problem over all its samples (any status): read from the covering index.
  std::unordered_map<std::int64_t, std::pair<std::int64_t, std::int64_t>> pass;  // problem -> (correct, samples)
  if (rules.pass_rate) {
    auto q = s.db().prepare("SELECT problem_id, sum(verdict = 'correct'), count(*) FROM samples GROUP BY problem_id");
    while (q.step()) pass[q.col_int(0)] = {q.col_int(1), q.col_int(2)};
  }
  const auto since = last_action_id(s);
  PassReport r;
  std::vector<Decision> decisions;
  struct Survivor {
    std::int64_t problem, idx, id;
  };
  std::vector<Survivor> survivors;
  std::unordered_map<std::int64_t, std::int64_t> held;  // per problem: kept samples, which count toward the cap
  if (rules.max_per_problem)
    for_each_sample(s, scope, "kept", false, [&](std::int64_t, std::int64_t problem, std::int64_t, std::optional<std::int64_t>,
                                                 const std::string&, const std::string&) { ++held[problem]; });
  const auto total = progress ? count_in_scope(s, scope) : 0;
  for_each_candidate(s, scope, text, [&](std::int64_t id, std::int64_t problem, std::int64_t idx,
                                         std::optional<std::int64_t> n_tokens, const std::string& verdict,
                                         const std::string& completion) {
    ++r.considered;
    if (progress && r.considered % 4096 == 0) progress(r.considered, total);
    if ((rules.min_tokens || rules.max_tokens) && !n_tokens) ++r.skipped["length unknown"];
    const auto pr = rules.pass_rate ? std::optional(pass[problem]) : std::nullopt;
    if (auto failed = failed_rule(rules, verdict, n_tokens, completion, pr))
      return reject(r, decisions, id, failed->first, std::move(failed->second));
    if (rules.max_per_problem) survivors.push_back({problem, idx, id});
  });
  if (rules.max_per_problem) {
    std::sort(survivors.begin(), survivors.end(), [](const Survivor& a, const Survivor& b) {
      return std::tie(a.problem, a.idx, a.id) < std::tie(b.problem, b.idx, b.id);
    });
    std::int64_t run = 0;
    for (std::size_t i = 0; i < survivors.size(); ++i) {
      run = (i > 0 && survivors[i].problem == survivors[i - 1].problem) ? run + 1 : held[survivors[i].problem] + 1;
      if (run > *rules.max_per_problem)
        reject(r, decisions, survivors[i].id, "per-problem-cap",
               "over the cap of " + std::to_string(*rules.max_per_problem) + " samples for problem " +
                   std::to_string(survivors[i].problem));
    }
  }
  if (progress) progress(total, total);
  finish(s, r, "filter", rules.to_json(), apply, who, decisions, since);
  return r;
}

// ---- dedup ----------------------------------------------------------------------------------------------
std::string DedupOptions::to_json() const {
  nlohmann::json j = {{"exact", exact}, {"near", near}};
  if (near) j["threshold"] = threshold, j["ngram"] = ngram, j["num_perm"] = num_perm;
  return j.dump();
}

namespace {

// Problems whose texts are near duplicates (J >= the threshold over the same shingles) form one group; samples
// are compared only within a group, so samples of two different problems never merge unless the problems do.
struct ProblemGroups {
  std::unordered_map<std::int64_t, std::int64_t> of;  // problem -> the lowest problem id of its group
  std::int64_t problems = 0, joined = 0;               // problems looked at; those that joined another's group
};

ProblemGroups group_problems(Store& s, const Scope& scope, const DedupOptions& o, const MinHasher& mh) {
  ProblemGroups g;
  std::vector<std::int64_t> ids;
  std::vector<Signature> sigs;
  auto q = s.db().prepare(
      "SELECT p.id, p.prompt FROM problems p WHERE (?1 = '' OR p.split = ?1) "
      "AND EXISTS (SELECT 1 FROM samples x WHERE x.problem_id = p.id) ORDER BY p.id");
  q.bind(1, scope.split);
  while (q.step()) {
    ids.push_back(q.col_int(0));
    sigs.push_back(mh.signature(shingle_hashes(q.col_text(1), o.ngram)));
    g.of[ids.back()] = ids.back();
  }
  g.problems = std::int64_t(ids.size());
  const auto [bands, rows] = lsh_bands_for(o.threshold, o.num_perm);
  for (const auto& d : near_duplicates(sigs, bands, rows, o.threshold)) g.of[ids[d.doc]] = ids[d.survivor], ++g.joined;
  return g;
}

std::string across(std::int64_t problem, std::int64_t other) {
  return problem == other ? "" : "; problems " + std::to_string(other) + " and " + std::to_string(problem) + " are near duplicates";
}

}  // namespace

PassReport run_dedup(Store& s, const DedupOptions& o, const Scope& scope, bool apply, const Who& who,
                     const ProgressFn& progress) {
  check_scope(s, scope);
  if (!o.exact && !o.near) throw InputError("`distill data dedup` with neither exact nor near-duplicate matching does nothing");
  if (o.near && !(o.threshold > 0 && o.threshold <= 1)) throw InputError("--threshold must lie in (0, 1]");
  if (o.ngram < 1 || o.num_perm < 8 || o.num_perm > 1024) throw InputError("--ngram must be >= 1 and --num-perm in 8..1024");
  const auto since = last_action_id(s);
  PassReport r;
  std::vector<Decision> decisions;
  MinHasher mh(o.num_perm);
  const auto groups = group_problems(s, scope, o, mh);
  // (group, sha256 of the normalised text) -> the first sample and its problem
  std::unordered_map<std::string, std::pair<std::int64_t, std::int64_t>> seen;
  std::vector<std::int64_t> ids, problems;
  std::vector<std::uint64_t> group_of;
  std::vector<Signature> sigs;
  std::size_t n_kept = 0;  // the first n_kept entries of ids are kept samples: they survive, never go
  std::int64_t cross = 0;  // rejected as a duplicate of another problem's sample
  const auto total = progress ? count_in_scope(s, scope) : 0;
  auto visit = [&](bool kept, std::int64_t id, std::int64_t problem, const std::string& completion) {
    if (!kept) ++r.considered;
    if (progress && r.considered % 1024 == 0) progress(r.considered, total);
    const auto group = groups.of.at(problem);
    if (o.exact) {
      const auto key = std::to_string(group) + ":" + sha256_hex(normalize_text(completion)).substr(0, 32);
      auto [it, fresh] = seen.emplace(key, std::make_pair(id, problem));
      if (!fresh && !kept) {
        cross += it->second.second != problem;
        return reject(r, decisions, id, "exact",
                      "exact duplicate of " + std::to_string(it->second.first) + across(problem, it->second.second));
      }
    }
    if (o.near) {
      ids.push_back(id);
      problems.push_back(problem);
      group_of.push_back(std::uint64_t(group));
      sigs.push_back(mh.signature(shingle_hashes(completion, o.ngram)));
      n_kept += kept;
    }
  };
  // Kept samples first, so a pending duplicate of one goes and the kept one stays.
  for_each_sample(s, scope, "kept", true, [&](std::int64_t id, std::int64_t problem, std::int64_t, std::optional<std::int64_t>,
                                              const std::string&, const std::string& c) { visit(true, id, problem, c); });
  for_each_candidate(s, scope, true, [&](std::int64_t id, std::int64_t problem, std::int64_t, std::optional<std::int64_t>,
                                         const std::string&, const std::string& c) { visit(false, id, problem, c); });
  if (o.near) {
    const auto [bands, rows] = lsh_bands_for(o.threshold, o.num_perm);
    for (const auto& d : near_duplicates(sigs, bands, rows, o.threshold, group_of))
      if (d.doc >= n_kept) {
        cross += problems[d.doc] != problems[d.survivor];
        reject(r, decisions, ids[d.doc], "near",
               "near duplicate of " + std::to_string(ids[d.survivor]) + " (J~" + fixed(d.jaccard, 2) + ")" +
                   across(problems[d.doc], problems[d.survivor]));
      }
  }
  r.compared.push_back("completions compared within each problem" +
                       (o.near ? " (J >= " + fixed(o.threshold, 2) + " over " + std::to_string(o.ngram) +
                                     "-token shingles that keep digits, operators and symbols)"
                               : std::string(" (exact text)")));
  r.compared.push_back(std::to_string(groups.joined) + " of " + std::to_string(groups.problems) +
                       " problems are near duplicates of another problem's text; only their samples were compared "
                       "across problems (" + std::to_string(cross) + " rejected that way)");
  if (progress) progress(total, total);
  finish(s, r, "dedup", o.to_json(), apply, who, decisions, since);
  return r;
}

// ---- decontamination ------------------------------------------------------------------------------------
std::string DecontamOptions::to_json() const {
  nlohmann::json j = {{"ngram", ngram}, {"max_df", max_df}, {"compare", completions ? "problems+completions" : "problems"}};
  if (benchmark_name.empty()) j["against_split"] = against_split;
  else j["benchmark"] = benchmark_name, j["benchmark_problems"] = benchmark.size();
  return j.dump();
}

namespace {

// One benchmark text: a problem's statement or its solution.
struct BenchText {
  std::string text, where;  // where: "eval problem 12", "aime.jsonl #3"
  std::int64_t problem;     // index of its benchmark problem
  bool solution;
};

std::vector<BenchText> benchmark_texts(Store& s, const DecontamOptions& o, std::unordered_set<std::int64_t>& in_store) {
  std::vector<BenchText> texts;
  std::int64_t n = 0;
  if (o.benchmark_name.empty()) {
    auto q = s.db().prepare("SELECT id, prompt, coalesce(solution, '') FROM problems WHERE split = ? ORDER BY id");
    q.bind(1, o.against_split);
    while (q.step()) {
      const auto where = o.against_split + " problem " + std::to_string(q.col_int(0));
      in_store.insert(q.col_int(0));
      texts.push_back({q.col_text(1), where, n, false});
      if (o.completions) texts.push_back({q.col_text(2), where, n, true});
      ++n;
    }
    if (in_store.empty()) throw InputError("no problems in split '" + o.against_split + "' to decontaminate against");
    return texts;
  }
  for (const auto& p : o.benchmark) {
    const auto where = o.benchmark_name + " #" + std::to_string(n + 1);
    texts.push_back({p.prompt, where, n, false});
    if (o.completions && p.solution) texts.push_back({*p.solution, where, n, true});
    ++n;
  }
  return texts;
}

}  // namespace

PassReport run_decontaminate(Store& s, const DecontamOptions& o, const Scope& scope, bool apply,
                             const Who& who, const ProgressFn& progress) {
  check_scope(s, scope);
  if (o.ngram < 3) throw InputError("--ngram must be at least 3 (shorter n-grams match ordinary phrases)");
  const auto n = std::size_t(o.ngram);
  std::unordered_set<std::int64_t> bench_problems;  // the benchmark's own problems, when it is a split of the store
  const auto texts = benchmark_texts(s, o, bench_problems);
  const auto n_bench = texts.empty() ? 0 : texts.back().problem + 1;
  // Template wording: n-grams found in more than max_df of the benchmark problems (a template's fixed text, or
  // a phrase every problem uses) say nothing about contamination. Every word such an n-gram covers is masked,
  // in benchmark and training text alike, and only n-grams of unmasked words are compared. Else a templated
  // family matches on "<one operation> + the template's tail", which two different problems share by chance.
  std::unordered_map<std::uint64_t, std::pair<std::int64_t, std::int64_t>> df;  // hash -> (problems, last counted)
  for (const auto& t : texts) {
    std::string lowered;
    for (auto h : positional_ngram_hashes(words(t.text, lowered), o.ngram)) {
      auto& [count, last] = df.try_emplace(h, 0, -1).first->second;
      if (last != t.problem) ++count, last = t.problem;
    }
  }
  const auto max_df = std::max<std::int64_t>(2, std::int64_t(o.max_df * double(n_bench)));  // a pair is no template
  std::unordered_set<std::uint64_t> boilerplate;
  for (const auto& [h, c] : df)
    if (c.first > max_df) boilerplate.insert(h);
  df.clear();
  // Calls f(i, hash) for each n-gram of w whose words no template n-gram covers.
  auto content_ngrams = [&](const std::vector<std::string_view>& w, auto&& f) {
    if (w.size() < n) return;
    const auto h = positional_ngram_hashes(w, o.ngram);
    std::vector<char> masked(w.size(), 0);
    for (std::size_t i = 0; i < h.size(); ++i)
      if (boilerplate.count(h[i])) std::fill(masked.begin() + std::ptrdiff_t(i), masked.begin() + std::ptrdiff_t(i + n), 1);
    std::size_t run = 0;  // unmasked words ending at i
    for (std::size_t i = 0; i < w.size(); ++i) {
      run = masked[i] ? 0 : run + 1;
      if (run >= n && f(i + 1 - n, h[i + 1 - n])) return;
    }
  };
  struct Hit {
    std::string text, where;  // the n-gram; the benchmark text it is in ("eval problem 12's solution")
  };
  std::unordered_map<std::uint64_t, Hit> bench_problem, bench_any;  // content n-gram -> its first benchmark text
  for (const auto& t : texts) {
    std::string lowered;
    auto w = words(t.text, lowered);
    content_ngrams(w, [&](std::size_t i, std::uint64_t h) {
      std::string g;
      for (std::size_t k = i; k < i + n; ++k) g += (k > i ? " " : "") + std::string(w[k]);
      Hit hit{std::move(g), t.where + (t.solution ? "'s solution" : "'s problem")};
      if (!t.solution) bench_problem.try_emplace(h, hit);
      bench_any.try_emplace(h, std::move(hit));
      return false;
    });
  }
  // A whole benchmark problem copied into training is contamination even when template masking leaves it no
  // n-gram of its own (a short templated problem): normalised problems are also matched whole.
  std::unordered_map<std::string, Hit> whole;
  for (const auto& t : texts)
    if (!t.solution) whole.try_emplace(normalize_text(t.text), Hit{"(the whole problem)", t.where + "'s problem"});
  auto first_hit = [&](const std::string& text, const std::unordered_map<std::uint64_t, Hit>& bench) -> const Hit* {
    std::string lowered;
    const Hit* found = nullptr;
    content_ngrams(words(text, lowered), [&](std::size_t, std::uint64_t h) {
      if (auto it = bench.find(h); it != bench.end()) found = &it->second;
      return found != nullptr;
    });
    return found;
  };
  // Problems in scope, each compared once with the benchmark's problems.
  std::unordered_map<std::int64_t, const Hit*> problem_hit;
  {
    auto q = s.db().prepare("SELECT id, prompt FROM problems WHERE ?1 = '' OR split = ?1");
    q.bind(1, scope.split);
    while (q.step())
      if (!bench_problems.count(q.col_int(0))) {
        const Hit* hit = first_hit(q.col_text(1), bench_problem);
        if (!hit)
          if (auto it = whole.find(normalize_text(q.col_text(1))); it != whole.end()) hit = &it->second;
        problem_hit[q.col_int(0)] = hit;
      }
  }
  const auto since = last_action_id(s);
  PassReport r;
  r.ignored_ngrams = std::int64_t(boilerplate.size());
  std::vector<Decision> decisions;
  std::map<std::string, std::int64_t> matched;
  const auto total = progress ? count_in_scope(s, scope) : 0;
  for_each_candidate(s, scope, o.completions, [&](std::int64_t id, std::int64_t problem, std::int64_t,
                                                  std::optional<std::int64_t>, const std::string&,
                                                  const std::string& completion) {
    if (bench_problems.count(problem)) return;  // the benchmark's own samples are not training data
    ++r.considered;
    if (progress && r.considered % 1024 == 0) progress(r.considered, total);
    const Hit* hit = problem_hit[problem];
    std::string what = "problem";
    if (!hit && o.completions) hit = first_hit(completion, bench_any), what = "completion";
    if (!hit) return;
    ++matched[hit->text];
    reject(r, decisions, id, what,
           "its " + what + " ~ " + hit->where + ": " + std::to_string(o.ngram) + "-gram \"" + hit->text + "\"");
  });
  const auto bench_name = o.benchmark_name.empty() ? "split '" + o.against_split + "'" : o.benchmark_name;
  r.compared.push_back("training problems compared with the " + std::to_string(n_bench) + " problems of " + bench_name +
                       " (" + std::to_string(o.ngram) + "-grams of the problem text, and whole problems)");
  r.compared.push_back(o.completions ? "completions compared with the benchmark's problems and solutions"
                                     : "completions not compared (--compare-completions compares them with the "
                                       "benchmark's problems and solutions)");
  // The 20 n-grams that flagged the most samples.
  std::vector<std::pair<std::string, std::int64_t>> top(matched.begin(), matched.end());
  std::stable_sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (std::size_t i = 0; i < top.size() && i < 20; ++i) r.matched.insert(top[i]);
  if (progress) progress(total, total);
  finish(s, r, "decontaminate", o.to_json(), apply, who, decisions, since);
  return r;
}

}  // namespace distill::dataset
