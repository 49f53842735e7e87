// tests/test_eval.cpp: evaluation metrics against direct definitions (pass@k by enumerating subsets, maj@k by
// counting votes, bootstrap intervals), and `distill eval` on a real store with the shipped teacher, killed and
// resumed too.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "dataset/store.h"
#include "eval/metrics.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
using namespace distill::eval;

namespace {
// pass@k by its definition: the share of k-subsets of the n samples that hold a correct one.
double pass_at_k_enumerated(int n, int c, int k) {
  int hit = 0, all = 0;
  for (unsigned mask = 0; mask < (1u << n); ++mask) {
    if (__builtin_popcount(mask) != k) continue;
    ++all;
    hit += (mask & ((1u << c) - 1)) != 0;  // samples 0..c-1 are the correct ones
  }
  return double(hit) / double(all);
}
}  // namespace

TEST_CASE("eval metrics: unbiased pass@k equals the share of k-subsets with a correct sample") {
  for (int n = 1; n <= 8; ++n)
    for (int c = 0; c <= n; ++c)
      for (int k = 1; k <= n; ++k) {
        INFO("n " << n << " c " << c << " k " << k);
        CHECK(pass_at_k(n, c, k) == Approx(pass_at_k_enumerated(n, c, k)).epsilon(1e-12));
      }
  CHECK(pass_at_k(200, 13, 1) == Approx(13.0 / 200.0));
  CHECK_THROWS(pass_at_k(4, 1, 5));
}

TEST_CASE("eval metrics: maj@k votes over equivalent answers, missing answers never win, ties go to the first") {
  using A = std::vector<std::optional<std::string>>;
  CHECK(majority_correct(A{"7", "8", "8", std::nullopt, std::nullopt, std::nullopt}, "8"));
  CHECK_FALSE(majority_correct(A{"7", "8"}, "8"));
  CHECK(majority_correct(A{"8", "7"}, "8"));
  CHECK(majority_correct(A{"1,000", "1000", "5"}, "1000"));  // equivalent spellings pool their votes
  CHECK_FALSE(majority_correct(A{std::nullopt, std::nullopt}, "8"));
}

TEST_CASE("eval metrics: summaries by difficulty with bootstrap intervals around the estimate") {
  std::vector<ProblemOutcome> v;
  for (int i = 0; i < 40; ++i) {
    ProblemOutcome o;
    o.problem_id = i;
    o.difficulty = 1 + i % 2;
    o.gold = "8";
    const int c = i % 2 == 0 ? 3 : (i % 4 == 1 ? 1 : 0);  // d1: 3 of 4 right; d2: half the problems 1 of 4
    for (int s = 0; s < 4; ++s) {
      o.correct.push_back(s < c);
      o.answers.push_back(s < c ? std::optional<std::string>("8") : std::optional<std::string>("9"));
      o.tokens.push_back(10 + s);
      o.seconds.push_back(0.5);
    }
    v.push_back(o);
  }
  auto by = summarize_by_difficulty(v, 2, 7);
  REQUIRE(by.count("1"));
  REQUIRE(by.count("all"));
  CHECK(by["1"].pass1.value == Approx(0.75));
  CHECK(by["1"].pass_k.value == Approx(1.0));  // 1 - C(1,2)/C(4,2)
  CHECK(by["1"].maj_k.value == Approx(1.0));   // the first two samples agree on 8
  CHECK(by["2"].pass1.value == Approx(0.125));
  CHECK(by["2"].pass_k.value == Approx(0.25));  // half the problems: 1 - C(3,2)/C(4,2) = 0.5
  CHECK(by["all"].k == 2);
  CHECK(by["all"].mean_tokens == Approx(11.5));
  CHECK(by["all"].tokens_per_s == Approx(23.0));
  const auto& a = by["all"].pass1;
  CHECK(a.lo <= a.value);
  CHECK(a.value <= a.hi);
  CHECK(a.hi - a.lo > 0.05);
  CHECK(a.hi - a.lo < 0.5);
  auto again = summarize(v, 2, 7);
  CHECK(again.pass1.lo == a.lo);  // deterministic by seed
}

