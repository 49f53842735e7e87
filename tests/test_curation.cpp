// tests/test_curation.cpp: the append-only curation log: status derived from it, exact undo, refusals, and the
// `data show / review / undo` commands on a real store (samples inserted directly, no teacher).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "dataset/curation.h"
#include "dataset/samples.h"
#include "tests/helpers.h"

using namespace distill;
using namespace distill::dataset;
using test::run_distill;

namespace {
// A store with two problems and three samples; returns the sample ids.
std::vector<std::int64_t> seed_store(const std::string& path) {
  auto s = Store::open(path, OpenMode::create);
  ProblemRow p;
  p.source = "test";
  p.split = "train";
  p.prompt = "Start with 3. Add 5. What is the result?";
  p.answer = "8";
  p.difficulty = 1;
  ProblemRow q = p;
  q.prompt = "Start with 1. Add 1. What is the result?";
  q.answer = "2";
  s->insert_problems({p, q}, "test", "");
  ModelRow m{"teacher", "/models/t", "DeepseekV3ForCausalLM", 10, 5, std::string(64, 'a')};
  const auto model_id = upsert_model(*s, m);
  const auto run_id = s->begin_run("generate", "");
  std::vector<SampleRow> rows;
  for (int i = 0; i < 3; ++i) {
    SampleRow r;
    r.problem_id = i < 2 ? 1 : 2;
    r.model_id = model_id;
    r.run_id = run_id;
    r.sample_idx = i;
    r.seed = 100 + i;
    r.temperature = 0.6;
    r.top_p = 0.95;
    r.max_tokens = 64;
    r.completion = "<think>\n3+5=8\n</think>\n\\boxed{8}";
    r.extracted_answer = "8";
    r.verdict = i == 2 ? "incorrect" : "correct";
    r.n_tokens = 12;
    r.finish_reason = "eos";
    rows.push_back(r);
  }
  REQUIRE(insert_samples(*s, rows) == 3);
  return {1, 2, 3};
}
}  // namespace

TEST_CASE("curation: status follows the latest action that was not undone, and undo reverses exactly") {
  test::TempDir d;
  seed_store(d / "s.db");
  auto s = Store::open(d / "s.db", OpenMode::read);
  CHECK(sample_status(*s, 1) == Status::pending);
  const auto a1 = curate(*s, 1, "keep", "clean", "alice");
  CHECK(sample_status(*s, 1) == Status::kept);
  const auto a2 = curate(*s, 1, "reject", "second look: wrong step", "bob");
  CHECK(sample_status(*s, 1) == Status::rejected);
  const auto u2 = undo_action(*s, a2, "bob");
  CHECK(sample_status(*s, 1) == Status::kept);
  undo_action(*s, a1, "alice");
  CHECK(sample_status(*s, 1) == Status::pending);
  CHECK(sample_status(*s, 2) == Status::pending);  // other samples untouched
  auto h = curation_history(*s, 1);
  REQUIRE(h.size() == 4);  // nothing is deleted
  CHECK(h[0].kind == "review");
  CHECK(h[0].decision == "keep");
  CHECK(h[1].undone_by == u2);
  CHECK(h[2].kind == "undo");
  CHECK(h[2].undoes == a2);
  CHECK(h[2].reason == "undo of review action " + std::to_string(a2));
  // refusals
  CHECK_THROWS_WITH(undo_action(*s, u2, "x"), Catch::Contains("is itself an undo"));
  CHECK_THROWS_WITH(undo_action(*s, a2, "x"), Catch::Contains("already undone"));
  CHECK_THROWS_WITH(undo_action(*s, 999, "x"), Catch::Contains("no curation action with id 999"));
  CHECK_THROWS_WITH(curate(*s, 42, "keep", "", "x"), Catch::Contains("no sample with id 42"));
  CHECK_THROWS_AS(curate(*s, 1, "maybe", "", "x"), InputError);
}

