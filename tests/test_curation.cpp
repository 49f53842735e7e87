// tests/test_curation.cpp: the append-only curation log: status derived from it, exact undo, refusals, and the
// `data show / review / undo` commands on a real store (samples inserted directly, no teacher).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <random>

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

namespace {
// sample_states as stored, and as the log alone says they should be.
std::vector<std::string> stored_status(Store& s) {
  std::vector<std::string> out;
  for (auto q = s.db().prepare("SELECT sample_id, status, coalesce(action_id, 0) FROM sample_states ORDER BY sample_id"); q.step();)
    out.push_back(std::to_string(q.col_int(0)) + " " + q.col_text(1) + " " + std::to_string(q.col_int(2)));
  return out;
}
std::vector<std::string> status_from_log(Store& s) {
  std::vector<std::string> out;
  auto q = s.db().prepare(
      std::string("SELECT s.id, coalesce(CASE d.decision WHEN 'keep' THEN 'kept' WHEN 'reject' THEN 'rejected' END, "
                  "'pending'), coalesce((SELECT max(e.action_id) FROM curation_effects e JOIN curation_actions a ON "
                  "a.id = e.action_id WHERE e.sample_id = s.id AND a.undone_by IS NULL), 0) FROM samples s LEFT JOIN (") +
      kLiveDecisionsSql + ") d ON d.sample_id = s.id ORDER BY s.id");
  while (q.step()) out.push_back(std::to_string(q.col_int(0)) + " " + q.col_text(1) + " " + std::to_string(q.col_int(2)));
  return out;
}
}  // namespace

TEST_CASE("curation: the materialised status agrees with the log after every kind of action, in a random walk") {
  test::TempDir d;
  seed_store(d / "s.db");
  auto s = Store::open(d / "s.db", OpenMode::read);
  std::mt19937 rng(7);
  auto pick = [&](int n) { return int(rng() % unsigned(n)); };
  int undos = 0, reopens = 0, stale = 0;
  for (int step = 0; step < 400; ++step) {
    const int op = pick(6);
    if (op == 0 || op == 1) {  // a person's review of one to three samples, sometimes from a stale view
      std::vector<std::int64_t> ids;
      for (int k = pick(3); k >= 0; --k) ids.push_back(1 + pick(3));
      std::map<std::int64_t, std::optional<std::int64_t>> seen;
      if (pick(4) == 0) seen[ids[0]] = status_action(*s, ids[0]).value_or(0) + 1;
      try {
        review_samples(*s, ids, op == 0, "r", "t", "{}", seen);
      } catch (const StaleView&) {
        ++stale;
      }
    } else if (op == 2 || op == 3) {  // a pass (filter, dedup, verify with a reopen) over some samples
      std::vector<Decision> ds;
      const std::string kind = std::array{"filter", "dedup", "verify"}[std::size_t(pick(3))];
      for (std::int64_t id = 1; id <= 3; ++id)
        if (pick(2)) ds.push_back({id, pick(2) == 0, "why", "rule", kind == "verify" && pick(2) == 0});
      for (const auto& x : ds) reopens += x.reopen;
      if (!ds.empty()) record_action(*s, {kind, "{}", "", "t"}, ds, pick(2) ? -1 : last_action_id(*s) - pick(3));
    } else {  // undo a live action
      std::vector<std::int64_t> live;
      for (const auto& a : list_actions(*s))
        if (a.kind != "undo" && !a.undone_by) live.push_back(a.id);
      if (live.empty()) continue;
      try {
        undo_action(*s, live[std::size_t(pick(int(live.size())))], "t");
        ++undos;
      } catch (const InputError&) {  // a verify undo blocked by a later verify: refused, nothing written
      }
    }
    INFO("step " << step);
    REQUIRE(stored_status(*s) == status_from_log(*s));
  }
  CHECK(undos > 30);
  CHECK(reopens > 10);
  CHECK(stale > 5);
  // The view shows it to the sqlite3 shell, with the action behind it.
  auto rows = test::query_rows(d / "s.db", "SELECT sample_id, status, coalesce(action_id, 0) FROM sample_status ORDER BY sample_id");
  const auto want = stored_status(*s);
  REQUIRE(rows.size() == want.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto w = want[i];
    std::replace(w.begin(), w.end(), ' ', '|');
    CHECK(rows[i] == w + "|");
  }
}

TEST_CASE("curation: a review from a stale view is refused whole, naming what changed, and writes nothing") {
  test::TempDir d;
  seed_store(d / "s.db");
  auto s = Store::open(d / "s.db", OpenMode::read);
  const auto shown = status_action(*s, 1);  // nothing yet
  CHECK_FALSE(shown);
  review_samples(*s, {1}, false, "bad", "studio:bob", "{}", {{1, shown}});  // bob rejects, from the view he had
  CHECK(sample_status(*s, 1) == Status::rejected);
  // alice still has the old view: her keep of samples 2 and 1 is refused, sample 2 included.
  try {
    review_samples(*s, {2, 1}, true, "", "studio:alice", "{}", {{2, std::nullopt}, {1, shown}});
    FAIL("a stale review was applied");
  } catch (const StaleView& e) {
    CHECK_THAT(e.what(), Catch::Contains("sample 1 changed") && Catch::Contains("rejected") && Catch::Contains("studio:bob"));
  }
  CHECK(sample_status(*s, 1) == Status::rejected);
  CHECK(sample_status(*s, 2) == Status::pending);
  CHECK(list_actions(*s).size() == 1);
  // After an undo the view showing bob's action is stale too.
  const auto bobs = *status_action(*s, 1);
  undo_action(*s, bobs, "studio:bob");
  CHECK_THROWS_AS(review_samples(*s, {1}, true, "", "studio:alice", "{}", {{1, bobs}}), StaleView);
  CHECK(review_samples(*s, {1}, true, "", "studio:alice", "{}", {{1, std::nullopt}}).action_id > 0);
}