TEST_CASE("eval: the shipped teacher answers eval problems, every completion is stored, bad options exit 2") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "60", "--split", "eval", "--difficulty", "1-3"}).code == 0);
  const auto teacher = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";
  auto r = test::run_distill({"eval", "--db", db, "--model", teacher, "--samples", "2", "--limit", "6", "--role", "teacher", "--json"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  const auto& all = j["by_difficulty"]["all"];
  CHECK(all["problems"] == 6);
  CHECK(all["samples"] == 12);
  CHECK(all["pass@1"]["value"].get<double>() >= 0.8);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM eval_results") == 12);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM models WHERE role = 'teacher'") == 1);
  // greedy: one answer per problem (every draw would be the same), at temperature 0
  auto g = test::run_distill({"eval", "--db", db, "--model", teacher, "--samples", "4", "--limit", "6", "--greedy", "--json"});
  REQUIRE(g.code == 0);
  auto gj = nlohmann::json::parse(g.out)["by_difficulty"]["all"];
  CHECK(gj["samples"] == 6);
  CHECK(gj["pass@1"]["value"].get<double>() >= 0.8);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM eval_results") == 12 + 6);
  CHECK(test::run_distill({"eval", "--db", db, "--model", teacher, "--role", "oracle"}).code == 2);
  CHECK(test::run_distill({"eval", "--db", db, "--model", teacher, "--samples", "2", "--k", "5"}).code == 2);
  CHECK(test::run_distill({"eval", "--db", db, "--model", teacher, "--split", "nope"}).code == 2);
  // past the model's context (2048 positions): refused before any run is recorded, naming what would fit
  const auto runs = test::query_scalar(db, "SELECT count(*) FROM runs");
  auto longer = test::run_distill({"eval", "--db", db, "--model", teacher, "--max-tokens", "2040"});
  CHECK(longer.code == 2);
  CHECK_THAT(longer.err, Catch::Contains("max_position_embeddings") && Catch::Contains("context of 2048 positions") &&
                             Catch::Contains("fits"));
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs") == runs);
  auto gen = test::run_distill({"generate", "--db", db, "--teacher", teacher, "--split", "eval", "--limit", "2", "--max-tokens", "2040"});
  CHECK(gen.code == 2);
  CHECK_THAT(gen.err, Catch::Contains("context of 2048 positions"));
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs") == runs);
}

