// tests/test_merge.cpp: sharded generation and `data merge`, through the real binary: N shards merged equal one
// unsharded run row for row; merging again adds nothing; curation logs (an undone review too) and lineage come
// along; conflicting stores are refused by name with the store left as it was; seeds follow the problem's
// content, so any store holding a problem draws its samples alike.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sqlite3.h>

#include "test_paths.h"
#include "tests/helpers.h"

using namespace distill;
using test::query_rows;
using test::run_distill;
using test::TempDir;

namespace {
const std::string kTeacher = std::string(DISTILL_SOURCE_DIR) + "/models/demo-teacher";

// Every sample by its identity in any store: problem content, index, seed, and what was drawn. The top-k logprobs
// by their size only: their values move in the last bits with the batch a sequence was decoded in (the tokens do
// not), and batches differ between a shard and the whole.
std::vector<std::string> samples_of(const std::string& db) {
  return query_rows(db, "SELECT p.content_hash, s.sample_idx, s.seed, s.completion, s.verdict, s.n_tokens, "
                        "s.finish_reason, l.k, length(l.blob) FROM samples s JOIN problems p ON p.id = s.problem_id "
                        "LEFT JOIN sample_logprobs l ON l.sample_id = s.id ORDER BY 1, 2");
}

void generate(const std::string& db, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"generate", "--db", db, "--teacher", kTeacher, "--samples", "2",
                                   "--max-tokens", "64", "--topk-logprobs", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_distill(args);
  REQUIRE(r.code == 0);
}
}  // namespace

TEST_CASE("merge: 3 shards merged equal one unsharded run, row for row, and merging again adds nothing") {
  TempDir d;
  REQUIRE(run_distill({"data", "synth", "--db", d / "base.db", "--n", "12"}).code == 0);
  for (int i = 0; i < 3; ++i) {
    std::filesystem::copy_file(d / "base.db", d / ("w" + std::to_string(i) + ".db"));
    generate(d / ("w" + std::to_string(i) + ".db"), {"--shard", std::to_string(i) + "/3"});
  }
  std::filesystem::copy_file(d / "base.db", d / "full.db");
  generate(d / "full.db");
  // The shards split the problems exactly: every problem in one shard, none in two.
  std::size_t sharded = 0;
  for (int i = 0; i < 3; ++i) sharded += samples_of(d / ("w" + std::to_string(i) + ".db")).size();
  CHECK(sharded == 24);
  auto r = run_distill({"data", "merge", "--db", d / "m.db", d / "w0.db", d / "w1.db", d / "w2.db"});
  REQUIRE(r.code == 0);
  CHECK(samples_of(d / "m.db") == samples_of(d / "full.db"));
  CHECK(samples_of(d / "m.db").size() == 24);
  // Lineage: each shard's generate run, the one synth run they share, the merge itself.
  CHECK(query_rows(d / "m.db", "SELECT kind, COUNT(*) FROM runs GROUP BY kind ORDER BY kind") ==
        std::vector<std::string>{"data merge|1|", "data synth|1|", "generate|3|"});
  CHECK(query_rows(d / "m.db", "SELECT COUNT(DISTINCT run_id) FROM samples") == std::vector<std::string>{"3|"});
  // Idempotent: the same stores again add no row.
  const auto before = query_rows(d / "m.db", "SELECT (SELECT COUNT(*) FROM samples), (SELECT COUNT(*) FROM problems), "
                                             "(SELECT COUNT(*) FROM sample_logprobs), (SELECT COUNT(*) FROM models)");
  r = run_distill({"data", "merge", "--db", d / "m.db", d / "w2.db", d / "w0.db", "--json"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"present\""));
  CHECK(query_rows(d / "m.db", "SELECT (SELECT COUNT(*) FROM samples), (SELECT COUNT(*) FROM problems), "
                               "(SELECT COUNT(*) FROM sample_logprobs), (SELECT COUNT(*) FROM models)") == before);
  // A rerun of an unsharded generate over the merged store finds everything drawn.
  r = run_distill({"generate", "--db", d / "m.db", "--teacher", kTeacher, "--samples", "2", "--max-tokens", "64",
                   "--topk-logprobs", "2"});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 new samples (24 of 24 already stored)"));
}

