// tests/test_curate_runs.cpp: the bulk curation passes on real SQLite stores (samples inserted directly):
// every filter rule, pass-rate window and per-problem cap, exact and near dedup, decontamination against a
// split and a benchmark file, dry run vs --apply, exact undo, listing with FTS5, stats, export -> import round
// trips, the v1 -> v2 migration, kill -9 in the middle of dedup, and a reader beside an open writer (WAL).
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/errors.h"
#include "dataset/browse.h"
#include "dataset/curate_runs.h"
#include "dataset/curation.h"
#include "dataset/samples.h"
#include "dataset/text_rules.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
using namespace distill::dataset;
using test::run_distill;

namespace {

struct Spec {
  std::string problem;  // prompt; problems are created on first use
  std::string completion;
  std::string verdict = "correct";
  std::int64_t n_tokens = 20;
  std::string split = "train";
};

// A store holding the given samples (in order: sample ids 1..N); returns the store.
std::unique_ptr<Store> make_store(const std::string& path, const std::vector<Spec>& specs) {
  auto s = Store::open(path, OpenMode::create);
  std::vector<ProblemRow> probs;
  for (const auto& sp : specs) {
    ProblemRow p;
    p.source = "test";
    p.split = sp.split;
    p.prompt = sp.problem;
    p.answer = "8";
    p.difficulty = 1 + int(sp.problem.size() % 3);
    p.meta_json = R"({"task":"chain","steps":2})";  // not in key order: a round trip must keep it as written
    probs.push_back(p);
  }
  s->insert_problems(probs, "test", "");
  const auto model = upsert_model(*s, {"teacher", "/t", "DeepseekV3ForCausalLM", 10, 5, std::string(64, 'b')});
  const auto run = s->begin_run("generate", "");
  std::vector<SampleRow> rows;
  std::map<std::string, std::int64_t> idx;
  for (const auto& sp : specs) {
    auto q = s->db().prepare("SELECT id FROM problems WHERE content_hash = ?");
    q.bind(1, content_hash(sp.problem));
    REQUIRE(q.step());
    SampleRow r;
    r.problem_id = q.col_int(0);
    r.model_id = model;
    r.run_id = run;
    r.sample_idx = idx[sp.problem]++;
    r.seed = 1000 + std::int64_t(rows.size());
    r.temperature = 0.6;
    r.top_p = 0.95;
    r.max_tokens = 256;
    r.completion = sp.completion;
    r.extracted_answer = "8";
    r.verdict = sp.verdict;
    r.n_tokens = sp.n_tokens;
    r.finish_reason = "eos";
    rows.push_back(r);
  }
  REQUIRE(insert_samples(*s, rows) == std::int64_t(rows.size()));
  return s;
}

std::string good(const std::string& steps) { return "<think>\n" + steps + "\n</think>\n\\boxed{8}"; }

std::string status_of(Store& s, std::int64_t id) { return status_name(sample_status(s, id)); }

std::int64_t scalar(const std::string& db, const std::string& sql) {
  auto v = test::query_scalar(db, sql);
  REQUIRE(v.has_value());
  return std::int64_t(*v);
}

// `words` random words; different seeds give unrelated texts.
std::string long_text(int words, int seed) {
  std::mt19937_64 rng(std::uint64_t(seed) * 7919 + 1);
  std::string t;
  for (int i = 0; i < words; ++i) t += "w" + std::to_string(rng() % 1000000) + " ";
  return t;
}

}  // namespace

TEST_CASE("filter: each rule rejects its sample, a dry run writes nothing, undo restores every status") {
  test::TempDir d;
  std::string para(2100, 'x');
  auto s = make_store(d / "s.db", {
      {"p1", good("3+5=8")},
      {"p1", good("3+5=8"), "incorrect"},
      {"p2", good("a long one"), "correct", 900},
      {"p2", "<think>\n3+5=8\n\\boxed{8}"},
      {"p3", good("3+5=8 \xE7\x84\xB6\xE5\x90\x8E done")},
      {"p3", good(para)},
      {"p4", good("```\nprint(8)\n```")},
      {"p4", good("and then and then and then and then and then and then and then and then and then and then")},
  });
  FilterRules r;
  r.correct_only = r.format = r.single_script = r.no_code_blocks = true;
  r.max_tokens = 512;
  r.max_paragraph_chars = 2000;
  r.max_repetition = 0.5;
  r.repetition_n = 4;
  auto dry = run_filter(*s, r, {}, false, {"t", ""});
  CHECK(dry.considered == 8);
  CHECK(dry.rejected == 7);
  for (const char* rule : {"verdict", "length", "format", "mixed-scripts", "long-paragraph", "code-block", "repetition"}) {
    INFO(rule);
    CHECK(dry.by_rule[rule] == 1);
  }
  CHECK_FALSE(dry.action_id);
  CHECK(scalar(d / "s.db", "SELECT count(*) FROM curation_actions") == 0);

  auto applied = run_filter(*s, r, {}, true, {"t", ""});
  CHECK(run_filter(*s, r, {}, true, {"t", ""}).action_id == std::nullopt);  // nothing left to reject: no empty action
  REQUIRE(applied.action_id);
  CHECK(status_of(*s, 1) == "pending");
  for (std::int64_t id = 2; id <= 8; ++id) CHECK(status_of(*s, id) == "rejected");
  auto h = curation_history(*s, 3);
  REQUIRE(h.size() == 1);
  CHECK(h[0].kind == "filter");
  CHECK(h[0].reason == "900 tokens > 512");
  CHECK(nlohmann::json::parse(h[0].params_json)["max_tokens"] == 512);
  // A second run sees only what is not rejected.
  CHECK(run_filter(*s, r, {}, false, {"t", ""}).considered == 1);
  undo_action(*s, *applied.action_id, "t");
  for (std::int64_t id = 1; id <= 8; ++id) CHECK(status_of(*s, id) == "pending");
}