TEST_CASE("compare: teacher vs a student on the same problems, as a table, JSON and an HTML report that Chromium renders") {
  test::TempDir d;
  const auto db = d / "s.db";
  const auto teacher = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "80", "--difficulty", "1-2"}).code == 0);
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "chain", "--n", "40", "--split", "eval", "--difficulty", "1-3"}).code == 0);
  CHECK(test::run_distill({"compare", "--db", db}).code == 2);  // nothing evaluated yet
  REQUIRE(test::run_distill({"generate", "--db", db, "--teacher", teacher, "--samples", "1", "--limit", "30", "--max-tokens", "64"}).code == 0);
  REQUIRE(test::run_distill({"data", "review", "--db", db, "--all-pending", "--accept"}).code == 0);
  REQUIRE(test::run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "stu", "--steps", "4", "--max-seq-len", "128",
                             "--batch-tokens", "256", "--val-fraction", "0"}).code == 0);
  for (auto [model, role] : {std::pair{teacher, "teacher"}, std::pair{d / "stu", "student"}})
    REQUIRE(test::run_distill({"eval", "--db", db, "--model", model, "--role", role, "--samples", "2", "--limit", "10",
                               "--max-tokens", "48", "--seed", "3"}).code == 0);
  auto r = test::run_distill({"compare", "--db", db, "--json", "--html", d / "report.html"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["models"].size() == 2);
  CHECK(j["problems"] == 10);
  CHECK(j["models"][0]["role"] == "teacher");
  CHECK(j["models"][1]["role"] == "student");
  CHECK(j["models"][0]["relative_cost"].get<double>() == Approx(1.0));
  const double tp = j["models"][0]["by_difficulty"]["all"]["pass@1"]["value"], sp = j["models"][1]["by_difficulty"]["all"]["pass@1"]["value"];
  CHECK(tp >= 0.8);
  CHECK(sp < tp);  // four steps of training is not enough to learn this
  CHECK(j["disagreements"].size() >= 1);
  const auto html = test::read_text(d / "report.html");
  for (const char* id : {"id=\"summary\"", "id=\"chart-accuracy\"", "id=\"chart-lengths\"", "id=\"chart-size\"", "id=\"disagreements\"",
                         "id=\"chart-training\"", "id=\"chart-funnel\""})
    CHECK(html.find(id) != std::string::npos);
  // Read at a glance: stable colours per role, a legend and a y-axis on the length chart, the student's training
  // curve, the funnel, and the prompt beside each disagreement.
  CHECK(j["models"][0]["color"] == "#d95f02");
  CHECK(j["models"][1]["color"] == "#1b9e77");
  CHECK_THAT(html, Catch::Contains("share of the model's answers") && Catch::Contains("class=\"legend\" x=") &&
                       Catch::Contains("stroke-dasharray=\"6 3\""));
  REQUIRE(j["training"].size() == 1);
  CHECK(j["training"][0]["steps"] == 4);
  CHECK(j["curation_funnel"].back()["samples"] == 30);  // kept
  CHECK_THAT(html, Catch::Contains("<td class=\"prompt\">") && Catch::Contains("What is the result?"));
  std::size_t bars = 0;
  for (auto p = html.find("class=\"bar\""); p != std::string::npos; p = html.find("class=\"bar\"", p + 1)) ++bars;
  CHECK(bars >= 2 * 2);  // two models x at least two difficulties
  // Rendered by a real browser: headless Chromium parses the page into a DOM with the three charts and their
  // bars, and its screenshot holds far more than a blank page's.
  auto chromium = [&](const std::string& flags, const std::string& page, const std::string& out) {
    const std::string cmd = "chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,1600 " +
                            flags + " file://" + page + " > " + out + " 2> " + d / "chromium.err";
    return std::system(cmd.c_str());
  };
  REQUIRE(chromium("--dump-dom", d / "report.html", d / "dom.html") == 0);
  const auto dom = test::read_text(d / "dom.html");
  for (const char* id : {"<svg id=\"chart-accuracy\"", "<svg id=\"chart-lengths\"", "<svg id=\"chart-size\""})
    CHECK(dom.find(id) != std::string::npos);
  std::size_t dom_bars = 0;
  for (auto p = dom.find("<rect class=\"bar\""); p != std::string::npos; p = dom.find("<rect class=\"bar\"", p + 1)) ++dom_bars;
  CHECK(dom_bars == bars);
  test::write_text(d / "blank.html", "<!DOCTYPE html><html><body></body></html>");
  REQUIRE(chromium("--screenshot=" + d / "report.png", d / "report.html", "/dev/null") == 0);
  REQUIRE(chromium("--screenshot=" + d / "blank.png", d / "blank.html", "/dev/null") == 0);
  CHECK(std::filesystem::file_size(d / "report.png") > 4 * std::filesystem::file_size(d / "blank.png"));

  auto t = test::run_distill({"compare", "--db", db});
  REQUIRE(t.code == 0);
  CHECK_THAT(t.out, Catch::Contains("teacher: demo-teacher") && Catch::Contains("student: stu") &&
                        Catch::Contains("not equally right") && Catch::Contains("T 0.6, top-p 0.95, K 2, 48 tokens max, seed 3"));
  CHECK_THAT(t.out, !Catch::Contains("warning"));
  // each model's protocol, read from its run; the same protocol everywhere: nothing to warn about
  CHECK(j["warnings"].empty());
  CHECK(j["cost_relative_to"] == "teacher: demo-teacher");
  CHECK(j["models"][1]["label"] == "student: stu");
  CHECK(j["models"][0]["protocol"]["samples"] == 2);
  CHECK(j["models"][0]["protocol"]["seed"] == 3);
  CHECK(j["models"][1]["answered"] == 10);
  CHECK(j["models"][0]["by_difficulty"]["all"]["latency_s"].get<double>() > 0);

  // A second student in another directory of the same name, evaluated greedily on fewer problems: the labels
  // tell the two apart, and both the other protocol and the smaller common set are said.
  REQUIRE(test::run_distill({"train", "--db", db, "--student", "tiny", "--out", d / "b/stu", "--steps", "2", "--max-seq-len",
                             "128", "--batch-tokens", "256", "--val-fraction", "0", "--seed", "9"}).code == 0);
  REQUIRE(test::run_distill({"eval", "--db", db, "--model", d / "b/stu", "--greedy", "--limit", "5", "--max-tokens", "48",
                             "--seed", "3"}).code == 0);
  auto w = test::run_distill({"compare", "--db", db, "--json"});
  REQUIRE(w.code == 0);
  auto wj = nlohmann::json::parse(w.out);
  REQUIRE(wj["models"].size() == 3);
  CHECK(wj["problems"] == 5);
  const std::string l1 = wj["models"][1]["label"], l2 = wj["models"][2]["label"];
  CHECK(l1 != l2);
  CHECK_THAT(l2, Catch::StartsWith("student: ") && Catch::EndsWith("b/stu"));
  REQUIRE(wj["warnings"].size() == 2);
  CHECK_THAT(wj["warnings"][0].get<std::string>(), Catch::Contains("different protocols") && Catch::Contains("greedy"));
  CHECK_THAT(wj["warnings"][1].get<std::string>(), Catch::Contains("only the 5 problems") && Catch::Contains("teacher: demo-teacher 10"));
  CHECK_THAT(test::read_text(d / "report.html"), !Catch::Contains("class=\"warning\""));  // the two-model report
  auto wt = test::run_distill({"compare", "--db", db, "--html", d / "report3.html"});
  CHECK_THAT(wt.out, Catch::Contains("warning: the models were evaluated under different protocols"));
  CHECK_THAT(test::read_text(d / "report3.html"),
             Catch::Contains("<p class=\"warning\"><b>Warning:</b> the models were evaluated under different protocols") &&
                 Catch::Contains("<th>protocol</th>"));

  // Choosing the runs: the smoke eval of b/stu shrank the comparison to 5 problems; --runs names the two full runs,
  // `runs hide` leaves the smoke run out by default, `runs rm` removes it with its answers.
  auto runs_json = nlohmann::json::parse(test::run_distill({"runs", "list", "--db", db, "--all", "--json"}).out);
  std::vector<std::int64_t> evals;  // newest first: b/stu's, the student's, the teacher's
  std::int64_t generate_run = 0;
  for (const auto& r : runs_json) {
    if (r["kind"] == "eval") evals.push_back(r["id"]);
    if (r["kind"] == "generate") generate_run = r["id"];
  }
  REQUIRE(evals.size() == 3);
  auto two = nlohmann::json::parse(test::run_distill({"compare", "--db", db, "--json", "--runs",
                                                      std::to_string(evals[2]) + "," + std::to_string(evals[1])}).out);
  CHECK(two["models"].size() == 2);
  CHECK(two["problems"] == 10);
  CHECK(two["warnings"].empty());
  CHECK(test::run_distill({"compare", "--db", db, "--runs", std::to_string(generate_run)}).code == 2);
  CHECK(test::run_distill({"compare", "--db", db, "--runs", "1,x"}).code == 2);
  REQUIRE(test::run_distill({"runs", "hide", "--db", db, std::to_string(evals[0])}).code == 0);
  auto hidden = nlohmann::json::parse(test::run_distill({"compare", "--db", db, "--json"}).out);
  CHECK(hidden["models"].size() == 2);
  CHECK(hidden["problems"] == 10);
  CHECK_THAT(test::run_distill({"runs", "list", "--db", db}).out, !Catch::Contains("#" + std::to_string(evals[0]) + " "));
  auto one = nlohmann::json::parse(test::run_distill({"compare", "--db", db, "--json", "--models",
                                                      std::to_string(two["models"][0]["model_id"].get<std::int64_t>())}).out);
  CHECK(one["models"].size() == 1);
  auto dry = test::run_distill({"runs", "rm", "--db", db, std::to_string(evals[0])});
  CHECK(dry.code == 0);
  CHECK_THAT(dry.out, Catch::Contains("would go with 5 eval answers") && Catch::Contains("--yes"));
  auto blocked = test::run_distill({"runs", "rm", "--db", db, std::to_string(generate_run), "--yes"});
  CHECK(blocked.code == 2);
  CHECK_THAT(blocked.err, Catch::Contains("made 30 samples"));
  REQUIRE(test::run_distill({"runs", "rm", "--db", db, std::to_string(evals[0]), "--yes"}).code == 0);
  CHECK(test::query_rows(db, "SELECT count(*) FROM eval_results WHERE run_id = " + std::to_string(evals[0])) ==
        std::vector<std::string>{"0|"});
  CHECK(test::run_distill({"runs", "show", "--db", db, std::to_string(evals[0])}).code == 2);
  auto shown = test::run_distill({"runs", "show", "--db", db, std::to_string(evals[1])});
  CHECK_THAT(shown.out, Catch::Contains("made: 20 eval answers") && Catch::Contains("model = "));
  // A training run's curve: as text, CSV (every step) and SVG; a run that trained nothing says so.
  std::int64_t train_run = 0;
  for (const auto& r : runs_json)
    if (r["kind"] == "train" && train_run == 0) train_run = r["id"];  // newest first: b/stu's, 2 steps
  auto csv = test::run_distill({"runs", "show", "--db", db, std::to_string(train_run), "--csv", "--svg", d / "loss.svg"});
  REQUIRE(csv.code == 0);
  CHECK_THAT(csv.out, Catch::StartsWith("step,loss,lr,tokens,val_loss,at\n1,") && Catch::Contains("\n2,"));
  CHECK(std::count(csv.out.begin(), csv.out.end(), '\n') == 3);
  CHECK_THAT(test::read_text(d / "loss.svg"), Catch::StartsWith("<svg id=\"chart-training\"") && Catch::Contains("polyline"));
  CHECK_THAT(test::run_distill({"runs", "show", "--db", db, std::to_string(train_run)}).out, Catch::Contains("training: 2 steps"));
  CHECK(test::run_distill({"runs", "show", "--db", db, std::to_string(evals[1]), "--csv"}).code == 2);

  // A stored answer that is not UTF-8 (a store written before decode replaced such bytes): JSON still comes out.
  dataset::Store::open(db, dataset::OpenMode::read)
      ->db()
      .exec("UPDATE eval_results SET completion = CAST(X'3C7468696E6B3E0A3C2F7468696E6B3E205C626F7865647B33E27D' AS TEXT) "
            "WHERE run_id = (SELECT max(run_id) FROM eval_results)");
  auto u = test::run_distill({"compare", "--db", db, "--json"});
  REQUIRE(u.code == 0);
  CHECK(nlohmann::json::parse(u.out)["disagreements"].dump().find("3\xEF\xBF\xBD") != std::string::npos);
}

