// tests/test_verdicts.cpp: honest verdicts on imported data, through the real binary on real stores: chat imports
// without a gold answer are 'unverified' (never correct), with lineage that says "imported" and an unknown token
// count; --gold-field and a gold the store already holds verify them; the R1 filter and `list --verdict correct`
// say how many unverified samples they leave out; length filters skip unknown lengths; `data verify` re-verifies
// stored samples as one undoable action that reopens what rested only on an old verdict; the v6 migration.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "dataset/curation.h"
#include "dataset/samples.h"
#include "dataset/sqlite.h"
#include "dataset/store.h"
#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
using nlohmann::json;
using test::run_distill;

namespace {

// A chat record with extra top-level fields (a JSON object's members, e.g. "gold": "5").
std::string chat_with(const std::string& user, const std::string& assistant, const json& extra) {
  auto j = json{{"messages", {{{"role", "user"}, {"content", user}}, {{"role", "assistant"}, {"content", assistant}}}}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  return j.dump();
}

std::string chat(const std::string& user, const std::string& assistant) { return chat_with(user, assistant, json::object()); }

std::string boxed(const std::string& a) { return "<think>\nwork it out\n</think>\nSo the answer is \\boxed{" + a + "}."; }

json run_json(const std::vector<std::string>& args) {
  auto r = run_distill(args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  return json::parse(r.out);
}

// query_rows without the '|' that ends each row.
std::vector<std::string> rows(const std::string& db, const std::string& sql) {
  auto out = test::query_rows(db, sql);
  for (auto& r : out)
    if (!r.empty() && r.back() == '|') r.pop_back();
  return out;
}

double scalar(const std::string& db, const std::string& sql) {
  auto v = test::query_scalar(db, sql);
  REQUIRE(v.has_value());
  return *v;
}

}  // namespace

TEST_CASE("import: openai-chat samples without a gold answer are unverified, imported, of unknown length") {
  test::TempDir d;
  const auto db = d / "s.db", file = d / "chat.jsonl";
  test::write_text(file, chat("What is 2+3?", boxed("5")) + "\n" + chat("What is 2+4?", boxed("7")) + "\n" +
                             chat("What is 9*9?", "<think>\nhmm\n</think>\nI give up.") + "\n");
  auto im = run_distill({"data", "import", "--db", db, "--format", "openai-chat", file});
  INFO(im.err);
  REQUIRE(im.code == 0);
  CHECK_THAT(im.out, Catch::Contains("2 new samples are unverified"));
  CHECK_THAT(im.out, Catch::Contains("3 samples have no token count"));
  // Never 'correct' for want of a gold answer: the completion's own answer is not one.
  CHECK(scalar(db, "SELECT count(*) FROM samples WHERE verdict = 'unverified'") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM samples WHERE verdict = 'unparsable'") == 1);
  CHECK(scalar(db, "SELECT count(*) FROM samples WHERE verdict = 'correct'") == 0);
  CHECK(scalar(db, "SELECT count(*) FROM samples WHERE n_tokens IS NULL") == 3);
  CHECK(scalar(db, "SELECT count(*) FROM problems WHERE answer = ''") == 3);

  auto show = run_json({"data", "show", "--db", db, "1", "--json"});
  CHECK(show["verdict"] == "unverified");
  CHECK(show["extracted_answer"] == "5");
  CHECK(show["extract_rule"] == "boxed");
  CHECK(show["verifier"] == "distill-verify 2");
  CHECK(show["imported_from"] == file + " (openai-chat)");
  CHECK(show["n_tokens"].is_null());
  CHECK(show["temperature"].is_null());  // nothing is made up
  auto text = run_distill({"data", "show", "--db", db, "1"});
  CHECK_THAT(text.out, Catch::Contains("lineage: imported from " + file + " (openai-chat), run "));
  CHECK_THAT(text.out, Catch::Contains("by rule boxed, gold none; distill-verify 2)"));
  CHECK_THAT(text.out, Catch::Contains("token count unknown"));

  // The R1 filter leaves unverified samples out under a rule of their own; length rules skip unknown lengths.
  auto r1 = run_json({"data", "filter", "--db", db, "--r1", "--json"});
  CHECK(r1["by_rule"]["unverified"] == 2);
  CHECK(r1["by_rule"]["verdict"] == 1);
  auto len = run_json({"data", "filter", "--db", db, "--min-tokens", "5", "--json"});
  CHECK(len["rejected"] == 0);
  CHECK(len["skipped"]["length unknown"] == 3);
  auto list = run_distill({"data", "list", "--db", db, "--verdict", "correct"});
  CHECK_THAT(list.out, Catch::Contains("2 unverified samples (no gold answer to check them) are left out"));
  CHECK(run_json({"data", "list", "--db", db, "--verdict", "unverified", "--json"})["total"] == 2);

  // A gold answer arriving later (a problem file naming the same problems) fills the empty golds; data verify
  // then gives the samples real verdicts, as one undoable action.
  test::write_text(d / "gold.jsonl", R"({"prompt": "What is 2+3?", "answer": "5"})" "\n"
                                     R"({"prompt": "What is 2+4?", "answer": "6"})" "\n");
  auto gold = run_distill({"data", "import", "--db", db, "--format", "jsonl", d / "gold.jsonl"});
  REQUIRE(gold.code == 0);
  CHECK_THAT(gold.out, Catch::Contains("2 problems stored without a gold answer got one"));
  auto dry = run_json({"data", "verify", "--db", db, "--dry-run", "--json"});
  CHECK(dry["changed"] == 2);
  CHECK(dry["transitions"]["unverified -> correct"] == 1);
  CHECK(dry["transitions"]["unverified -> incorrect"] == 1);
  CHECK(dry["action_id"].is_null());
  CHECK(scalar(db, "SELECT count(*) FROM samples WHERE verdict = 'unverified'") == 2);  // a dry run writes nothing
}

TEST_CASE("import: --gold-field verifies chat samples, a gold the store holds does too, bad fields name the line") {
  test::TempDir d;
  const auto db = d / "s.db", file = d / "chat.jsonl";
  test::write_text(file, chat_with("What is 2+3?", boxed("5"), {{"gold", "5"}}) + "\n" +
                             chat_with("What is 2+4?", boxed("7"), {{"gold", "6"}}) + "\n");
  REQUIRE(run_distill({"data", "import", "--db", db, "--format", "openai-chat", "--gold-field", "gold", file}).code == 0);
  CHECK(rows(db, "SELECT verdict FROM samples ORDER BY id") == std::vector<std::string>{"correct", "incorrect"});
  // A missing or mistyped gold field names the file, the line and the field; nothing is imported.
  const auto before = scalar(db, "SELECT count(*) FROM samples");
  test::write_text(d / "missing.jsonl", chat_with("Q1?", boxed("1"), {{"gold", "1"}}) + "\n" + chat("Q2?", boxed("2")) + "\n");
  auto missing = run_distill({"data", "import", "--db", db, "--format", "openai-chat", "--gold-field", "gold", d / "missing.jsonl"});
  CHECK(missing.code == 2);
  CHECK_THAT(missing.err, Catch::Contains(d / "missing.jsonl:2: no gold answer field \"gold\" (--gold-field)"));
  test::write_text(d / "number.jsonl", chat_with("Q3?", boxed("3"), {{"gold", 3}}) + "\n");
  auto number = run_distill({"data", "import", "--db", db, "--format", "openai-chat", "--gold-field", "gold", d / "number.jsonl"});
  CHECK(number.code == 2);
  CHECK_THAT(number.err, Catch::Contains(d / "number.jsonl:1: gold answer field \"gold\" holds a JSON number, expected a string"));
  CHECK(scalar(db, "SELECT count(*) FROM samples") == before);
  CHECK(run_distill({"data", "import", "--db", db, "--format", "jsonl", "--gold-field", "gold", d / "number.jsonl"}).code == 2);
  // Without --gold-field, a problem the store already holds with a gold answer verifies the sample.
  test::write_text(d / "plain.jsonl", chat("What is 2+3?", "<think>\nx\n</think>\nAnswer: 5") + "\n");
  REQUIRE(run_distill({"data", "import", "--db", db, "--format", "openai-chat", d / "plain.jsonl"}).code == 0);
  CHECK(rows(db, "SELECT verdict, extract_rule FROM samples ORDER BY id DESC LIMIT 1") ==
        std::vector<std::string>{"correct|answer-colon"});
}

TEST_CASE("import: --tokenizer gives chat samples their real token count") {
  test::TempDir d;
  const auto db = d / "s.db";
  REQUIRE(run_distill({"data", "synth", "--db", d / "t.db", "--n", "200"}).code == 0);
  REQUIRE(run_distill({"tokenizer", "train", "--db", d / "t.db", "--out", d / "tok", "--vocab-size", "400"}).code == 0);
  const std::string completion = boxed("5");
  test::write_text(d / "chat.jsonl", chat("What is 2+3?", completion) + "\n");
  REQUIRE(run_distill({"data", "import", "--db", db, "--format", "openai-chat", "--tokenizer", d / "tok", d / "chat.jsonl"}).code == 0);
  const auto want = run_json({"tokenizer", "encode", "--dir", d / "tok", completion, "--json"})["n_tokens"].get<double>();
  CHECK(want > 5);
  CHECK(scalar(db, "SELECT n_tokens FROM samples") == want);
  // A problem file has no completions to count: --tokenizer there is refused, naming the option.
  test::write_text(d / "problems.jsonl", R"({"prompt": "What is 1+1?", "answer": "2"})" "\n");
  auto refused = run_distill({"data", "import", "--db", db, "--format", "jsonl", "--tokenizer", d / "tok", d / "problems.jsonl"});
  CHECK(refused.code == 2);
  CHECK_THAT(refused.err, Catch::Contains("--tokenizer applies to sample files"));
}

TEST_CASE("data verify: changed verdicts are one undoable action, rejections that rested on the old verdict reopen") {
  test::TempDir d;
  const auto db = d / "s.db", file = d / "chat.jsonl";
  // Four samples with gold answers; the store then pretends an older verifier judged three of them wrongly.
  test::write_text(file, chat_with("P1?", boxed("\\frac{1}{2}"), {{"gold", "0.5"}}) + "\n" +
                             chat_with("P2?", boxed("\\frac{1}{2}"), {{"gold", "0.5"}}) + "\n" +
                             chat_with("P3?", boxed("14{,}916"), {{"gold", "14916"}}) + "\n" +
                             chat_with("P4?", boxed("3"), {{"gold", "4"}}) + "\n");
  REQUIRE(run_distill({"data", "import", "--db", db, "--format", "openai-chat", "--gold-field", "gold", file}).code == 0);
  REQUIRE(rows(db, "SELECT verdict FROM samples ORDER BY id") ==
          std::vector<std::string>{"correct", "correct", "correct", "incorrect"});
  {
    auto s = dataset::Store::open(db, dataset::OpenMode::read);
    s->db().exec("UPDATE samples SET verdict = 'incorrect', verifier = 'distill-verify 1' WHERE id IN (1, 2, 3)");
  }
  // The filter rejects 1, 2, 3 (their stored verdict) and 4; then a person rejects 2 as well, for its own reasons.
  REQUIRE(run_distill({"data", "filter", "--db", db, "--correct-only", "--apply"}).code == 0);
  REQUIRE(run_distill({"data", "review", "--db", db, "2", "--reject", "--reason", "sloppy"}).code == 0);
  const auto statuses = [&] {
    std::vector<std::string> out;
    auto s = dataset::Store::open(db, dataset::OpenMode::read);
    for (std::int64_t id = 1; id <= 4; ++id) out.push_back(dataset::status_name(dataset::sample_status(*s, id)));
    return out;
  };
  REQUIRE(statuses() == std::vector<std::string>{"rejected", "rejected", "rejected", "rejected"});
  auto v = run_json({"data", "verify", "--db", db, "--json"});
  CHECK(v["considered"] == 4);
  CHECK(v["changed"] == 3);
  CHECK(v["transitions"]["incorrect -> correct"] == 3);
  CHECK(v["reopened"] == 2);        // 1 and 3: the filter's verdict rule was all that stood against them
  CHECK(v["still_rejected"] == 1);  // 2: a person rejected it
  REQUIRE(v["action_id"].is_number());
  const auto action = v["action_id"].get<std::int64_t>();
  CHECK(statuses() == std::vector<std::string>{"pending", "rejected", "pending", "rejected"});
  CHECK(rows(db, "SELECT verdict, verifier FROM samples WHERE id = 1") ==
        std::vector<std::string>{"correct|distill-verify 2"});
  CHECK(scalar(db, "SELECT count(*) FROM verdict_changes WHERE action_id = " + std::to_string(action)) == 3);
  auto show = run_json({"data", "show", "--db", db, "1", "--json"});
  REQUIRE(show["verdict_changes"].size() == 1);
  CHECK(show["verdict_changes"][0]["old"] == "incorrect");
  CHECK(show["verdict_changes"][0]["old_verifier"] == "distill-verify 1");
  // Nothing left to change: a second run finds nothing and writes no action.
  auto again = run_json({"data", "verify", "--db", db, "--json"});
  CHECK(again["changed"] == 0);
  CHECK(again["action_id"].is_null());
  // Undo restores the old verdicts, verifier versions and statuses, exactly.
  REQUIRE(run_distill({"data", "undo", "--db", db, std::to_string(action)}).code == 0);
  CHECK(statuses() == std::vector<std::string>{"rejected", "rejected", "rejected", "rejected"});
  CHECK(rows(db, "SELECT verdict, verifier FROM samples ORDER BY id") ==
        std::vector<std::string>{"incorrect|distill-verify 1", "incorrect|distill-verify 1", "incorrect|distill-verify 1",
                                 "incorrect|distill-verify 2"});
  // --run limits it to one run's samples; an unknown run is refused.
  CHECK(run_json({"data", "verify", "--db", db, "--run", "1", "--dry-run", "--json"})["considered"] == 4);
  auto bad = run_distill({"data", "verify", "--db", db, "--run", "99"});
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--run 99: the store has no run with that id"));
}

TEST_CASE("store: the v6 migration widens the verdict, token-count and curation constraints in place") {
  test::TempDir d;
  const auto db = d / "s.db";
  {
    auto s = dataset::Store::open(db, dataset::OpenMode::create);
    // Unknown lengths, unverified verdicts, 'verify' actions and 'pending' decisions are all storable.
    s->db().exec(
        "INSERT INTO runs(id, kind, config_toml, started_at, status, host, version) VALUES (1, 'x', '', 't', 'ok', 'h', 'v');"
        "INSERT INTO models VALUES (1, 'teacher', '/t', 'a', 1, 1, 'sha');"
        "INSERT INTO problems VALUES (1, 'test', 'train', 'p', '', NULL, 1, '{}', 'hash', 1);"
        "INSERT INTO samples(id, problem_id, model_id, run_id, sample_idx, seed, temperature, top_p, max_tokens, completion,"
        " verdict, n_tokens, finish_reason, created_at) VALUES (1, 1, 1, 1, 0, 1, 0, 1, 0, 'c', 'unverified', NULL, 'eos', 't');"
        "INSERT INTO curation_actions(id, kind, actor, at) VALUES (1, 'verify', 'a', 't');"
        "INSERT INTO curation_effects(sample_id, action_id, decision) VALUES (1, 1, 'pending');");
    CHECK_THROWS(s->db().exec("UPDATE samples SET verdict = 'maybe' WHERE id = 1"));
  }
  CHECK(rows(db, "PRAGMA integrity_check") == std::vector<std::string>{"ok"});
}