TEST_CASE("filter: pass-rate window and per-problem cap, a kept sample stands and holds its place, undo restores") {
  test::TempDir d;
  auto s = make_store(d / "s.db", {
      {"easy", good("1")}, {"easy", good("2")}, {"easy", good("3")}, {"easy", good("4")},
      {"mid", good("1")}, {"mid", good("2"), "incorrect"}, {"mid", good("3")}, {"mid", good("4"), "incorrect"},
  });
  FilterRules pr;
  pr.pass_rate = std::make_pair(0.1, 0.9);
  auto rep = run_filter(*s, pr, {}, true, {"t", ""});
  CHECK(rep.by_rule["pass-rate"] == 4);  // "easy" is solved every time: nothing left to learn from it
  for (std::int64_t id = 1; id <= 4; ++id) CHECK(status_of(*s, id) == "rejected");

  const auto keep5 = curate(*s, 5, "keep", "looks fine", "alice");
  FilterRules cap;
  cap.correct_only = true;
  cap.max_per_problem = 1;
  auto rc = run_filter(*s, cap, {}, true, {"t", ""});
  CHECK(rc.considered == 3);  // pending only: alice's keep of sample 5 stands
  CHECK(rc.by_rule["verdict"] == 2);
  CHECK(rc.by_rule["per-problem-cap"] == 1);  // sample 7: sample 5 (lower index) holds the one place
  CHECK(status_of(*s, 5) == "kept");
  CHECK(status_of(*s, 7) == "rejected");
  undo_action(*s, *rc.action_id, "t");
  CHECK(status_of(*s, 7) == "pending");
  CHECK(status_of(*s, 5) == "kept");
  undo_action(*s, keep5, "t");
  CHECK(status_of(*s, 5) == "pending");
  CHECK_THROWS_AS(run_filter(*s, FilterRules{}, {}, false, {"t", ""}), InputError);  // no rule at all
}

TEST_CASE("dedup: exact duplicates after normalisation and near duplicates go, the lowest id survives") {
  test::TempDir d;
  const auto base = long_text(120, 1);
  auto near = base;
  near.replace(near.find("w"), 1, "v");  // one word of 120 changed
  auto s = make_store(d / "s.db", {
      {"a", good(base)},
      {"b", good(long_text(120, 2))},
      {"a", "  " + good(base) + "\n"},  // same text, other whitespace
      {"a", good(near)},
      {"c", good(long_text(120, 3))},
  });
  auto rep = run_dedup(*s, {}, {}, true, {"t", ""});
  CHECK(rep.considered == 5);
  CHECK(rep.by_rule["exact"] == 1);
  CHECK(rep.by_rule["near"] == 1);
  REQUIRE(rep.examples.size() == 2);
  CHECK(rep.examples[0].first == 3);
  CHECK(rep.examples[0].second == "exact duplicate of 1");
  CHECK(rep.examples[1].first == 4);
  CHECK_THAT(rep.examples[1].second, Catch::StartsWith("near duplicate of 1 (J~0.9"));
  for (std::int64_t id : {1, 2, 5}) CHECK(status_of(*s, id) == "pending");
  // Deterministic: a dry run on a fresh copy finds the same.
  test::TempDir d2;
  auto s2 = make_store(d2 / "s.db", {{"a", good(base)}, {"b", good(long_text(120, 2))}, {"a", "  " + good(base) + "\n"},
                                     {"a", good(near)}, {"c", good(long_text(120, 3))}});
  CHECK(run_dedup(*s2, {}, {}, false, {"t", ""}).examples == rep.examples);
  DedupOptions exact_only;
  exact_only.near = false;
  CHECK(run_dedup(*s2, exact_only, {}, false, {"t", ""}).rejected == 1);
}

TEST_CASE("dedup: a kept sample wins over its pending duplicate, the threshold decides, undo restores") {
  test::TempDir d;
  const auto base = long_text(120, 1);
  auto change = [&](int words, int first) {  // `words` words, 20 apart from word `first` on, replaced
    auto t = base;
    for (int i = 0; i < words; ++i) {
      std::size_t at = 0;
      for (int k = 0; k < 20 * i + first; ++k) at = t.find(' ', at + 1);
      t.replace(t.find('w', at), 1, "v");
    }
    return t;
  };
  auto s = make_store(d / "s.db", {
      {"a", good(base)},        // 1
      {"a", good(base)},        // 2: the same text, kept by a person below
      {"a", good(change(1, 5))},   // 3: J ~ 0.92 to the base
      {"a", good(change(5, 15))},  // 4: J ~ 0.65 to the base, ~0.6 to 3
  });
  curate(*s, 2, "keep", "the better problem", "alice");
  DedupOptions strict;
  strict.threshold = 0.95;
  auto r95 = run_dedup(*s, strict, {}, false, {"t", ""});
  CHECK(r95.by_rule["exact"] == 1);
  CHECK(r95.by_rule["near"] == 0);
  REQUIRE(r95.examples.size() == 1);
  CHECK(r95.examples[0] == std::make_pair(std::int64_t(1), std::string("exact duplicate of 2")));  // kept one wins
  CHECK(run_dedup(*s, {}, {}, false, {"t", ""}).rejected == 2);  // 0.8: sample 3 too
  DedupOptions loose;
  loose.threshold = 0.5;
  auto applied = run_dedup(*s, loose, {}, true, {"t", ""});
  CHECK(applied.rejected == 3);  // 1, 3 and 4; the kept sample 2 stays
  CHECK(status_of(*s, 2) == "kept");
  for (std::int64_t id : {1, 3, 4}) CHECK(status_of(*s, id) == "rejected");
  REQUIRE(applied.action_id);
  undo_action(*s, *applied.action_id, "t");
  for (std::int64_t id : {1, 3, 4}) CHECK(status_of(*s, id) == "pending");
  CHECK(status_of(*s, 2) == "kept");
}

