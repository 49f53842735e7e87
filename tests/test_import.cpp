// tests/test_import.cpp: GSM8K, MATH and JSONL parsing; every kind of bad line is an error naming FILE:LINE.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "dataset/import.h"

using namespace distill;
using namespace distill::dataset;

namespace {
ImportOptions opts(ImportFormat f) {
  ImportOptions o;
  o.format = f;
  return o;
}
}  // namespace

TEST_CASE("import: GSM8K records give prompt, final answer and a clean boxed solution") {
  const std::string file =
      R"({"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?", "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"})"
      "\n\n"
      R"({"question": "Big number?", "answer": "It is large.\n#### 1,234", "id": 7})"
      "\r\n";
  auto rows = parse_import(file, "gsm8k.jsonl", opts(ImportFormat::gsm8k));
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].answer == "72");
  CHECK(rows[0].source == "gsm8k");
  CHECK(rows[0].solution ==
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n\\boxed{72}");
  CHECK(rows[1].answer == "1,234");
  auto meta = nlohmann::json::parse(rows[1].meta_json);
  CHECK(meta["id"] == 7);
  CHECK(meta["line"] == 3);
}

TEST_CASE("import: MATH records take the last boxed answer (nested braces) and the level") {
  const std::string file =
      R"({"problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.", "solution": "We get $\\frac{2}{4}+\\frac{1}{4} = \\boxed{\\frac{3}{4}}$.", "level": "Level 2", "type": "Algebra"})"
      "\n";
  auto rows = parse_import(file, "math.jsonl", opts(ImportFormat::math));
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].answer == "\\frac{3}{4}");
  CHECK(rows[0].difficulty == 2);
  CHECK(nlohmann::json::parse(rows[0].meta_json)["type"] == "Algebra");
}

TEST_CASE("import: generic JSONL with chosen fields, a number where text belongs is refused") {
  ImportOptions o = opts(ImportFormat::jsonl);
  o.prompt_field = "q";
  o.answer_field = "a";
  o.solution_field = "why";
  o.split = "aime";
  o.source = "mybench";
  // 0.1 or 12345678901234567890 would not survive being turned into text: the file must say what it means.
  CHECK_THROWS_WITH(parse_import("\n" R"({"q": "1+1?", "a": 2})", "x.jsonl", o),
                    "x.jsonl:2: field 'a' holds a JSON number, expected a string (write it in quotes)");
  CHECK_THROWS_WITH(parse_import(R"({"q": 7, "a": "2"})", "x.jsonl", o), Catch::StartsWith("x.jsonl:1: field 'q' holds a JSON number"));
  std::vector<std::string> warnings;
  auto rows = parse_import(R"({"q": "1+1?", "a": "2", "why": "1+1=2\n\\boxed{2}", "difficulty": 3})" "\n"
                           R"({"q": "2+2?", "a": "\\frac{1}{", "why": "?"})", "x.jsonl", o, &warnings);
  REQUIRE(rows.size() == 2);  // a gold answer the verifier cannot read is imported, with a warning
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::StartsWith("x.jsonl:2: the verifier cannot read the gold answer '\\frac{1}{'"));
  CHECK(rows[0].prompt == "1+1?");
  CHECK(rows[0].answer == "2");
  CHECK(rows[0].split == "aime");
  CHECK(rows[0].source == "mybench");
  CHECK(rows[0].difficulty == 3);
  CHECK(rows[0].solution == "1+1=2\n\\boxed{2}");
}

TEST_CASE("import: each malformed input names FILE:LINE and what was expected") {
  struct Case {
    ImportFormat f;
    std::string text;
    std::string must_contain;
  };
  const std::string good = R"({"prompt": "p", "answer": "1"})";
  const std::string good_gsm = R"({"question": "q", "answer": "x\n#### 1"})";
  const Case cases[] = {
      {ImportFormat::jsonl, good + "\n" + good + "\n{\"prompt\": \"p\", \"answer\": \n", "f.jsonl:3: malformed JSON"},
      {ImportFormat::jsonl, good + "\n[1, 2]\n", "f.jsonl:2: expected a JSON object"},
      {ImportFormat::jsonl, good + "\n{\"prompt\": \"p\"}\n", "f.jsonl:2: missing field 'answer'"},
      {ImportFormat::jsonl, "{\"prompt\": [1], \"answer\": \"1\"}", "f.jsonl:1: field 'prompt' holds a JSON array, expected a string"},
      {ImportFormat::jsonl, "{\"prompt\": \"  \", \"answer\": \"1\"}", "f.jsonl:1: field 'prompt' is empty"},
      {ImportFormat::jsonl, good + "\n{\"prompt\": \"caf\xC3\", \"answer\": \"1\"}\n", "f.jsonl:2: invalid UTF-8 at byte 16"},
      {ImportFormat::jsonl, "\xFF\xFE{}", "f.jsonl:1: invalid UTF-8 at byte 1"},
      {ImportFormat::gsm8k, good_gsm + "\n{\"question\": \"q\", \"answer\": \"no marker\"}", "f.jsonl:2: field 'answer' has no '#### n'"},
      {ImportFormat::gsm8k, "{\"question\": \"q\", \"answer\": \"x\\n####  \"}", "f.jsonl:1: field 'answer' has an empty"},
      {ImportFormat::gsm8k, "{\"problem\": \"q\", \"solution\": \"x\"}", "f.jsonl:1: missing field 'question'"},
      {ImportFormat::math, "{\"problem\": \"q\", \"solution\": \"so \\\\boxed{12\"}", "f.jsonl:1: field 'solution' has no well-formed"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    try {
      parse_import(c.text, "f.jsonl", opts(c.f));
      FAIL("expected InputError");
    } catch (const InputError& e) {
      CHECK_THAT(e.what(), Catch::Contains(c.must_contain));
    }
  }
}

TEST_CASE("import: format names are checked") {
  CHECK(parse_import_format("gsm8k") == ImportFormat::gsm8k);
  CHECK_THROWS_WITH(parse_import_format("csv"), Catch::Contains("unknown import format 'csv'"));
}