namespace {
// For the interrupted-eval tests: d/s.db holds 30 eval problems and d/ref.db a copy of it (for an uninterrupted
// run); returns the eval command of the shipped teacher over a store, with `fixed` and then `extra` appended.
auto interrupted_eval_fixture(const test::TempDir& d, const std::vector<std::string>& fixed) {
  REQUIRE(test::run_distill({"data", "synth", "--db", d / "s.db", "--task", "chain", "--n", "30", "--split", "eval",
                             "--difficulty", "1-3"}).code == 0);
  std::filesystem::copy_file(d / "s.db", d / "ref.db");
  const auto teacher = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";
  return [teacher, fixed](const std::string& store, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"eval", "--db", store, "--model", teacher, "--max-tokens", "48", "--batch", "4",
                                  "--temperature", "0.8", "--seed", "5", "--role", "teacher"};
    a.insert(a.end(), fixed.begin(), fixed.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
}
}  // namespace

TEST_CASE("eval: a run killed with SIGKILL continues with --resume and ends with the completions of an uninterrupted run") {
  test::TempDir d;
  const auto db = d / "s.db", ref = d / "ref.db";
  const auto args = interrupted_eval_fixture(d, {"--samples", "3"});
  auto stored = [](const std::string& store) { return test::query_scalar(store, "SELECT count(*) FROM eval_results").value_or(-1); };
  // nothing to resume yet: refused, and the refusal writes nothing (no model row, no run)
  auto early = test::run_distill(args(db, {"--resume"}));
  CHECK(early.code == 2);
  CHECK_THAT(early.err, Catch::Contains("no unfinished eval"));
  CHECK(test::query_scalar(db, "SELECT count(*) FROM models") == 0);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE kind = 'eval'") == 0);
  const int pid = test::spawn_distill(args(db));
  CHECK(test::signal_when(pid, [&] { return stored(db) >= 8; }, SIGKILL) == -SIGKILL);
  const double after_kill = stored(db);
  INFO("completions stored when killed: " << after_kill);
  CHECK(after_kill >= 8);
  CHECK(after_kill < 90);  // it really was interrupted, and what it had drawn was kept
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE kind = 'eval' AND status = 'running'") == 1);
  // the next command that starts a run finds the process gone and marks the run failed
  REQUIRE(test::run_distill({"data", "synth", "--db", db, "--task", "arith", "--n", "1", "--split", "train"}).code == 0);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE kind = 'eval' AND status = 'failed'") == 1);
  // another protocol cannot continue it
  auto other = test::run_distill(args(db, {"--resume", "--k", "2"}));
  CHECK(other.code == 2);
  CHECK(other.err.find("k = 0, this one has 2") != std::string::npos);
  auto r = test::run_distill(args(db, {"--resume", "--json"}));
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["resumed"].get<double>() == after_kill);
  CHECK(stored(db) == 90);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE kind = 'eval'") == 1);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE kind = 'eval' AND status = 'ok'") == 1);
  REQUIRE(test::run_distill(args(ref)).code == 0);
  const std::string rows = "SELECT problem_id, sample_idx, completion, verdict, n_tokens FROM eval_results ORDER BY 1, 2";
  CHECK(test::query_rows(db, rows) == test::query_rows(ref, rows));
  // the metrics are those of the uninterrupted run
  auto a = test::run_distill({"compare", "--db", db, "--json"}), b = test::run_distill({"compare", "--db", ref, "--json"});
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  auto metrics = [](const std::string& out) {  // all but the timings
    auto by = nlohmann::json::parse(out)["models"][0]["by_difficulty"];
    for (auto& [d, s] : by.items()) s.erase("sequence_tokens_per_s"), s.erase("latency_s");
    return by;
  };
  CHECK(metrics(a.out) == metrics(b.out));
  CHECK(test::run_distill(args(db, {"--resume"})).code == 2);  // nothing left to continue
}