TEST_CASE("dedup: operators and digits count, and samples of different problems merge only when the problems do") {
  test::TempDir d;
  // Two different problems whose worked answers differ only in operators: word shingles saw the same text.
  std::string plus, minus;
  for (int i = 0; i < 30; ++i) {
    plus += "step " + std::to_string(i) + ": 7+5=2 (mod 10), carry " + std::to_string(i % 3) + ". ";
    minus += "step " + std::to_string(i) + ": 7-5=2 (mod 10), carry " + std::to_string(i % 3) + ". ";
  }
  const auto story = long_text(40, 9);
  auto s = make_store(d / "s.db", {
      {"What is 7+5 mod 10?", good(plus)},                   // 1
      {"What is 7-5 mod 10?", good(minus)},                  // 2: other problem, other operators: stays
      {"Unrelated problem one", good(long_text(100, 4))},    // 3
      {"Unrelated problem two", good(long_text(100, 4))},    // 4: same text, but an unrelated problem: stays
      {story + " Find x.", good(long_text(100, 5))},         // 5
      {story + " Find x!", good(long_text(100, 5))},         // 6: near-duplicate problem, same text: goes
  });
  std::string lowered;
  CHECK(tokens("7+5=2", lowered) == std::vector<std::string_view>{"7", "+", "5", "=", "2"});
  CHECK(words("7+5=2", lowered) == std::vector<std::string_view>{"7", "5", "2"});
  CHECK(shingle_hashes(plus, 5) != shingle_hashes(minus, 5));
  CHECK(ngram_hashes(plus, 5) == ngram_hashes(minus, 5));  // what dedup used to compare
  auto rep = run_dedup(*s, {}, {}, false, {"t", ""});
  CHECK(rep.considered == 6);
  CHECK(rep.rejected == 1);
  REQUIRE(rep.examples.size() == 1);
  CHECK(rep.examples[0] ==
        std::make_pair(std::int64_t(6), std::string("exact duplicate of 5; problems 5 and 6 are near duplicates")));
  REQUIRE(rep.compared.size() == 2);
  CHECK(rep.compared[1] ==
        "1 of 6 problems are near duplicates of another problem's text; only their samples were compared across "
        "problems (1 rejected that way)");
  DedupOptions near_only;
  near_only.exact = false;
  auto near = run_dedup(*s, near_only, {}, false, {"t", ""});
  REQUIRE(near.examples.size() == 1);
  CHECK_THAT(near.examples[0].second, Catch::StartsWith("near duplicate of 5 (J~1.00); problems 5 and 6"));
}

TEST_CASE("decontaminate: undo restores what a run rejected, and the funnel counts each stage") {
  test::TempDir d;
  auto s = make_store(d / "s.db", {
      {"Jo buys seven red apples at the market on a sunny Monday morning, how many?", good("e"), "correct", 20, "eval"},
      {"Before lunch Jo buys seven red apples at the market on a sunny Monday", good("1")},  // 2: contaminated
      {"Something else", good("2")},                                                         // 3
      {"Something else", good("2")},                                                         // 4: duplicate of 3
      {"A third one", good("3"), "incorrect"},                                               // 5
      {"A fourth one", good("4")},                                                           // 6
  });
  FilterRules correct;
  correct.correct_only = true;
  run_filter(*s, correct, {"train"}, true, {"t", ""});
  run_dedup(*s, {}, {"train"}, true, {"t", ""});
  auto dc = run_decontaminate(*s, {}, {"train"}, true, {"t", ""});
  REQUIRE(dc.action_id);
  CHECK(status_of(*s, 2) == "rejected");
  std::vector<Decision> accept;
  for (auto id : pending_samples(*s, "train")) accept.push_back({id, true, "fine", ""});
  REQUIRE(accept.size() == 2);  // 3 and 6
  record_action(*s, {"review", "{}", "fine", "t"}, accept);
  // 6 samples (the eval problem's own stays pending through every stage) -> 5 correct -> 4 after dedup -> 3
  // after decontamination -> 2 kept
  std::vector<std::pair<std::string, std::int64_t>> want = {{"generated", 6},    {"correct", 5},        {"filtered", 5},
                                                            {"deduplicated", 4}, {"decontaminated", 3}, {"kept", 2}};
  CHECK(curation_funnel(*s) == want);
  undo_action(*s, *dc.action_id, "t");
  CHECK(status_of(*s, 2) == "pending");
  CHECK(status_of(*s, 4) == "rejected");  // the dedup run stands
}