TEST_CASE("merge: curation logs come along with their undo links, re-pointed to the merged samples") {
  TempDir d;
  REQUIRE(run_distill({"data", "synth", "--db", d / "base.db", "--n", "6"}).code == 0);
  std::filesystem::copy_file(d / "base.db", d / "a.db");
  std::filesystem::copy_file(d / "base.db", d / "b.db");
  generate(d / "a.db", {"--shard", "0/2"});
  generate(d / "b.db", {"--shard", "1/2"});
  const auto b_ids = query_rows(d / "b.db", "SELECT id FROM samples ORDER BY id LIMIT 2");
  auto id = [](const std::string& row) { return row.substr(0, row.size() - 1); };
  REQUIRE(run_distill({"data", "review", "--db", d / "b.db", id(b_ids[0]), "--reject", "--reason", "bad"}).code == 0);
  REQUIRE(run_distill({"data", "review", "--db", d / "b.db", id(b_ids[1]), "--accept", "--reason", "good"}).code == 0);
  const auto last = query_rows(d / "b.db", "SELECT MAX(id) FROM curation_actions");
  REQUIRE(run_distill({"data", "undo", "--db", d / "b.db", id(last[0])}).code == 0);
  REQUIRE(run_distill({"data", "merge", "--db", d / "m.db", d / "a.db", d / "b.db"}).code == 0);
  // The same statuses by sample content, and the undo still points at the review it undid.
  const auto status = [&](const std::string& db) {
    return query_rows(db, "SELECT s.seed, a.kind, e.decision, a.reason, a.undone_by IS NOT NULL FROM curation_effects e "
                          "JOIN curation_actions a ON a.id = e.action_id JOIN samples s ON s.id = e.sample_id ORDER BY 1, 2");
  };
  CHECK(status(d / "m.db") == status(d / "b.db"));
  CHECK(query_rows(d / "m.db", "SELECT u.kind, r.reason FROM curation_actions u JOIN curation_actions r ON r.id = u.undoes "
                               "WHERE r.undone_by = u.id") == std::vector<std::string>{"undo|good|"});
}

TEST_CASE("merge: conflicting stores are refused by name and the store is left as it was") {
  TempDir d;
  REQUIRE(run_distill({"data", "synth", "--db", d / "a.db", "--n", "4"}).code == 0);
  std::filesystem::copy_file(d / "a.db", d / "b.db");
  generate(d / "a.db");
  generate(d / "b.db");
  // The same key with another completion (a damaged or hand-edited store): refused, naming both.
  {
    auto r = run_distill({"data", "merge", "--db", d / "m.db", d / "a.db"});
    REQUIRE(r.code == 0);
  }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open((d / "b.db").c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw, "UPDATE samples SET completion = 'changed' WHERE id = 1", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  auto r = run_distill({"data", "merge", "--db", d / "m.db", d / "b.db"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains(d / "b.db") && Catch::Contains("conflicts with") && Catch::Contains("samples") &&
                        Catch::Contains("completion 'changed'"));
  CHECK(query_rows(d / "m.db", "SELECT COUNT(*) FROM samples WHERE completion = 'changed'") == std::vector<std::string>{"0|"});
  // Not a store, or the output itself.
  test::write_text(d / "notes.db", "hello, not SQLite");
  r = run_distill({"data", "merge", "--db", d / "m.db", d / "notes.db"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("notes.db"));
  r = run_distill({"data", "merge", "--db", d / "m.db", d / "m.db"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("is the store being merged into"));
}

TEST_CASE("generate: --shard takes I/N and a sample's seed follows its problem's content, not its row id") {
  TempDir d;
  auto r = run_distill({"generate", "--db", d / "x.db", "--teacher", kTeacher, "--shard", "3/3"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--shard '3/3'"));
  // Two stores holding the same problems under other row ids draw the same samples for them.
  REQUIRE(run_distill({"data", "synth", "--db", d / "a.db", "--n", "4", "--seed", "1"}).code == 0);
  REQUIRE(run_distill({"data", "synth", "--db", d / "b.db", "--n", "3", "--seed", "9"}).code == 0);
  REQUIRE(run_distill({"data", "synth", "--db", d / "b.db", "--n", "4", "--seed", "1"}).code == 0);
  generate(d / "a.db");
  generate(d / "b.db");
  const auto a = samples_of(d / "a.db");
  const auto b = samples_of(d / "b.db");
  std::size_t shared = 0;
  for (const auto& row : a) shared += std::count(b.begin(), b.end(), row);
  CHECK(shared == a.size());
}