TEST_CASE("curation: data review, undo and show from the CLI, with --json and exit codes") {
  test::TempDir d;
  seed_store(d / "s.db");
  const auto db = d / "s.db";
  auto r = run_distill({"data", "review", "--db", db, "3", "--reject", "--reason", "wrong answer", "--json"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["status"] == "rejected");
  auto show = run_distill({"data", "show", "--db", db, "3", "--json"});
  REQUIRE(show.code == 0);
  auto v = nlohmann::json::parse(show.out);
  CHECK(v["status"] == "rejected");
  CHECK(v["verdict"] == "incorrect");
  CHECK(v["model"]["role"] == "teacher");
  CHECK(v["history"].size() == 1);
  CHECK(v["history"][0]["reason"] == "wrong answer");
  auto text = run_distill({"data", "show", "--db", db, "3"});
  REQUIRE(text.code == 0);
  CHECK_THAT(text.out, Catch::Contains("| 3+5=8") && Catch::Contains("verdict: incorrect") && Catch::Contains("status: rejected"));
  auto u = run_distill({"data", "undo", "--db", db, std::to_string(j["action_id"].get<int>()), "--json"});
  REQUIRE(u.code == 0);
  CHECK(nlohmann::json::parse(run_distill({"data", "show", "--db", db, "3", "--json"}).out)["status"] == "pending");
  // bad input exits 2 with a message
  auto uu = run_distill({"data", "undo", "--db", db, std::to_string(nlohmann::json::parse(u.out)["undo_id"].get<int>())});
  CHECK(uu.code == 2);
  CHECK_THAT(uu.err, Catch::Contains("itself an undo"));
  CHECK(run_distill({"data", "show", "--db", db, "77"}).code == 2);
  CHECK(run_distill({"data", "review", "--db", db, "1"}).code == 2);
  CHECK(run_distill({"data", "review", "--db", db, "1", "--accept", "--reject"}).code == 2);
  CHECK(run_distill({"data", "review", "--db", db, "77", "--accept"}).code == 2);
}

TEST_CASE("curation: review folds repeated ids, a review that changes nothing logs nothing, log --sample and --limit") {
  test::TempDir d;
  seed_store(d / "s.db");
  const auto db = d / "s.db";
  auto actions = [&] { return test::query_rows(db, "SELECT COUNT(*) FROM curation_actions"); };
  auto r = run_distill({"data", "review", "--db", db, "2", "2", "3", "--accept", "--reason", "fine"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("2 samples kept"));
  CHECK(actions() == std::vector<std::string>{"1|"});
  // Both kept already: said so, nothing logged.
  r = run_distill({"data", "review", "--db", db, "3", "2", "--accept"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("nothing changed") && Catch::Contains("2 samples are kept by a review already"));
  CHECK(actions() == std::vector<std::string>{"1|"});
  // One of two changes: only it is in the action.
  r = run_distill({"data", "review", "--db", db, "2", "1", "--accept", "--json"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["n_samples"] == 1);
  CHECK(j["unchanged"] == nlohmann::json::array({2}));
  CHECK(j["sample_id"] == 1);
  CHECK(test::query_rows(db, "SELECT sample_id FROM curation_effects WHERE action_id = 2") == std::vector<std::string>{"1|"});
  REQUIRE(run_distill({"data", "review", "--db", db, "3", "--reject", "--reason", "second look"}).code == 0);
  // log --sample: the actions that decided on sample 3, newest first; --limit: the newest N.
  auto l = run_distill({"data", "log", "--db", db, "--sample", "3", "--json"});
  REQUIRE(l.code == 0);
  auto lj = nlohmann::json::parse(l.out);
  REQUIRE(lj.size() == 2);
  CHECK(lj[0]["action_id"] == 3);
  CHECK(lj[1]["action_id"] == 1);
  l = run_distill({"data", "log", "--db", db, "--limit", "1", "--json"});
  REQUIRE(l.code == 0);
  CHECK(nlohmann::json::parse(l.out).size() == 1);
  CHECK(run_distill({"data", "log", "--db", db, "--sample", "77"}).code == 2);
  CHECK(run_distill({"data", "log", "--db", db, "--limit", "-1"}).code == 2);
}