TEST_CASE("eval: SIGINT stores the finished completions, exits 130 without metrics, and --resume completes the run") {
  test::TempDir d;
  const auto db = d / "s.db", ref = d / "ref.db";
  const auto args = interrupted_eval_fixture(d, {"--samples", "6", "--json"});
  auto stored = [](const std::string& store) { return test::query_scalar(store, "SELECT count(*) FROM eval_results").value_or(-1); };
  const int pid = test::spawn_distill(args(db), d / "int.err");
  const int code = test::signal_when(pid, [&] { return stored(db) >= 8; }, SIGINT);
  const auto err = test::read_text(d / "int.err");
  INFO(err);
  CHECK(code == 130);
  const double after = stored(db);
  CHECK(after >= 8);
  CHECK(after < 180);
  CHECK_THAT(err, Catch::Contains("stopped by SIGINT with " + std::to_string(std::int64_t(after)) + " of 180 completions stored") &&
                      Catch::Contains("--resume"));
  CHECK(test::query_scalar(db, "SELECT count(*) FROM runs WHERE kind = 'eval' AND status = 'failed'") == 1);
  auto r = test::run_distill(args(db, {"--resume"}));
  REQUIRE(r.code == 0);
  auto ref_run = test::run_distill(args(ref));
  REQUIRE(ref_run.code == 0);
  CHECK(nlohmann::json::parse(r.out)["resumed"].get<double>() == after);
  // the same completions, and so the same metrics, as the uninterrupted run
  const std::string rows = "SELECT problem_id, sample_idx, completion, verdict FROM eval_results ORDER BY problem_id, sample_idx";
  CHECK(test::query_rows(db, rows) == test::query_rows(ref, rows));
  CHECK(nlohmann::json::parse(r.out)["by_difficulty"]["all"]["pass@1"] ==
        nlohmann::json::parse(ref_run.out)["by_difficulty"]["all"]["pass@1"]);
}