TEST_CASE("decontaminate: shared 8-grams with eval problems are flagged and reported, template boilerplate is not") {
  test::TempDir d;
  const std::string tail = " keeping only the last digit after each step (work mod 10). What is the result?";
  std::vector<Spec> specs;
  for (int i = 0; i < 12; ++i)  // 12 eval problems sharing the template's tail
    specs.push_back({"Eval " + std::to_string(i) + ": start with " + std::to_string(i) + " and add nine" + tail, good("e"), "correct", 20, "eval"});
  specs.push_back({"Jo buys seven red apples at the market on a sunny Monday morning, how many?", good("e"), "correct", 20, "eval"});
  specs.push_back({"Train: start with 42 then multiply" + tail, good("1")});               // only the boilerplate
  specs.push_back({"Before lunch Jo buys seven red apples at the market on a sunny Monday", good("2")});  // a real overlap
  specs.push_back({"Something else entirely", good("jo buys seven red apples at the market on a sunny day")});
  auto s = make_store(d / "s.db", specs);
  // By default problems are compared with the benchmark's problems, and nothing else.
  auto problems_only = run_decontaminate(*s, {}, {}, false, {"t", ""});
  CHECK(problems_only.considered == 3);  // the eval samples themselves are the benchmark
  CHECK(problems_only.rejected == 1);
  REQUIRE(problems_only.examples.size() == 1);
  CHECK(problems_only.examples[0].first == 15);
  CHECK(problems_only.examples[0].second ==
        "its problem ~ eval problem 13's problem: 8-gram \"jo buys seven red apples at the market\"");
  REQUIRE(problems_only.compared.size() == 2);
  CHECK_THAT(problems_only.compared[0], Catch::StartsWith("training problems compared with the 13 problems of split 'eval'"));
  CHECK_THAT(problems_only.compared[1], Catch::StartsWith("completions not compared"));
  // With completions: a completion that holds a benchmark problem's text is flagged too.
  DecontamOptions both;
  both.completions = true;
  auto rep = run_decontaminate(*s, both, {}, true, {"t", ""});
  CHECK(rep.considered == 3);
  CHECK(rep.rejected == 2);
  CHECK(rep.by_rule["problem"] == 1);
  CHECK(rep.by_rule["completion"] == 1);
  CHECK(rep.ignored_ngrams > 0);
  CHECK(rep.matched.count("jo buys seven red apples at the market"));
  CHECK(status_of(*s, 14) == "pending");
  CHECK(status_of(*s, 15) == "rejected");
  CHECK(status_of(*s, 16) == "rejected");
  CHECK_THAT(sample_view(*s, 16).history.at(0).reason, Catch::StartsWith("its completion ~ eval problem 13's problem: 8-gram"));

  // The same through the CLI against a benchmark file, with --json.
  test::write_text(d / "bench.jsonl", R"({"prompt": "On a sunny Monday morning Jo buys seven red apples at the market", "answer": "7"})" "\n");
  auto r = run_distill({"data", "decontaminate", "--db", d / "s.db", "--benchmark", d / "bench.jsonl", "--json"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["considered"] == 14);  // 16 samples, 2 already rejected
  CHECK(j["rejected"] == 1);      // the eval problem about Jo's apples, not in the store's benchmark role now
  CHECK(j["applied"] == false);
  CHECK(run_distill({"data", "decontaminate", "--db", d / "s.db", "--against", "nope"}).code == 2);
}

TEST_CASE("decontaminate: a templated family matches on content runs, not on one operation plus the template") {
  // 300 eval problems of one template (as the synthetic chain family writes them). A training problem that
  // shares only its last operation and the template's tail with some of them is not contamination; one that
  // holds an eval problem's run of operations is.
  test::TempDir d;
  const std::string tail = " keeping only the last digit after each step (work mod 10). What is the result?";
  std::mt19937 rng(5);
  auto digit = [&] { return std::to_string(rng() % 10); };
  auto op = [&](bool first) { return std::string(rng() % 2 ? (first ? "Add " : "add ") : (first ? "Subtract " : "subtract ")) + digit(); };
  std::vector<Spec> specs;
  std::vector<std::vector<std::string>> ops;  // each eval problem's start value and operations
  for (int i = 0; i < 300; ++i) {
    ops.push_back({digit(), op(true), op(false), op(false), op(false), op(false)});
    const auto& o = ops.back();
    specs.push_back({"Start with " + o[0] + ". " + o[1] + ", then " + o[2] + ", then " + o[3] + ", then " + o[4] +
                         ", then " + o[5] + tail,
                     good("e"), "correct", 20, "eval"});
  }
  const auto& x = ops[57];
  // the last two operations of eval problem 57, then the tail
  specs.push_back({"Start with 9. Subtract 9, then " + x[4] + ", then " + x[5] + tail, good("1")});
  // opens as eval problem 57 does, then goes elsewhere
  specs.push_back({"Start with " + x[0] + ". " + x[1] + ", then " + x[2] + ", then subtract 2" + tail, good("2")});
  const std::string opening = "start with " + x[0] + " " + x[1] + " then " + x[2];
  auto s = make_store(d / "s.db", specs);
  auto rep = run_decontaminate(*s, {}, {}, false, {"t", ""});
  CHECK(rep.considered == 2);
  CHECK(rep.rejected == 1);
  CHECK(rep.ignored_ngrams > 0);
  REQUIRE(rep.matched.size() == 1);
  std::string lowered_opening;
  for (char ch : opening) lowered_opening += char(std::tolower(static_cast<unsigned char>(ch)));
  CHECK(rep.matched.begin()->first == lowered_opening);
  // Short templated problems leave no unmasked n-gram at all: a copy (other case, other spacing) is still caught
  // as the whole problem.
  std::vector<ProblemRow> bench;
  for (int i = 0; i < 300; ++i) {
    ProblemRow p;
    p.prompt = "Start with " + std::to_string(i % 10) + ". Add " + std::to_string(i / 10 % 10) + tail;
    p.answer = "0";
    bench.push_back(p);
  }
  auto s2 = make_store(d / "s2.db", {{"START  with 3.   add 4" + tail, good("x")}, {"Start with 3. Add 44" + tail, good("y")}});
  DecontamOptions file;
  file.benchmark = bench;
  file.benchmark_name = "short.jsonl";
  auto whole = run_decontaminate(*s2, file, {}, false, {"t", ""});
  CHECK(whole.considered == 2);
  CHECK(whole.rejected == 1);
  CHECK(whole.matched.count("(the whole problem)"));
  // With no template masking (max-df 1: every n-gram counts) the tail match is flagged too.
  DecontamOptions all;
  all.max_df = 1.0;
  CHECK(run_decontaminate(*s, all, {}, false, {"t", ""}).rejected == 2);
}

TEST_CASE("list, stats and export on the CLI, bad arguments exit 2 and name the problem") {
  test::TempDir d;
  const auto db = d / "s.db";
  make_store(db, {{"p1", good("carry the one")}, {"p1", good("no carrying"), "incorrect", 40}, {"p2", good("plain steps")}});
  REQUIRE(run_distill({"data", "review", "--db", db, "1", "--accept"}).code == 0);
  auto l = run_distill({"data", "list", "--db", db, "--status", "pending", "--json"});
  REQUIRE(l.code == 0);
  auto lj = nlohmann::json::parse(l.out);
  CHECK(lj["total"] == 2);
  CHECK(lj["samples"][0]["id"] == 2);
  auto f = run_distill({"data", "list", "--db", db, "--search", "carry", "--json"});
  REQUIRE(f.code == 0);
  auto fj = nlohmann::json::parse(f.out);
  REQUIRE(fj["total"] == 1);
  CHECK(fj["samples"][0]["snippet"].get<std::string>().find("[carry]") != std::string::npos);
  CHECK(nlohmann::json::parse(run_distill({"data", "list", "--db", db, "--min-tokens", "30", "--json"}).out)["total"] == 1);
  auto total = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"data", "list", "--db", db, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = run_distill(args);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out)["total"].get<int>();
  };
  CHECK(total({"--max-tokens", "30"}) == 2);
  CHECK(total({"--verdict", "incorrect"}) == 1);
  CHECK(total({"--verdict", "correct", "--status", "pending"}) == 1);
  CHECK(total({"--problem", "1"}) == 2);
  CHECK(total({"--split", "train"}) == 3);
  auto no_split = run_distill({"data", "list", "--db", db, "--split", "eval"});
  CHECK(no_split.code == 2);
  CHECK_THAT(no_split.err, Catch::Contains("--split 'eval': no problem has that split (the store has: train)"));
  CHECK(total({"--status", "kept,pending"}) == 3);
  CHECK(run_distill({"data", "list", "--db", db, "--status", "kept,maybe"}).code == 2);
  CHECK(total({"--run", "1"}) == 0);  // run 1 made the problems; the samples came from run 2
  CHECK(total({"--run", "2", "--model", "1"}) == 3);
  // Sorted by length, longest first, one row a page: --after carries on from the key printed as next.
  std::vector<std::int64_t> seen;
  std::string after;
  for (int page = 0; page < 4; ++page) {
    std::vector<std::string> args = {"data", "list", "--db", db, "--json", "--sort=-tokens", "--limit", "1"};
    if (!after.empty()) args.push_back("--after"), args.push_back(after);
    auto j = nlohmann::json::parse(run_distill(args).out);
    for (const auto& r : j["samples"]) seen.push_back(r["id"].get<std::int64_t>());
    if (j["next"].is_null()) break;
    after = j["next"].get<std::string>();
  }
  CHECK(seen == std::vector<std::int64_t>{2, 3, 1});  // 40 tokens, then the two of equal length, newest id first
  auto bad = run_distill({"data", "list", "--db", db, "--search", "AND AND"});
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("not a valid full-text query") && Catch::Contains("a NOT b, never AND NOT"));
  CHECK(run_distill({"data", "list", "--db", db, "--status", "maybe"}).code == 2);
  // The help's own example is a valid query.
  const std::string example = "\"mod 10\" NOT subtract";
  CHECK_THAT(run_distill({"data", "list", "--help"}).out, Catch::Contains("'" + example + "'"));
  CHECK(run_distill({"data", "list", "--db", db, "--search", example}).code == 0);

  auto st = run_distill({"data", "stats", "--db", db, "--json", "--svg", d / "len.svg"});
  REQUIRE(st.code == 0);
  auto sj = nlohmann::json::parse(st.out);
  CHECK(sj["samples_by_status"]["kept"] == 1);
  CHECK(sj["samples_by_status"]["pending"] == 2);
  CHECK(sj["samples_by_split_verdict"]["train"]["incorrect"] == 1);
  CHECK(sj["length_histogram"].size() >= 2);
  CHECK_THAT(test::read_text(d / "len.svg"), Catch::StartsWith("<svg") && Catch::Contains("</svg>"));

  auto e = run_distill({"data", "export", "--db", db, "--format", "csv", "--out", d / "x"});
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Catch::Contains("jsonl, sharegpt or openai-chat"));
  CHECK(run_distill({"data", "export", "--db", db, "--status", "kept,bogus", "--out", d / "x"}).code == 2);
  CHECK_FALSE(std::filesystem::exists(d / "x"));
  CHECK(run_distill({"data", "filter", "--db", db, "--pass-rate", "0.5"}).code == 2);
  CHECK(run_distill({"data", "filter", "--db", db}).code == 2);
  CHECK(run_distill({"data", "undo", "--db", db, "99"}).code == 2);
  CHECK(run_distill({"data", "filter", "--db", db, "--min-tokens", "-5"}).code == 2);
  CHECK(run_distill({"data", "filter", "--db", db, "--max-per-problem", "0"}).code == 2);
  auto dc = run_distill({"data", "decontaminate", "--db", db, "--benchmark", d / "none.jsonl", "--format", "csv"});
  CHECK(dc.code == 2);
  CHECK_THAT(dc.err, Catch::Contains("csv"));
  test::write_text(d / "one.jsonl", "{\"problem\": \"x\", \"answer\": \"1\"}\n");
  auto im = run_distill({"data", "import", "--db", db, "--format", "yaml", d / "one.jsonl"});
  CHECK(im.code == 2);
  CHECK_THAT(im.err, Catch::Contains("yaml"));
  // stats reports the pass rate by difficulty (make_store sets difficulty 1 + prompt length % 3: "p1", "p2" -> 3)
  sj = nlohmann::json::parse(run_distill({"data", "stats", "--db", db, "--json"}).out);
  REQUIRE(sj.contains("pass_rate_by_difficulty"));
  INFO(sj["pass_rate_by_difficulty"].dump());
  CHECK(sj["pass_rate_by_difficulty"].size() == 1);
  CHECK(sj["pass_rate_by_difficulty"]["3"]["samples"] == 3);
  CHECK(sj["pass_rate_by_difficulty"]["3"]["correct"] == 2);
  CHECK(sj["pass_rate_by_difficulty"]["3"]["problems"] == 2);
}

TEST_CASE("export -> import -> export gives the same bytes in every format") {
  test::TempDir d;
  const auto db = d / "s.db";
  make_store(db, {{"Start with 3. Add 5.", good("3+5=8")}, {"Start with 3. Add 5.", good("3+5 is 8")},
                  {"Unicode \xCF\x80 problem", good("\xCF\x80 steps")}, {"dropped", good("x"), "incorrect"}});
  REQUIRE(run_distill({"data", "review", "--db", db, "4", "--reject"}).code == 0);
  REQUIRE(run_distill({"data", "review", "--db", db, "--all-pending", "--accept"}).code == 0);
  for (const char* fmt : {"jsonl", "sharegpt", "openai-chat"}) {
    INFO(fmt);
    const auto a = d / (std::string(fmt) + ".a"), b = d / (std::string(fmt) + ".b"), db2 = d / (std::string(fmt) + ".db");
    auto ex = run_distill({"data", "export", "--db", db, "--format", fmt, "--out", a, "--json"});
    REQUIRE(ex.code == 0);
    CHECK(nlohmann::json::parse(ex.out)["samples"] == 3);
    CHECK(nlohmann::json::parse(test::read_text(a + ".stats.json"))["problems"] == 2);
    auto im = run_distill({"data", "import", "--db", db2, "--format", fmt, a});
    REQUIRE(im.code == 0);
    REQUIRE(run_distill({"data", "review", "--db", db2, "--all-pending", "--accept"}).code == 0);
    REQUIRE(run_distill({"data", "export", "--db", db2, "--format", fmt, "--out", b}).code == 0);
    CHECK(test::read_text(a) == test::read_text(b));
    CHECK(test::read_text(a).find("<think>\\n3+5=8\\n</think>\\n\\\\boxed{8}") != std::string::npos);
    auto again = run_distill({"data", "import", "--db", db2, "--format", fmt, a});  // a second import adds nothing
    REQUIRE(again.code == 0);
    CHECK_THAT(again.out, Catch::Contains("0 new"));
  }
  // A broken line names FILE:LINE, exits 2 and imports nothing.
  auto text = test::read_text(d / "jsonl.a");
  test::write_text(d / "broken.jsonl", text + "{\"problem\": 3}\n");
  auto r = run_distill({"data", "import", "--db", d / "new.db", "--format", "jsonl", d / "broken.jsonl"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("broken.jsonl:4"));
  CHECK_FALSE(std::filesystem::exists(d / "new.db"));
}

TEST_CASE("store: a v1 store migrates to the current schema with its curation log intact and the schema exactly") {
  test::TempDir d;
  {
    Db db(d / "old.db", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec(test::read_text(std::string(DISTILL_SOURCE_DIR) + "/tests/fixtures/store/schema_v1.sql").c_str());
    db.exec(
        "PRAGMA application_id = 1146311756; PRAGMA user_version = 1;"
        "INSERT INTO runs VALUES (1, 'generate', '', 'now', 'now', 'ok', 'h', 'v');"
        "INSERT INTO models VALUES (1, 'teacher', '/t', 'a', 1, 1, 'sha');"
        "INSERT INTO problems VALUES (1, 'test', 'train', 'p', '8', NULL, 1, '{}', 'hash', 1);"
        "INSERT INTO samples VALUES (1, 1, 1, 1, 0, 1, 0.6, 0.9, 64, 'carry on', '8', 'correct', 3, 'eos', 'now');"
        "INSERT INTO samples VALUES (2, 1, 1, 1, 1, 2, 0.6, 0.9, 64, 'other', '8', 'correct', 3, 'eos', 'now');"
        "INSERT INTO curation VALUES (1, 1, 'keep', 'fine', 'alice', 't1', NULL);"
        "INSERT INTO curation VALUES (2, 1, 'reject', 'no', 'bob', 't2', 3);"
        "INSERT INTO curation VALUES (3, 1, 'undo', 'undo of action 2', 'bob', 't3', NULL);"
        "INSERT INTO curation VALUES (4, 2, 'reject', 'bad', 'bob', 't4', NULL);");
  }
  auto s = Store::open(d / "old.db", OpenMode::read);
  CHECK(s->db().pragma_int("user_version") == kSchemaVersion);
  CHECK(sample_status(*s, 1) == Status::kept);
  CHECK(sample_status(*s, 2) == Status::rejected);
  auto h = curation_history(*s, 1);
  REQUIRE(h.size() == 3);
  CHECK(h[2].kind == "undo");
  CHECK(h[2].undoes == 2);
  CHECK(h[1].undone_by == 3);
  ListQuery q;
  q.search = "carry";
  CHECK(count_samples(*s, q) == 1);  // the full-text index was built from existing samples
  undo_action(*s, 4, "t");
  CHECK(sample_status(*s, 2) == Status::pending);
  // v6 widened constraints in place: unverified verdicts and unknown token counts are storable, others are not.
  s->db().exec("UPDATE samples SET verdict = 'unverified', n_tokens = NULL WHERE id = 1");
  CHECK_THROWS(s->db().exec("UPDATE samples SET verdict = 'maybe' WHERE id = 1"));
  CHECK(test::query_rows(d / "old.db", "PRAGMA integrity_check") == std::vector<std::string>{"ok|"});
  // Same tables, columns and indexes as a store created at v2.
  auto fresh = Store::open(d / "new.db", OpenMode::create);
  auto shape = [](Store& st) {
    std::vector<std::string> out;
    auto q = st.db().prepare("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
    while (q.step()) out.push_back(q.col_text(0) + " " + q.col_text(1) + " " + q.col_text(2));
    auto c = st.db().prepare(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.pk FROM sqlite_master m, pragma_table_info(m.name) p "
        "WHERE m.type = 'table' ORDER BY m.name, p.cid");
    while (c.step()) out.push_back(c.col_text(0) + "." + c.col_text(1) + " " + c.col_text(2) + " " + c.col_text(3) + c.col_text(4));
    return out;
  };
  CHECK(shape(*s) == shape(*fresh));
}

TEST_CASE("dedup killed with SIGKILL leaves the store as it was, the rerun matches an uninterrupted run") {
  test::TempDir d;
  std::vector<Spec> specs;
  for (int i = 0; i < 6000; ++i) specs.push_back({"p" + std::to_string(i % 4000 % 1500), good(long_text(150, i % 4000))});
  make_store(d / "s.db", specs);
  std::filesystem::copy_file(d / "s.db", d / "ref.db");
  const std::vector<std::string> args = {"dedup", "--apply", "--num-perm", "256"};
  auto with_db = [&](const std::string& db) {
    std::vector<std::string> a = {"data"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back("--db");
    a.push_back(db);
    return a;
  };
  // Kill it once its progress bar shows it is hashing samples (DISTILL_PROGRESS draws the bar into a file).
  const int pid = test::spawn_distill(with_db(d / "s.db"), d / "err.txt", {"DISTILL_PROGRESS=1"});
  for (int i = 0; i < 600 && test::read_text(d / "err.txt").find("dedup") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  int status = 0;
  const bool still_running = waitpid(pid, &status, WNOHANG) == 0;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  REQUIRE(still_running);  // it was interrupted, not finished
  CHECK(scalar(d / "s.db", "SELECT count(*) FROM curation_actions") == 0);
  CHECK(scalar(d / "s.db", "SELECT count(*) FROM curation_effects") == 0);
  CHECK(test::query_scalar(d / "s.db", "SELECT count(*) FROM samples") == 6000);
  REQUIRE(run_distill(with_db(d / "s.db")).code == 0);
  REQUIRE(run_distill(with_db(d / "ref.db")).code == 0);
  const auto n = scalar(d / "ref.db", "SELECT count(*) FROM curation_effects");
  CHECK(n == 2000);  // 4000 distinct texts of 6000
  CHECK(scalar(d / "s.db", "SELECT count(*) FROM curation_effects") == n);
  CHECK(scalar(d / "s.db", "SELECT sum(sample_id * 7 + length(reason)) FROM curation_effects") ==
        scalar(d / "ref.db", "SELECT sum(sample_id * 7 + length(reason)) FROM curation_effects"));
}

TEST_CASE("a reader works while a writer holds an open transaction (WAL)") {
  test::TempDir d;
  const auto db = d / "s.db";
  auto s = make_store(db, {{"p1", good("one")}, {"p2", good("two")}});
  {
    Transaction tx(s->db());  // a writer mid-transaction: one action written, not committed
    s->db().exec("INSERT INTO curation_actions(kind, actor, at) VALUES ('review', 'w', 'now')");
    s->db().exec("INSERT INTO curation_effects(sample_id, action_id, decision) VALUES (1, 1, 'reject')");
    auto r = run_distill({"data", "stats", "--db", db, "--json"});
    REQUIRE(r.code == 0);
    CHECK(nlohmann::json::parse(r.out)["samples_by_status"]["pending"] == 2);  // sees the last committed state
    auto l = run_distill({"data", "list", "--db", db, "--json"});
    REQUIRE(l.code == 0);
    CHECK(nlohmann::json::parse(l.out)["total"] == 2);
    tx.commit();
  }
  auto r = run_distill({"data", "stats", "--db", db, "--json"});
  CHECK(nlohmann::json::parse(r.out)["samples_by_status"]["rejected"] == 1);
}

TEST_CASE("review --query applies to what the list filters match as one action, problem show names every answer") {
  test::TempDir d;
  const auto db = d / "s.db";
  make_store(db, {{"p1", good("carry the one")}, {"p1", good("carry twice"), "incorrect", 40}, {"p2", good("plain steps")},
                  {"p2", good("more carry"), "incorrect", 30}});
  // The filters select; the action names them in its parameters and rejects exactly the matches.
  auto r = run_distill({"data", "review", "--db", db, "--query", "--search", "carry", "--verdict", "incorrect", "--reject",
                        "--reason", "wrong carry", "--json"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["n_samples"] == 2);
  CHECK(test::query_rows(db, "SELECT sample_id, status FROM sample_status WHERE status <> 'pending' ORDER BY sample_id") ==
        std::vector<std::string>{"2|rejected|", "4|rejected|"});
  CHECK(test::query_rows(db, "SELECT json_extract(params_json, '$.query.search'), reason FROM curation_actions") ==
        std::vector<std::string>{"carry|wrong carry|"});
  // The reason shows in the list; one undo reverses the whole query.
  auto l = nlohmann::json::parse(run_distill({"data", "list", "--db", db, "--status", "rejected", "--json"}).out);
  CHECK(l["samples"][0]["reason"] == "wrong carry");
  REQUIRE(run_distill({"data", "undo", "--db", db, "1"}).code == 0);
  CHECK(test::query_rows(db, "SELECT count(*) FROM sample_status WHERE status = 'pending'") == std::vector<std::string>{"4|"});
  // Refusals: no filter, filters with ids, nothing matching logs nothing.
  CHECK(run_distill({"data", "review", "--db", db, "--query", "--accept"}).code == 2);
  CHECK(run_distill({"data", "review", "--db", db, "1", "--verdict", "correct", "--accept"}).code == 2);
  auto none = run_distill({"data", "review", "--db", db, "--query", "--search", "zebra", "--accept"});
  CHECK(none.code == 0);
  CHECK_THAT(none.out, Catch::Contains("no sample matches"));
  CHECK(test::query_rows(db, "SELECT count(*) FROM curation_actions") == std::vector<std::string>{"2|"});
  // --all-pending with --split, as before.
  REQUIRE(run_distill({"data", "review", "--db", db, "--all-pending", "--split", "train", "--accept"}).code == 0);
  CHECK(test::query_rows(db, "SELECT count(*) FROM sample_status WHERE status = 'kept'") == std::vector<std::string>{"4|"});

  // problem show: the prompt, gold, its samples with status, and the eval answers of every model.
  {
    Db w(db, SQLITE_OPEN_READWRITE);
    w.exec("INSERT INTO runs(kind, config_toml, started_at, status, host, version) VALUES ('eval', '', 't', 'ok', 'h', 'v');"
           "INSERT INTO models(role, path, arch, n_params, n_active_params, sha256) VALUES ('student', '/s', 'a', 1, 1, 's');"
           "INSERT INTO eval_results VALUES (3, 2, 1, 0, '<think>x</think> the student: 8', 'correct', 5, 1.0, 'v')");
  }
  auto p = run_distill({"data", "problem", "show", "--db", db, "1", "--json"});
  REQUIRE(p.code == 0);
  auto pj = nlohmann::json::parse(p.out);
  CHECK(pj["prompt"] == "p1");
  CHECK(pj["gold"] == "8");
  CHECK(pj["n_samples"] == 2);
  CHECK(pj["samples"][1]["status"] == "kept");
  REQUIRE(pj["evals"].size() == 1);
  CHECK(pj["evals"][0]["role"] == "student");
  auto text = run_distill({"data", "problem", "show", "--db", db, "1"});
  CHECK_THAT(text.out, Catch::Contains("gold answer: 8") && Catch::Contains("student /s (eval run 3, sample 0): correct"));
  CHECK(run_distill({"data", "problem", "show", "--db", db, "99"}).code == 2);
  // data list --eval: the eval answers, filtered, for error analysis.
  auto ev = nlohmann::json::parse(run_distill({"data", "list", "--db", db, "--eval", "--verdict", "correct", "--json"}).out);
  CHECK(ev["total"] == 1);
  CHECK(ev["answers"][0]["role"] == "student");
  CHECK(nlohmann::json::parse(run_distill({"data", "list", "--db", db, "--eval", "--run", "2", "--json"}).out)["total"] == 0);
  CHECK(run_distill({"data", "list", "--db", db, "--eval", "--status", "kept"}).code == 2);
}
